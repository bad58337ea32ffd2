"""Sizes as people read them: one formatter for every message that names bytes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def human_size(size: float) -> str:
    """``1.5 GB``, ``40 MB``, ``12 kB``: decimal units, as disks and S3 count."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB" if size < 10 else f"{size:.0f} TB"


def tree_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (symlinks not followed, not counted)."""
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(OSError):
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    total += os.lstat(path).st_size
    return total
