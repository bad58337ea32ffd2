"""Writing report and generated files: atomically (a reader never sees half of one), making the folder."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from modelops.errors import InputError

CANNOT_WRITE = "cannot write {path}: {reason}"


def check_target(path: Path) -> None:
    """:class:`InputError` when ``path`` can never be written as a file (it is a directory, or a file
    stands where one of its folders should be). Writes nothing: commands with long work call it
    first, so a bad report path does not cost the run."""
    if not path.name or path.is_dir():  # `--junit /`, `--junit .`, `--junit reports/`
        raise InputError(CANNOT_WRITE.format(path=path, reason="it is a directory"),
                         hint="give a file path, e.g. reports/report.xml")
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise InputError(CANNOT_WRITE.format(path=path, reason=f"{blocker} is not a directory"))


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path``'s folders that exists as something other than a folder."""
    return next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename, making its folder if needed (like
    pytest's --junitxml: ``--junit reports/test.xml`` must not lose a finished run to a missing
    folder). A path that cannot be written is :class:`InputError` naming it."""
    check_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder of the path should be
        blocker = _file_in_the_way(path) or path.parent  # made since check_target looked
        raise InputError(CANNOT_WRITE.format(path=path, reason=f"{blocker} is not a directory")) from exc
    except OSError as exc:
        raise InputError(CANNOT_WRITE.format(path=path, reason=exc.strerror or exc)) from exc
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder may not be one: the error below says so
            tmp.unlink(missing_ok=True)
        raise InputError(CANNOT_WRITE.format(path=path, reason=exc.strerror or exc)) from exc
