"""The build's work folder as a cache: what a release left there, and freeing what no kept release needs.

Under ``<data dir>/build/``: ``model-data/`` holds model data archives named by their content (the
artifact manifest), with ``releases.json`` saying which release packed which archive; ``contexts/<release>/``
the contexts the docker and codebuild builders send; ``artifacts/at-ref/<commit>/`` artifact files
copied out of git for builds at a ref. All of it is remade by building again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from modelops.build.artifacts import AT_REF
from modelops.policy.jsoncache import JsonCache

ARTIFACT_CACHE = "artifacts"  # artifacts fetched or generated
MODEL_DATA = "model-data"  # model data archives (build writes, verify_artifacts checks again before deploy)
CONTEXTS = "contexts"
_INDEX = "releases.json"
_NAMESPACE = "model-data archives 1"


def _index(work: Path) -> JsonCache:
    return JsonCache(work / MODEL_DATA / _INDEX, namespace=_NAMESPACE)


def remember_archive(work: Path, release: str, archive: Path) -> None:
    """Record that ``release`` published ``archive`` (so gc keeps it while the release is kept)."""
    index = _index(work)
    if index.get(release) != archive.name:
        index.put(release, archive.name)
        index.save()


def prune(work: Path, *, keep_releases: set[str], keep_commits: set[str], older_than: float,
          dry_run: bool = False) -> list[tuple[str, str, int]]:
    """Delete model data archives no kept release packed, the contexts of releases not kept, and git
    copies of artifacts at commits no kept release was built from, when written before ``older_than``:
    ``(kind, path, bytes)`` each."""
    from modelops.sizes import tree_size

    removed: list[tuple[str, str, int]] = []
    index = _index(work)
    kept_archives = {name for release, name in index.entries.items() if release in keep_releases}
    archives = work / MODEL_DATA
    for archive in sorted(archives.glob("*.tar.gz")) if archives.is_dir() else ():
        if archive.name not in kept_archives and archive.stat().st_mtime <= older_than:
            removed.append(("build-cache", str(archive), archive.stat().st_size))
            if not dry_run:
                archive.unlink(missing_ok=True)
    for release in [r for r in index.entries if r not in keep_releases]:
        if not dry_run:
            index.forget(release)
    index.save()
    for folder, kept in ((work / CONTEXTS, keep_releases), (work / ARTIFACT_CACHE / AT_REF, keep_commits)):
        for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
            if entry.is_dir() and entry.name not in kept and entry.stat().st_mtime <= older_than:
                removed.append(("build-cache", str(entry), tree_size(entry)))
                if not dry_run:
                    shutil.rmtree(entry, ignore_errors=True)
    return removed
