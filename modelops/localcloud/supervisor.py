"""Container instances as processes: one per variant instance, started from an image of the store.

The supervisor starts an instance (``images.container_command``), polls ``GET /ping`` until it
answers 200 (the instance is then *healthy*), fails it with its log tail when the process exits or
does not become healthy in time, restarts a healthy instance whose process dies, and drains an
instance for a moment before terminating it so requests in flight finish. Every instance it runs is
recorded in the state store (before it starts), so a restarted local cloud kills what a crash left
behind and starts again the instances the endpoints still name. Later updates of a record (its pid,
that it is stopping) are best effort: with the disk full an instance still stops, and a restart
still kills what runs under a recorded pid.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelops.localcloud.state import StateUnavailable, Store

log = logging.getLogger("modelops.localcloud.supervisor")

KIND = "instance"
STARTING, HEALTHY, FAILED, STOPPING = "starting", "healthy", "failed", "stopping"
DEFAULT_STARTUP_TIMEOUT_S = 600.0  # SageMaker's ContainerStartupHealthCheckTimeoutInSeconds default
PING_TIMEOUT_S = 2.0  # the container contract: /ping answers within 2 s
KILL_GRACE_S = 3.0
LOG_TAIL_LINES = 8

IMAGE_NOT_FOUND = ("Image {image} of production variant {variant} could not be found in the local cloud's image "
                   "store; build it with the local builder")
MODEL_DATA_NOT_FOUND = "Model data of production variant {variant} could not be downloaded: {reason}"
EXITED = ("The primary container for production variant {variant} did not pass the ping health check: the "
          "container exited with status {code}. Container log: {tail}")
TIMED_OUT = ("The primary container for production variant {variant} did not pass the ping health check within "
             "{seconds:.0f} seconds. Container log: {tail}")


@dataclass(frozen=True)
class InstanceSpec:
    """What an instance runs: persisted, so a restarted local cloud starts it again."""

    iid: str
    region: str
    endpoint: str
    variant: str
    image_uri: str
    model_data_url: str | None
    environment: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S


@dataclass
class Instance:
    spec: InstanceSpec
    log_path: Path
    state: str = STARTING
    reason: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    stop_at: float = 0.0
    restarts: int = 0
    ever_healthy: bool = False


class Supervisor:
    """Starts, watches, restarts and stops container instances (thread-safe)."""

    def __init__(self, data_dir: Path, store: Store):
        self.data_dir = data_dir
        self.store = store
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}

    # ------------------------------------------------------------------ the reconcile loop's calls

    def start(self, spec: InstanceSpec) -> None:
        """Start an instance (non-blocking): it is *starting* until its ping passes."""
        self.store.put(KIND, spec.region, spec.iid, asdict(spec))
        log_path = self.data_dir / "logs" / spec.region / spec.endpoint / f"{spec.variant}-{spec.iid}.log"
        instance = Instance(spec=spec, log_path=log_path)
        with self._lock:
            self._instances[spec.iid] = instance
        self._launch(instance)

    def stop(self, iid: str, *, drain: float = 0.0) -> None:
        """Terminate an instance after ``drain`` seconds (requests in flight finish); forget it."""
        with self._lock:
            instance = self._instances.get(iid)
        if instance is None:
            return
        # The record stays, marked, until the process is gone: a server killed while the instance
        # drains kills it on its next start instead of leaving it running with nobody to stop it.
        proc = instance.proc
        self._record(instance.spec, pid=proc.pid if proc is not None else None, stopping=True)
        instance.state = STOPPING
        instance.stop_at = time.monotonic() + drain
        if drain <= 0:
            self._terminate(instance)

    def state(self, iid: str) -> tuple[str, str]:
        """(state, failure reason) of an instance; an unknown one is failed."""
        instance = self._instances.get(iid)
        if instance is None:
            return FAILED, "the instance is gone"
        return instance.state, instance.reason

    def port(self, iid: str) -> int | None:
        """The port of a healthy instance, else None."""
        instance = self._instances.get(iid)
        return instance.port if instance is not None and instance.state == HEALTHY else None

    def is_starting(self) -> bool:
        """Whether an instance is starting (its ping has not passed yet)."""
        with self._lock:
            return any(i.state == STARTING for i in self._instances.values())

    def log_of(self, iid: str) -> Path | None:
        instance = self._instances.get(iid)
        return instance.log_path if instance is not None else None

    def tick(self) -> bool:
        """Advance every instance one step (ping, crash, restart, drain); True when any became healthy
        or stopped being healthy (the routes must be rebuilt)."""
        changed = False
        now = time.monotonic()
        with self._lock:
            instances = list(self._instances.values())
        for instance in instances:
            if instance.state == STOPPING:
                if now >= instance.stop_at:
                    self._terminate(instance)
                continue
            proc = instance.proc
            if instance.state == STARTING and proc is not None:
                code = proc.poll()
                if code is not None:
                    if instance.ever_healthy:  # a restart that crashes again: keep trying, with a pause
                        if now - instance.started > 1.0:
                            self._launch(instance)
                        continue
                    instance.state = FAILED
                    instance.reason = EXITED.format(variant=instance.spec.variant, code=code,
                                                    tail=self.log_tail(instance.log_path))
                    continue
                if self._ping(instance.port):
                    instance.state = HEALTHY
                    instance.ever_healthy = True
                    changed = True
                    continue
                if now - instance.started > instance.spec.startup_timeout and not instance.ever_healthy:
                    instance.state = FAILED
                    instance.reason = TIMED_OUT.format(variant=instance.spec.variant,
                                                       seconds=instance.spec.startup_timeout,
                                                       tail=self.log_tail(instance.log_path))
                    self._terminate(instance, forget=False)
            elif instance.state == HEALTHY and proc is not None and proc.poll() is not None:
                # A crashed instance is restarted, as the platform replaces an unhealthy instance.
                log.warning("instance %s exited (%s); restarting it", instance.spec.iid, proc.returncode)
                instance.restarts += 1
                self._launch(instance)
                changed = True
        return changed

    def restore(self, referenced: set[str]) -> list[InstanceSpec]:
        """Kill what a crashed server left running, and start again every recorded instance that an
        endpoint still names (``referenced``); forget the others (stopping, or started by a step
        whose save failed)."""
        specs = []
        for (region, iid), doc in self.store.load(KIND).items():
            pid = doc.pop("pid", None)
            if pid:
                self._kill_orphan(int(pid))
            stopping = doc.pop("stopping", False)
            if stopping or iid not in referenced:
                with contextlib.suppress(StateUnavailable):
                    self.store.delete(KIND, region, iid)
                continue
            specs.append(InstanceSpec(**doc))
        for spec in specs:
            self.start(spec)
        return specs

    def stop_all(self) -> None:
        """Terminate every process (the records stay: the next server start brings them back)."""
        with self._lock:
            instances = list(self._instances.values())
        for instance in instances:
            self._terminate(instance, forget=False)
        deadline = time.monotonic() + KILL_GRACE_S
        for instance in instances:
            if instance.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    instance.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                if instance.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(instance.proc.pid, signal.SIGKILL)

    @staticmethod
    def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 8192))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        tail = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) if tail else "(empty log)"

    # ------------------------------------------------------------------ processes

    def _launch(self, instance: Instance) -> None:
        from modelops.localcloud import images, objects

        spec = instance.spec
        instance.started = time.monotonic()
        instance.state = STARTING
        image = images.resolve_image(self.data_dir, spec.image_uri)
        if image is None:
            instance.state = FAILED
            instance.reason = IMAGE_NOT_FOUND.format(image=spec.image_uri, variant=spec.variant)
            return
        try:
            if spec.model_data_url:
                model_dir = objects.model_data_dir(self.data_dir, spec.model_data_url)
            else:
                model_dir = self.data_dir / "empty-model"
                model_dir.mkdir(exist_ok=True)
        except Exception as exc:  # a missing or unreadable archive fails the endpoint, as on AWS
            instance.state = FAILED
            instance.reason = MODEL_DATA_NOT_FOUND.format(variant=spec.variant, reason=exc)
            return
        instance.port = _free_port()
        argv, env = images.container_command(image, model_dir=model_dir, port=instance.port)
        # The model's Environment (CreateModel) goes over the image's ENV, as the platform does.
        env = {**env, **spec.environment, "SAGEMAKER_BIND_TO_PORT": str(instance.port)}
        instance.log_path.parent.mkdir(parents=True, exist_ok=True)
        with instance.log_path.open("ab") as out:
            out.write(f"--- starting {spec.iid} on port {instance.port}\n".encode())
            out.flush()
            instance.proc = subprocess.Popen(argv, env=env, cwd=image.path, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._record(spec, pid=instance.proc.pid)

    def _record(self, spec: InstanceSpec, **extra: Any) -> None:
        """Update an instance's record, best effort (see the module's docstring)."""
        try:
            self.store.put(KIND, spec.region, spec.iid, {**asdict(spec), **extra})
        except StateUnavailable as exc:
            log.warning("instance %s: cannot update its record (%s)", spec.iid, exc.message)

    def _terminate(self, instance: Instance, *, forget: bool = True) -> None:
        proc = instance.proc
        spec = instance.spec

        def forget_record() -> None:
            # the server may have shut its store meanwhile, or the disk be full: the next start forgets it
            with contextlib.suppress(StateUnavailable, sqlite3.ProgrammingError):
                self.store.delete(KIND, spec.region, spec.iid)

        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            threading.Thread(target=_reap_later, args=(proc, forget_record if forget else None),
                             daemon=True).start()
        elif forget:
            forget_record()
        if forget:
            with self._lock:
                self._instances.pop(spec.iid, None)

    def _kill_orphan(self, pid: int) -> None:
        """Kill a container a crashed server left, if the pid is still one of ours."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if str(self.data_dir).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    @staticmethod
    def _ping(port: int) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PING_TIMEOUT_S)
        try:
            conn.request("GET", "/ping")
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


def _reap_later(proc: subprocess.Popen[Any], then: Callable[[], None] | None = None) -> None:
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if then is not None:
        then()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
