"""Sizes as people read them: one formatter for every message that names bytes."""

from __future__ import annotations


def human_size(size: float) -> str:
    """``1.5 GB``, ``40 MB``, ``12 kB``: decimal units, as disks and S3 count."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB" if size < 10 else f"{size:.0f} TB"
