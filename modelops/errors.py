"""The two kinds of error and the exit statuses they map to.

A :class:`ModelopsError` is the user's to fix: it carries a one-line message, an optional hint and
the exit status the CLI ends with. Anything else that escapes is a bug in modelops; the CLI prints a
short line for it and shows the traceback only with ``--debug``.
"""

from __future__ import annotations

import os
from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes, the contract with Jenkins, Spinnaker and pull-request checks."""

    OK = 0
    GATE_FAILED = 1  # findings, failed tests, a rollout rolled back
    BAD_INPUT = 2  # bad usage or unreadable input
    ENVIRONMENT = 3  # the environment failed: cloud unreachable, build tool missing
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C, as shells report it


class ModelopsError(Exception):
    """An error the user can fix. ``str(err)`` is the one line the CLI prints."""

    exit_status: ExitStatus = ExitStatus.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None, exit_status: ExitStatus | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_status is not None:
            self.exit_status = exit_status


class InputError(ModelopsError):
    """Bad usage or unreadable input (exit 2)."""

    exit_status = ExitStatus.BAD_INPUT


class GateError(ModelopsError):
    """A gate refused to let a release through (exit 1)."""

    exit_status = ExitStatus.GATE_FAILED


class EnvironmentFailedError(ModelopsError):
    """Something outside modelops failed: the cloud, a build tool, the network (exit 3)."""

    exit_status = ExitStatus.ENVIRONMENT


class CloudUnreachableError(EnvironmentFailedError):
    """The cloud could not be reached at all (refused, timed out, no route): maybe a blip, maybe an
    outage. One-shot commands fail on it; a rollout in progress keeps trying for a while."""


def is_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` is botocore failing to reach a service at all (refused, timed out, closed), as
    opposed to the service answering with an error: what :class:`CloudUnreachableError` stands for."""
    from botocore import exceptions as bx

    return isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError
                      | bx.ConnectionClosedError)


def is_disk_full(exc: BaseException | None, directory: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) holding ``directory`` is full: an OSError
    ENOSPC or EDQUOT, or SQLite's SQLITE_FULL. SQLite reports a full disk met while it sets up or grows
    a WAL database's shared memory as a plain I/O error (SQLITE_IOERR_SHMSIZE, "disk I/O error"): an
    I/O error counts when ``directory``'s file system has no room left."""
    import errno

    if isinstance(exc, OSError) and not hasattr(exc, "sqlite_errorname"):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name == "SQLITE_FULL":
        return True
    if not name.startswith("SQLITE_IOERR") or directory is None:
        return False
    try:
        stat = os.statvfs(directory)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 64 * 1024
