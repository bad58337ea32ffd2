"""A small JSON file of cached results in the data dir, safe with several writers (validate's
worker processes, or two validate runs at once): saving merges with what is on disk under a lock."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: last writer wins, which only costs time
        yield
        return
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class JsonCache:
    """``entries`` maps a key (a content digest, a file identity) to a JSON value. ``namespace``
    invalidates the whole file when it changes (e.g. the bandit version)."""

    def __init__(self, path: Path, namespace: str = "", *, max_entries: int | None = None):
        self.path = path
        self.namespace = namespace
        self.max_entries = max_entries  # beyond it, the oldest entries are dropped on save
        self.entries: dict[str, Any] = self._read()
        self._new: dict[str, Any] = {}
        self._forgotten: set[str] = set()

    def _read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("namespace") != self.namespace or not isinstance(doc.get("entries"), dict):
            return {}
        entries: dict[str, Any] = doc["entries"]
        return entries

    def get(self, key: str) -> Any:
        return self.entries.get(key)

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = value
        self._new[key] = value
        self._forgotten.discard(key)

    def forget(self, key: str) -> None:
        """Drop ``key`` (from the file too, at the next save)."""
        self.entries.pop(key, None)
        self._new.pop(key, None)
        self._forgotten.add(key)

    def save(self) -> None:
        """Write new entries, merged with whatever other writers saved meanwhile (atomic replace)."""
        if not self._new and not self._forgotten:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path):
                merged = {k: v for k, v in {**self._read(), **self._new}.items() if k not in self._forgotten}
                if self.max_entries is not None and len(merged) > self.max_entries:
                    merged = dict(list(merged.items())[-self.max_entries:])
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"namespace": self.namespace, "entries": merged}), encoding="utf-8")
                os.replace(tmp, self.path)
            self._new, self._forgotten = {}, set()
        except OSError:
            pass  # a cache that cannot be written only costs time
