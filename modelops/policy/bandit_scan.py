"""The one seam to bandit: scan Python sources in-process through bandit's library API.

Results are cached by the sha256 of each file's content in ``<data dir>/cache/bandit.json`` (all
issues, unfiltered, per bandit version), so a re-run over unchanged code reads one JSON file and
never imports bandit."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.policy.jsoncache import JsonCache

LEVELS = {"undefined": 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class BanditIssue:
    test_id: str
    test_name: str
    severity: str  # low | medium | high
    confidence: str
    line: int
    column: int
    text: str
    more_info: str = ""

    def at_least(self, severity: str, confidence: str) -> bool:
        return (LEVELS.get(self.severity, 0) >= LEVELS[severity]
                and LEVELS.get(self.confidence, 0) >= LEVELS[confidence])


def _bandit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bandit")
    except metadata.PackageNotFoundError:
        return "unknown"


def scan(sources: Mapping[str, bytes], data_dir: Path) -> dict[str, list[BanditIssue]]:
    """Bandit issues (all severities) for each source, keyed like ``sources``. Only contents not in
    the cache are scanned; bandit is imported only then."""
    cache = JsonCache(data_dir / "cache" / "bandit.json", namespace=f"bandit {_bandit_version()}")
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in sources.items()}
    missing = {d: sources[name] for name, d in digests.items() if cache.get(d) is None}
    if missing:
        for digest, issues in _run_bandit(missing).items():
            cache.put(digest, issues)
        cache.save()
    return {name: [BanditIssue(**i) for i in cache.get(d) or []] for name, d in digests.items()}


def _run_bandit(contents: Mapping[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    from bandit.core import config as b_config
    from bandit.core import manager as b_manager

    # bandit logs every file it looks at; its chatter is not ours to show.
    logging.getLogger("bandit").setLevel(logging.ERROR)
    results: dict[str, list[dict[str, Any]]] = {digest: [] for digest in contents}
    with tempfile.TemporaryDirectory(prefix="modelops-bandit-") as tmp:
        paths = {}
        for digest, content in contents.items():
            path = Path(tmp) / f"{digest}.py"
            path.write_bytes(content)
            paths[str(path)] = digest
        mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
        mgr.discover_files(list(paths), recursive=False)
        try:
            mgr.run_tests()
        except SystemExit as exc:
            # bandit turns Ctrl-C into sys.exit(2), which would end modelops silently with "bad
            # input"; it is an interruption, said and exited as one (130).
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise
        for issue in mgr.get_issue_list():
            owner = paths.get(issue.fname)
            if owner is None:
                continue
            results[owner].append({
                "test_id": issue.test_id,
                "test_name": issue.test,
                "severity": str(issue.severity).lower(),
                "confidence": str(issue.confidence).lower(),
                "line": int(issue.lineno),
                "column": int(getattr(issue, "col_offset", 0)) + 1,
                "text": issue.text,
                "more_info": getattr(issue, "more_info", "") or "",
            })
    return results
