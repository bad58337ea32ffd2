"""Loading configs from a :class:`~modelops.config.workspace.Workspace`.

Two flavours:

- lenient ``read_*`` functions return a :class:`Loaded` holding the typed object (None when the
  file could not be read or failed its schema) and every problem found as a :class:`Finding`; validate
  uses them to report everything at once;
- strict ``load_*`` functions return the typed object or raise :class:`~modelops.errors.InputError`
  with the first error's file:line:col; build, deploy and test use them.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from modelops.config import schema as schemas
from modelops.config.environments import Environments, environments_from_document
from modelops.config.findings import Finding, Location, Severity, json_path
from modelops.config.model import ModelConfig, model_from_document
from modelops.config.policy import Policy, policy_from_document
from modelops.config.workspace import (
    ENVIRONMENTS_FILE,
    INIT_REPO_HINT,
    MODEL_FILE,
    MODELS_DIR,
    POLICY_FILE,
    ReadError,
    Workspace,
)
from modelops.config.yamlsource import ParsedYaml, SourceMap, YamlError, parse
from modelops.errors import InputError

T = TypeVar("T")

NOT_A_MAPPING = "{file} must hold a mapping (key: value), not {what}"
UNKNOWN_MODEL = "no model '{name}' in {where}{suggestion}"
UNKNOWN_MODEL_HINT = "models are folders under models/ holding a model.yaml: {names}"
OUTSIDE_REPO = "{path} is outside the repository {root}"
OUTSIDE_REPO_HINT = "run modelops inside the repository that holds it, or name a model of this one: {names}"
INVALID_CONFIG = "{location}: {message}"
MISSING_FILE_HINT = "check the path (and the git ref); `modelops schema` prints the format of each config file"
WAVE_UNKNOWN_REGION = "wave {wave} lists region '{region}', which is not in regions"
WAVE_DUPLICATE_REGION = "region '{region}' is in more than one wave"
WAVE_MISSING_REGION = "region '{region}' is in no wave"
PROMOTION_UNKNOWN = "promotion lists '{name}', which is not an environment{suggestion}"
PROMOTION_MISSING = "environment '{name}' is not in the promotion order"
DEPRECATED_RULE = "config.deprecated"
BASELINE_DEPRECATED = ("baseline is deprecated and ignored: modelops test shows the stored baseline as history "
                       "and trend and never fails a release on it")
BASELINE_DEPRECATED_HINT = ("remove `baseline:`; a release is compared with the serving one in the same window by "
                            "the judged canary (rollout strategy judged_canary, margins in `judgment:`), and "
                            "absolute limits are the model's SLOs (spec.tests.load.slo)")

# Files the rules of yaml.*/config.* read problems from are fatal: the file could not be read.
_FATAL_RULES = {"yaml.syntax", "yaml.encoding", "yaml.too-large", "yaml.alias-bomb", "yaml.too-deep",
                "yaml.not-a-mapping", "config.missing-file", "config.unreadable"}


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A config read leniently: the typed object (None when unusable) and the problems found."""

    file: str
    value: T | None
    findings: tuple[Finding, ...] = ()
    #: The parsed document and its positions when the file could be parsed (even if it failed its
    #: schema), so that checks that need no typed object (secrets) can still look at it.
    document: Any = None
    source: SourceMap | None = None
    #: When the file parsed but failed its schema: the object built from what is valid in it
    #: (``schema.usable_document``), for the checks whose inputs are not among the ``broken`` JSON
    #: paths. None when no such object could be built (or the file passed: ``value`` is it then).
    partial: T | None = None
    broken: frozenset[tuple[str | int, ...]] = frozenset()

    @property
    def fatal(self) -> bool:
        """True when the file could not be read at all (exit 2 territory)."""
        return any(f.fatal for f in self.findings)


def _finding(rule: str, file: str, message: str, line: int | None = None, column: int | None = None,
             path: str = "$", *, hint: str = "", model: str | None = None) -> Finding:
    return Finding(rule, Severity.error, Location(file, line, column, path), message, hint, model,
                   fatal=rule in _FATAL_RULES)


#: Parses a file's bytes (``parse``, or a cache of its answers keyed by the bytes).
Parser = Callable[[bytes, str], ParsedYaml]


def read_document(workspace: Workspace, file: str, kind: str, model: str | None = None, *,
                  parser: Parser = parse) -> tuple[Any, SourceMap | None, list[Finding]]:
    """Read and parse one YAML file and check it against its schema: (data, source map, findings).
    Data is None when the file could not be read or parsed."""
    try:
        raw = workspace.read_bytes(file)
    except ReadError as exc:
        return None, None, [_finding(exc.rule, file, exc.message, hint=exc.hint or "", model=model)]
    try:
        parsed = parser(raw, file)
    except YamlError as exc:
        return None, None, [_finding(exc.rule, file, exc.message, exc.line, exc.column, model=model)]
    findings = [_finding(p.rule, file, p.message, p.line, p.column, p.path, model=model) for p in parsed.problems]
    if not isinstance(parsed.data, dict):
        what = "an empty file" if parsed.data is None else f"a {_kind_name(parsed.data)}"
        findings.append(_finding("yaml.not-a-mapping", file, NOT_A_MAPPING.format(file=file, what=what), 1, 1,
                                 model=model))
        return None, parsed.source, findings
    findings.extend(schemas.schema_findings(kind, parsed.data, parsed.source, model=model))
    return parsed.data, parsed.source, findings


def _kind_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "scalar")


def _build(file: str, data: Any, source: SourceMap | None, findings: list[Finding],
           factory: Callable[[], T]) -> Loaded[T]:
    usable = data is not None and source is not None and not any(
        f.rule.startswith("schema.") or f.fatal for f in findings)
    return Loaded(file, factory() if usable else None, tuple(findings), data, source)


def read_model(workspace: Workspace, folder: str, *, parser: Parser = parse) -> Loaded[ModelConfig]:
    """Read ``<folder>/model.yaml`` leniently (``folder`` is repo-relative, e.g. ``models/iris``)."""
    file = f"{folder}/{MODEL_FILE}"
    hint_name = posixpath.basename(folder)
    data, source, findings = read_document(workspace, file, "model", hint_name, parser=parser)
    if isinstance(data, dict):
        name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
        if isinstance(name, str) and name != hint_name:
            findings = [f if f.model != hint_name else _with_model(f, name) for f in findings]
    loaded = _build(file, data, source, findings, lambda: model_from_document(
        data, folder=folder, file=file, source=source, ref=workspace.ref))  # type: ignore[arg-type]
    if loaded.value is None and source is not None and not loaded.fatal:
        # Every check that can still run on what parsed runs (validate reports every problem at once).
        usable = schemas.usable_document("model", data, fill={("metadata", "name"): hint_name})
        if usable is not None:
            document, broken = usable
            try:
                partial = model_from_document(document, folder=folder, file=file, source=source, ref=workspace.ref)
            except (KeyError, TypeError, ValueError, AttributeError):
                return loaded  # what is left cannot make a model: only the document-level checks run
            return replace(loaded, partial=partial, broken=broken)
    return loaded


def _with_model(f: Finding, name: str) -> Finding:
    return replace(f, model=name)


def read_environments(workspace: Workspace) -> Loaded[Environments]:
    """Read ``pipelines/environments.yaml`` leniently, with its consistency checks (waves cover the
    regions exactly once, promotion names exist). Rollout policies are checked by validate's rollout
    rules (``modelops.policy.rollout``), as deploy checks them."""
    file = ENVIRONMENTS_FILE
    data, source, findings = read_document(workspace, file, "environments")
    if workspace.ref is None:  # no environments at all: not a modelops repository yet
        findings = [replace(f, hint=INIT_REPO_HINT) if f.rule == "config.missing-file" else f for f in findings]
    if data is not None and source is not None and not any(f.rule.startswith("schema.") for f in findings):
        findings.extend(environment_consistency(data, source))
    return _build(file, data, source, findings, lambda: environments_from_document(
        data, file=file, source=source, ref=workspace.ref))  # type: ignore[arg-type]


def environment_consistency(document: Mapping[str, Any], source: SourceMap) -> list[Finding]:
    """Problems the schema cannot express in a schema-valid environments document."""
    file = source.file
    out: list[Finding] = []

    def add(rule: str, message: str, path: tuple[str | int, ...], hint: str = "") -> None:
        pos = source.position(path)
        out.append(_finding(rule, file, message, pos.line, pos.column, json_path(path), hint=hint))

    envs = document["environments"]
    for name, env in envs.items():
        regions = list(env["regions"])
        seen: set[str] = set()
        for w, wave in enumerate(env.get("waves") or []):
            for i, region in enumerate(wave):
                at = ("environments", name, "waves", w, i)
                if region not in regions:
                    add("config.waves", WAVE_UNKNOWN_REGION.format(wave=w + 1, region=region), at)
                elif region in seen:
                    add("config.waves", WAVE_DUPLICATE_REGION.format(region=region), at)
                seen.add(region)
        if env.get("waves"):
            for i, region in enumerate(regions):
                if region not in seen:
                    add("config.waves", WAVE_MISSING_REGION.format(region=region), ("environments", name, "regions", i))
    promotion = document.get("promotion")
    if promotion is not None:
        for i, name in enumerate(promotion):
            if name not in envs:
                close = difflib.get_close_matches(name, list(envs), n=1)
                add("config.promotion", PROMOTION_UNKNOWN.format(
                    name=name, suggestion=f" (did you mean '{close[0]}'?)" if close else ""), ("promotion", i))
        for name in envs:
            if name not in promotion:
                add("config.promotion", PROMOTION_MISSING.format(name=name), ("environments", name),
                    hint="add it to promotion, or remove the environment")
    return out


def read_policy(workspace: Workspace) -> Loaded[Policy]:
    """Read ``pipelines/policy.yaml`` leniently; a repository without one gets the default policy."""
    file = POLICY_FILE
    if not workspace.exists(file):
        return Loaded(file, Policy())
    data, source, findings = read_document(workspace, file, "policy")
    if isinstance(data, dict) and "baseline" in data and source is not None:
        at = source.position(("baseline",), key=True)
        findings.append(Finding(DEPRECATED_RULE, Severity.warning, Location(file, at.line, at.column, "$.baseline"),
                                BASELINE_DEPRECATED, BASELINE_DEPRECATED_HINT))
    return _build(file, data, source, findings, lambda: policy_from_document(
        data, file=file, source=source, ref=workspace.ref))  # type: ignore[arg-type]


# -- strict loaders -------------------------------------------------------------------------------


def _strict(loaded: Loaded[T]) -> T:
    errors = sorted((f for f in loaded.findings if f.severity is Severity.error), key=Finding.sort_key)
    if errors or loaded.value is None:
        first = errors[0] if errors else _finding("config.unreadable", loaded.file, "cannot be read")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        location = str(first.location)
        # "pipelines/environments.yaml does not exist", not "pipelines/environments.yaml: pipelines/..."
        said = first.message if first.message.startswith(location + " ") else INVALID_CONFIG.format(
            location=location, message=first.message)
        hint = first.hint or (MISSING_FILE_HINT if first.rule == "config.missing-file"
                              else f"run modelops validate {loaded.file} to see every problem")
        raise InputError(said + more, hint=hint)
    return loaded.value


def _at(workspace: Workspace, ref: str | None) -> Workspace:
    return workspace if ref is None or ref == workspace.ref else workspace.at(ref)


def find_model_folder(workspace: Workspace, name_or_path: str | Path) -> str:
    """The repo-relative folder of a model given by folder path (``models/iris``, ``.``, an absolute
    path, or its ``model.yaml``) or by ``metadata.name``."""
    text = str(name_or_path)
    candidates: list[str] = []
    path = Path(text)
    if path.is_absolute() or text.startswith((".", MODELS_DIR + "/")) or "/" in text:
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            rel = absolute.resolve().relative_to(workspace.root.resolve()).as_posix()
        except ValueError:
            rel = text  # relative to the repository's root (the process may run elsewhere)
        if (path.is_absolute() and rel == text) or posixpath.normpath(rel).split("/")[0] == "..":
            # Not read from outside: build, deploy and the rest work in this repository (its git,
            # pipelines and ledger), so another repository's model would be a mix of the two.
            names = [posixpath.basename(f) for f in workspace.model_folders()]
            raise InputError(OUTSIDE_REPO.format(path=text, root=workspace.root),
                             hint=OUTSIDE_REPO_HINT.format(names=", ".join(names) or "none"))
        if rel.endswith("/" + MODEL_FILE) or rel == MODEL_FILE:
            rel = posixpath.dirname(rel)
        candidates.append(posixpath.normpath(rel) if rel else ".")
    else:
        candidates.append(f"{MODELS_DIR}/{text}")
    for folder in candidates:
        if workspace.is_file(f"{folder}/{MODEL_FILE}"):
            return folder
    folders = workspace.model_folders()
    for folder in folders:  # by metadata.name
        loaded = read_model(workspace, folder)
        if loaded.value is not None and loaded.value.name == text:
            return folder
    names = [posixpath.basename(f) for f in folders]
    close = difflib.get_close_matches(posixpath.basename(text.rstrip("/")), names, n=1)
    where = f"{workspace.root}" + (f" at {workspace.ref}" if workspace.ref else "")
    raise InputError(
        UNKNOWN_MODEL.format(name=text, where=where, suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
        hint=UNKNOWN_MODEL_HINT.format(names=", ".join(names) or "none"),
    )


def load_model(workspace: Workspace, name_or_path: str | Path, ref: str | None = None) -> ModelConfig:
    """The model given by name or folder, read at ``ref`` (None: the workspace's own ref or working
    tree). Raises :class:`InputError` naming file:line:col when it does not validate."""
    ws = _at(workspace, ref)
    return _strict(read_model(ws, find_model_folder(ws, name_or_path)))


def load_environments(workspace: Workspace, ref: str | None = None) -> Environments:
    """``pipelines/environments.yaml`` at ``ref``; :class:`InputError` when it does not validate."""
    return _strict(read_environments(_at(workspace, ref)))


def load_policy(workspace: Workspace, ref: str | None = None) -> Policy:
    """``pipelines/policy.yaml`` at ``ref`` (the default policy when absent)."""
    return _strict(read_policy(_at(workspace, ref)))
