"""Load tests: locust, headless, in a child process (:mod:`modelops.verify.loadrun`), so that
gevent's monkey-patching never touches this process. The payload mix comes from the regression
cases; requests go through the SageMaker runtime API, SigV4-signed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.config.cases import Case
from modelops.errors import EnvironmentFailedError
from modelops.runtime import Runtime

LOADGEN_FAILED = "load generator for {endpoint} in {region} failed: {detail}"
LOADGEN_FAILED_HINT = "run again with -v; locust's output is above"
LOADGEN_TIMEOUT_EXTRA = 120.0  # seconds past the test's duration before the generator is given up


@dataclass(frozen=True)
class Target:
    """Where the load goes: the runtime API's URL in one region, the endpoint, and credentials
    (kept out of ``repr``: they must never reach output or logs)."""

    endpoint_url: str
    region: str
    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LoadPlan:
    """How much load: closed-loop ``users`` (no think time) started at ``spawn_rate`` per second,
    for ``duration_seconds``; ``workers`` > 0 runs locust's master and that many worker processes."""

    users: int
    spawn_rate: float
    duration_seconds: float
    workers: int = 0
    client: str = "fast"  # "fast" (SigV4 + geventhttpclient) or "boto3" (a boto3 client per user)
    interval_seconds: float = 1.0


@dataclass(frozen=True)
class SeriesPoint:
    """One interval of the run: seconds since start, users, requests/s, error rate, latency."""

    t: float
    users: int
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class LoadStats:
    """What a load run measured (latencies in milliseconds, as locust buckets them: exact below
    100 ms, to 10 ms below 1 s, to 100 ms above)."""

    requests: int
    failures: int
    duration_seconds: float
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    avg_ms: float | None = None
    max_ms: float | None = None
    users: int = 0
    workers: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    per_case: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    series: tuple[SeriesPoint, ...] = ()
    stopped: str = ""  # why the run ended before its duration (every request failing to connect), or ""

    def metrics(self) -> dict[str, float]:
        """The figures the ledger keeps (the baseline and trend `modelops test` shows beside a run)."""
        out = {"rps": self.rps, "error_rate": self.error_rate, "requests": float(self.requests)}
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "failures": self.failures, "duration_seconds": self.duration_seconds,
            "rps": round(self.rps, 3), "error_rate": round(self.error_rate, 6), "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms, "p99_ms": self.p99_ms, "avg_ms": self.avg_ms, "max_ms": self.max_ms,
            "users": self.users, "workers": self.workers, "errors": dict(self.errors),
            "per_case": {k: dict(v) for k, v in self.per_case.items()},
            "series": [p.__dict__ for p in self.series],
            "stopped": self.stopped,
        }


def stats_from_result(doc: Mapping[str, Any]) -> LoadStats:
    return LoadStats(
        requests=int(doc["requests"]), failures=int(doc["failures"]),
        duration_seconds=float(doc["duration_seconds"]), rps=float(doc["rps"]), error_rate=float(doc["error_rate"]),
        p50_ms=doc.get("p50_ms"), p95_ms=doc.get("p95_ms"), p99_ms=doc.get("p99_ms"),
        avg_ms=doc.get("avg_ms"), max_ms=doc.get("max_ms"), users=int(doc.get("users", 0)),
        workers=int(doc.get("workers", 0)), errors=dict(doc.get("errors") or {}),
        per_case=dict(doc.get("per_case") or {}),
        series=tuple(_point(p) for p in doc.get("series") or ()),
        stopped=str(doc.get("stopped") or ""),
    )


def _point(p: Mapping[str, Any]) -> SeriesPoint:
    return SeriesPoint(t=float(p["t"]), users=int(p.get("users", 0)), rps=float(p["rps"]),
                       error_rate=float(p.get("error_rate", 0.0)), p50_ms=p.get("p50_ms"), p95_ms=p.get("p95_ms"),
                       p99_ms=p.get("p99_ms"))


def _spec(target: Target, plan: LoadPlan, payloads: tuple[Case, ...]) -> dict[str, Any]:
    return {
        "endpoint_url": target.endpoint_url,
        "region": target.region,
        "endpoint": target.endpoint,
        "credentials": {"access_key": target.access_key, "secret_key": target.secret_key, "token": target.token},
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "duration_seconds": plan.duration_seconds,
        "workers": plan.workers,
        "client": plan.client,
        "interval": plan.interval_seconds,
        "payloads": [
            {"name": c.name, "content_type": c.request.content_type, "accept": c.request.accept,
             "custom_attributes": c.request.custom_attributes, "weight": c.weight,
             "body": base64.b64encode(c.request.body).decode()}
            for c in payloads
        ],
    }


def run_load(target: Target, plan: LoadPlan, payloads: tuple[Case, ...], runtime: Runtime, *,
             task: str | None = None) -> LoadStats:
    """Run one load test and return what it measured; progress ticks go to ``runtime.progress``.
    ``EnvironmentFailedError`` when the generator itself fails (not when requests fail)."""
    task = task or f"load {target.endpoint} {target.region}"
    spec = json.dumps(_spec(target, plan, payloads))
    proc = subprocess.Popen([sys.executable, "-m", "modelops.verify.loadrun"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=runtime.cwd,
                            env=dict(runtime.environ), text=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=30)
    stderr_reader = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr or ()), daemon=True)
    stderr_reader.start()
    # A watchdog: a generator that hangs past its duration is killed rather than waited on forever.
    watchdog = threading.Timer(plan.duration_seconds + LOADGEN_TIMEOUT_EXTRA, proc.kill)
    watchdog.start()
    result: dict[str, Any] | None = None
    runtime.progress.start(task, total=plan.duration_seconds)
    try:
        proc.stdin.write(spec)
        proc.stdin.close()
        done = 0.0
        for line in proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("type") == "tick":
                t = min(float(doc["t"]), plan.duration_seconds)
                p95 = doc.get("p95_ms")
                runtime.progress.advance(task, t - done, message=(
                    f"{doc['users']} users  {doc['rps']:.0f} req/s  p95 {'-' if p95 is None else f'{p95:g} ms'}  "
                    f"{doc['total_failures']} errors"))
                done = t
            elif doc.get("type") == "result":
                result = doc
        proc.wait()
    finally:
        watchdog.cancel()
        runtime.progress.finish(task)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr_reader.join(timeout=5)
    if result is None:
        detail = next((s.strip() for s in reversed(stderr_tail) if s.strip()), f"exit status {proc.returncode}")
        raise EnvironmentFailedError(LOADGEN_FAILED.format(endpoint=target.endpoint, region=target.region,
                                                           detail=detail[:300]), hint=LOADGEN_FAILED_HINT)
    return stats_from_result(result)
