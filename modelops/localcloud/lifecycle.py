"""Start, find and stop the local cloud server: a detached process per data dir.

The server records ``{"pid", "port", "url"}`` in ``<data_dir>/server.json`` once it listens, and holds
an exclusive lock on ``<data_dir>/server.lock`` for its lifetime, so two servers never share a data
dir. A record whose process is gone (a crash, a reboot) is stale: :func:`status` removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import EnvironmentFailedError, InputError

if TYPE_CHECKING:
    from modelops.localcloud.timing import Timing

LOCAL_ACCOUNT = "000000000000"
RECORD_FILE = "server.json"
LOG_FILE = "server.log"
START_LOCK_FILE = "start.lock"
HEALTH_PATH = "/_localcloud/health"
START_TIMEOUT_S = 60.0

SERVER_FAILED = "the local cloud did not start (exit status {status}; data dir {data_dir}); its log is {log}"
SERVER_FAILED_HINT = "read the log's last lines; `modelops local logs` shows it"
BAD_PORT = "port {port} is not a TCP port (0-65535; 0 picks a free one)"
CANNOT_USE_DATA_DIR = "cannot use the local cloud's data dir {data_dir}: {reason}"
CANNOT_USE_DATA_DIR_HINT = "point MODELOPS_LOCAL_DATA_DIR (or --data-dir) at a writable folder"
EXIT_PORT_IN_USE = 98  # the server's exit status when its port is taken
EXIT_DISK_FULL = 28  # ... when the disk holding its data dir is full (ENOSPC: its log may have no room either)
DISK_FULL = "the local cloud cannot start: the disk holding its data dir {data_dir} is full"
DISK_FULL_HINT = "free some space on that disk (or point MODELOPS_LOCAL_DATA_DIR at another one), then try again"
PORT_IN_USE = "the local cloud cannot listen on 127.0.0.1:{port}: another program uses that port"
PORT_IN_USE_HINT = "pick another with --port, or leave --port out for a free one"
SERVER_TIMEOUT = "the local cloud did not answer within {seconds:.0f} s (data dir {data_dir}); its log is {log}"


@dataclass(frozen=True)
class LocalCloudInfo:
    """A running local cloud: where it answers and which process it is."""

    url: str
    port: int
    pid: int
    data_dir: Path
    timing: dict[str, object] = field(default_factory=lambda: {"profile": "fast", "scale": 1.0})

    def to_dict(self) -> dict[str, object]:
        return {"running": True, "url": self.url, "port": self.port, "pid": self.pid,
                "data_dir": str(self.data_dir), "timing": dict(self.timing)}


def log_path(data_dir: Path) -> Path:
    """The server's log file (start-up errors, requests that failed inside the server)."""
    return _resolve(data_dir) / LOG_FILE


def status(data_dir: Path) -> LocalCloudInfo | None:
    """The running local cloud of ``data_dir``, or None. A stale record (its process gone) is removed."""
    root = _resolve(data_dir)
    info = _read_record(root)
    if info is None:
        return None
    if not _is_server_process(info.pid):
        _remove_record(root, info.pid)
        return None
    # The process is ours; it answers unless it is busy starting or stopping: give it a moment.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if _answers(info):
            return info
        if not _is_server_process(info.pid):
            _remove_record(root, info.pid)
            return None
        time.sleep(0.1)
    return None


def ensure_running(data_dir: Path, port: int | None = None, timing: Timing | None = None) -> LocalCloudInfo:
    """The running local cloud of ``data_dir``, started as a detached process when none runs.

    ``port`` None picks a free port; ``timing`` None is the fast profile. When a server already runs,
    it is returned as is (whatever its port and timing). Raises :class:`EnvironmentFailedError`
    naming the log when the server cannot start.
    """
    if port is not None and not 0 <= port <= 65535:
        raise InputError(BAD_PORT.format(port=port))
    root = _resolve(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFailedError(CANNOT_USE_DATA_DIR.format(data_dir=root, reason=exc.strerror or exc),
                                     hint=CANNOT_USE_DATA_DIR_HINT) from exc
    with _start_lock(root):
        running = status(root)
        if running is not None:
            return running
        return _start(root, port, timing)


def stop(data_dir: Path, timeout: float = 20.0) -> bool:
    """Stop the local cloud of ``data_dir`` (its containers too). True when a server was running."""
    root = _resolve(data_dir)
    record = _read_record(root)
    if record is None:
        return False
    pid = record.pid
    if not _is_server_process(pid):
        _remove_record(root, pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_server_process(pid):
        _reap(pid)
        time.sleep(0.05)
    if _is_server_process(pid):  # it did not stop in time: it cannot clean up, so we do
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    _remove_record(root, pid)
    return True


def _start(root: Path, port: int | None, timing: Timing | None) -> LocalCloudInfo:
    log = root / LOG_FILE
    command = [sys.executable, "-m", "modelops.localcloud", "--data-dir", str(root), "--port", str(port or 0)]
    if timing is not None:
        command += ["--timing", timing.profile, "--time-scale", repr(timing.scale)]
    with log.open("ab") as out:
        start_of_run = out.tell()  # the log keeps earlier runs; a failure quotes only this one
        # A new session: the server outlives the command that started it and gets no terminal signals.
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=root)
    try:
        info = _wait_until_ready(proc, root, port, log, start_of_run)
    except BaseException:  # Ctrl-C (or a timeout) while it starts: no half-started server stays behind
        _abandon(proc, root)
        raise
    return info


def _wait_until_ready(proc: subprocess.Popen[bytes], root: Path, port: int | None, log: Path,
                      start_of_run: int) -> LocalCloudInfo:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if proc.returncode == EXIT_PORT_IN_USE:
                raise EnvironmentFailedError(PORT_IN_USE.format(port=port), hint=PORT_IN_USE_HINT)
            if proc.returncode == EXIT_DISK_FULL:
                raise EnvironmentFailedError(DISK_FULL.format(data_dir=root), hint=DISK_FULL_HINT)
            raise EnvironmentFailedError(SERVER_FAILED.format(status=proc.returncode, data_dir=root, log=log)
                                         + _tail(log, start_of_run),
                                         hint=SERVER_FAILED_HINT)
        info = _read_record(root)
        if info is not None and info.pid == proc.pid and _answers(info):
            return info
        time.sleep(0.05)
    raise EnvironmentFailedError(SERVER_TIMEOUT.format(seconds=START_TIMEOUT_S, data_dir=root, log=log),
                                 hint=SERVER_FAILED_HINT)


def _abandon(proc: subprocess.Popen[bytes], root: Path) -> None:
    """Stop a server this command started but will not hand over (its process group: it may have
    started containers already) and drop its record."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):  # TERM lets it stop its containers
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    _remove_record(root, proc.pid)


def _tail(log: Path, start: int = 0, lines: int = 5) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(start)
            text = fh.read().decode(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (": " + " | ".join(line.strip() for line in text)) if text else ""


def _resolve(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().absolute()


def _read_record(root: Path) -> LocalCloudInfo | None:
    """What ``server.json`` says (the process may be gone: see :func:`status`)."""
    try:
        record = json.loads((root / RECORD_FILE).read_text())
        port = int(record["port"])
        return LocalCloudInfo(url=f"http://127.0.0.1:{port}", port=port, pid=int(record["pid"]), data_dir=root,
                              timing=dict(record.get("timing") or {"profile": "fast", "scale": 1.0}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_record(root: Path, *, pid: int, port: int, timing: dict[str, object] | None = None) -> None:
    """Called by the server once it listens (atomic: a reader never sees half a record)."""
    tmp = root / f".{RECORD_FILE}.{pid}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "port": port, "url": f"http://127.0.0.1:{port}",
                               "timing": timing or {"profile": "fast", "scale": 1.0}}))
    os.replace(tmp, root / RECORD_FILE)


def _remove_record(root: Path, pid: int) -> None:
    record = _read_record(root)
    if record is not None and record.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            (root / RECORD_FILE).unlink()


def remove_record(root: Path, pid: int) -> None:
    """Called by the server when it stops."""
    _remove_record(root, pid)


def _is_server_process(pid: int) -> bool:
    """Whether ``pid`` is alive and is a local cloud server (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if not Path("/proc/self").exists():  # no procfs (macOS): fall back to a signal probe
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return False
            return True
        return False
    return b"modelops.localcloud" in cmdline


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _answers(info: LocalCloudInfo) -> bool:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=2.0)
    try:
        conn.request("GET", HEALTH_PATH)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        return response.status == 200 and int(body.get("pid", -1)) == info.pid
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def _start_lock(root: Path) -> Iterator[None]:
    """Two commands starting the local cloud at once start one server."""
    with (root / START_LOCK_FILE).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
