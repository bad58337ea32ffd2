"""Real faults for tests: a small file system that fills up.

:func:`in_small_filesystem` runs a test's scenario in a fresh Python process inside a mount namespace
of its own (``unshare``, as root or as a user mapped to root) where a tmpfs of a few MB is mounted, so
nothing on the machine changes; :func:`fill` writes into it until the kernel answers ENOSPC. What SQLite
and the rest then meet is a full disk, not a simulation of one. The scenario runs in the namespace
(the local cloud it starts too) because SQLite resolves symbolic links in database paths: a path
through ``/proc/<pid>/root`` would lead it out of the namespace. Tests skip, saying why, where
``unshare`` cannot mount.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

_RUN = ("import sys, importlib, pathlib; "
        "getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(pathlib.Path(sys.argv[3]))")


def in_small_filesystem(scenario: Callable[[Path], None], where: Path, size_mb: int = 24, timeout: float = 300) -> str:
    """Run ``scenario(where)`` (a module-level function) in a new process that sees a tmpfs of
    ``size_mb`` MB mounted at ``where``; returns its output, raises AssertionError with it if it fails."""
    where.mkdir(parents=True, exist_ok=True)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("mounting a small file system needs util-linux's unshare")
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", *_as_root(), "sh", "-c",
                            f'mount -t tmpfs -o size=1m tmpfs "{where}"'], capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {probe.stderr.strip()}")
    script = f'mount -t tmpfs -o size={size_mb}m,mode=0777 tmpfs "$1" && shift && exec "$@"'
    command = [unshare, "--mount", "--propagation", "private", *_as_root(), "sh", "-c", script, "sh", str(where),
               sys.executable, "-c", _RUN, scenario.__module__, scenario.__name__, str(where)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=PROJECT_ROOT)
    output = done.stdout + done.stderr
    if done.returncode:
        raise AssertionError(f"the scenario failed in its small file system (exit {done.returncode}):\n{output}")
    return output


def _as_root() -> list[str]:
    return [] if os.geteuid() == 0 else ["--map-root-user"]


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its file system has no byte left; returns the file
    (delete it to make room again)."""
    filler = directory / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    probe = directory / ".probe"
    try:  # the proof that it is full
        with open(probe, "wb") as handle:
            handle.write(b"x" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    else:
        raise AssertionError(f"{directory} still has room")
    finally:
        probe.unlink(missing_ok=True)
    return filler
