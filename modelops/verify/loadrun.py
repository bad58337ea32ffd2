"""The load generator's process: ``python -m modelops.verify.loadrun [--worker HOST:PORT]``.

Locust runs on gevent, and importing locust monkey-patches the whole process (sockets, threads,
ssl). That must never happen in the modelops process itself (the CLI, deploy's threads, boto3's
connection pools), so load runs live here, in a child process started by
:mod:`modelops.verify.load`. The protocol:

- stdin: one JSON document, the spec (endpoint URL, region, endpoint name, credentials, users,
  spawn rate, duration, workers, payloads with base64 bodies). Credentials travel only this way,
  never on the command line.
- stdout: JSON lines. ``{"type": "tick", ...}`` every ``interval`` seconds (users, requests,
  failures, rps, p50/p95/p99 of the interval), then one ``{"type": "result", ...}``.

Without ``--worker`` this process runs the test: a local runner, or locust's master plus
``workers`` worker processes (this module again, with ``--worker``) that connect to it over ZeroMQ.
Each virtual user is a closed loop (no think time) that picks a payload by weight, signs the
request with botocore's SigV4 and sends it with geventhttpclient, which keeps the generator far
from being the bottleneck (``bench/loadgen.py`` measures it); ``"client": "boto3"`` in the spec
uses a boto3 ``sagemaker-runtime`` client per user instead.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

PERCENTILES = (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
WORKERS_READY_TIMEOUT = 60.0
#: A run whose every request fails to connect for this long stops: the endpoint is gone (the cloud
#: went away, the network broke), and waiting out a ten-minute load profile would learn nothing.
UNREACHABLE_STOP_S = 5.0
UNREACHABLE = "unreachable"  # the prefix of the error text of a request that could not connect
STOPPED = "stopped after {seconds:g} s: every request for {window:g} s failed to connect"


def _emit(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


class RequestFailed(Exception):
    """A non-2xx answer; its text is the key errors are counted under."""


def _user_class(spec: dict[str, Any]) -> type:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from locust import User, constant, task

    creds = spec["credentials"]
    credentials = Credentials(creds["access_key"], creds["secret_key"], creds.get("token"))
    region = spec["region"]
    base_url = spec["endpoint_url"].rstrip("/")
    from urllib.parse import quote

    path = f"/endpoints/{quote(spec['endpoint'], safe='')}/invocations"
    url = base_url + path
    payloads = [
        {"name": p["name"], "body": base64.b64decode(p["body"]), "weight": float(p["weight"]),
         "headers": {"Content-Type": p["content_type"], "Accept": p["accept"],
                     **({"X-Amzn-SageMaker-Custom-Attributes": p["custom_attributes"]}
                        if p.get("custom_attributes") else {})}}
        for p in spec["payloads"]
    ]
    weights = [p["weight"] for p in payloads]
    kind = spec.get("client", "fast")

    class RuntimeUser(User):
        """One closed-loop client of the endpoint."""

        wait_time = constant(0)

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            self._rng = random.Random()
            if kind == "boto3":
                import boto3
                from botocore.config import Config

                self._boto = boto3.session.Session().client(
                    "sagemaker-runtime", region_name=region, endpoint_url=base_url,
                    aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"],
                    aws_session_token=creds.get("token"),
                    config=Config(retries={"max_attempts": 1}, read_timeout=70))
            else:
                from geventhttpclient import HTTPClient
                from geventhttpclient.url import URL

                self._http = HTTPClient.from_url(URL(base_url), concurrency=1, connection_timeout=10,
                                                 network_timeout=70)

        def _send_fast(self, payload: dict[str, Any]) -> tuple[int, bytes, str]:
            request = AWSRequest(method="POST", url=url, data=payload["body"], headers=dict(payload["headers"]))
            SigV4Auth(credentials, "sagemaker", region).add_auth(request)
            answer = self._http.request("POST", path, body=payload["body"], headers=dict(request.headers.items()))
            body = answer.read()
            return answer.status_code, body, str(answer.get("x-amzn-ErrorType") or "")

        def _send_boto3(self, payload: dict[str, Any]) -> tuple[int, bytes, str]:
            from botocore.exceptions import ClientError

            h = payload["headers"]
            try:
                answer = self._boto.invoke_endpoint(EndpointName=spec["endpoint"], Body=payload["body"],
                                                    ContentType=h["Content-Type"], Accept=h["Accept"])
            except ClientError as exc:
                return (int(exc.response["ResponseMetadata"]["HTTPStatusCode"]), b"",
                        exc.response.get("Error", {}).get("Code", ""))
            return 200, answer["Body"].read(), ""

        @task
        def invoke(self) -> None:
            payload = self._rng.choices(payloads, weights)[0]
            start = time.perf_counter()
            error: Exception | None = None
            body = b""
            try:
                status, body, error_type = (self._send_boto3 if kind == "boto3" else self._send_fast)(payload)
                if not 200 <= status < 300:
                    error = RequestFailed(f"{status} {error_type.split(':')[0] or 'error'}")
            except Exception as exc:  # a failed request counts as an error, the run goes on
                # Refused, reset, no route, no such host: it could not connect (a timeout is slow, not gone).
                gone = isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
                error = RequestFailed(f"{UNREACHABLE + ': ' if gone else ''}{type(exc).__name__}: {exc}")
            elapsed = (time.perf_counter() - start) * 1000.0
            self.environment.events.request.fire(request_type="POST", name=payload["name"], response_time=elapsed,
                                                 response_length=len(body), exception=error, context={})

    return RuntimeUser


def _percentiles(response_times: dict[int, int], count: int) -> dict[str, float | None]:
    from locust.stats import calculate_response_time_percentile

    if count <= 0 or not response_times:
        return {name: None for name, _ in PERCENTILES}
    return {name: float(calculate_response_time_percentile(response_times, count, q)) for name, q in PERCENTILES}


def _run(spec: dict[str, Any]) -> None:
    """Run the load test the spec describes and print its ticks, then its result."""
    from locust.env import Environment

    env = Environment(user_classes=[_user_class(spec)], host=spec["endpoint_url"])
    workers = int(spec.get("workers") or 0)
    runner, children = _start_workers(env, spec, workers) if workers > 0 else (env.create_local_runner(), [])
    started = time.monotonic()
    runner.start(int(spec["users"]), spawn_rate=float(spec["spawn_rate"]))
    series, stopped = _watch(env, runner, started, interval=float(spec.get("interval", 1.0)),
                             duration=float(spec["duration_seconds"]))
    runner.stop()
    elapsed = time.monotonic() - started
    _stop(runner, children)
    _emit(_result(env, spec, workers, elapsed, series, stopped))


def _start_workers(env: Any, spec: dict[str, Any], workers: int) -> tuple[Any, list[subprocess.Popen[bytes]]]:
    """Locust's master and ``workers`` worker processes (this module with ``--worker``), once all connected."""
    import gevent

    runner = env.create_master_runner("127.0.0.1", 0)
    worker_spec = json.dumps({**spec, "workers": 0}).encode()
    children: list[subprocess.Popen[bytes]] = []
    for _ in range(workers):
        child = subprocess.Popen([sys.executable, "-m", "modelops.verify.loadrun", "--worker",
                                  f"127.0.0.1:{runner.server.port}"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=os.environ.copy())
        assert child.stdin is not None
        child.stdin.write(worker_spec)
        child.stdin.close()
        children.append(child)
    deadline = time.monotonic() + WORKERS_READY_TIMEOUT
    while runner.worker_count < workers:
        if time.monotonic() > deadline or any(c.poll() is not None for c in children):
            raise SystemExit(f"only {runner.worker_count} of {workers} locust workers connected")
        gevent.sleep(0.1)
    return runner, children


def _watch(env: Any, runner: Any, started: float, *, interval: float, duration: float) -> tuple[list[dict[str, Any]], str]:
    """Print a tick every ``interval`` seconds until ``duration`` is over, or until every request has
    failed to connect for :data:`UNREACHABLE_STOP_S`; returns the ticks and why it stopped early ("")."""
    import gevent

    series: list[dict[str, Any]] = []
    previous_times: dict[int, int] = {}
    previous = (0, 0)
    last = started
    unreachable_before, unreachable_for = 0, 0.0
    while True:
        gevent.sleep(max(0.0, min(interval, started + duration - time.monotonic())))
        now = time.monotonic()
        total = env.stats.total  # replaced, not reset, when a run starts: look it up each time
        times = dict(total.response_times)
        delta = {k: v - previous_times.get(k, 0) for k, v in times.items() if v - previous_times.get(k, 0) > 0}
        requests = total.num_requests - previous[0]
        failures = total.num_failures - previous[1]
        span = max(now - last, 1e-6)
        point = {"t": round(now - started, 3), "users": runner.user_count, "requests": requests,
                 "failures": failures, "rps": requests / span,
                 "error_rate": failures / requests if requests else 0.0,
                 **_percentiles(delta, sum(delta.values()))}
        series.append(point)
        _emit({"type": "tick", "total_requests": total.num_requests, "total_failures": total.num_failures,
               **point})
        previous_times, previous, last = times, (total.num_requests, total.num_failures), now
        unreachable = _unreachable(env)
        cut_off = requests > 0 and unreachable - unreachable_before >= requests
        unreachable_for, unreachable_before = (unreachable_for + span if cut_off else 0.0), unreachable
        if unreachable_for >= UNREACHABLE_STOP_S:
            return series, STOPPED.format(seconds=round(now - started, 1), window=round(unreachable_for, 1))
        if now - started >= duration:
            return series, ""


def _stop(runner: Any, children: list[subprocess.Popen[bytes]]) -> None:
    import gevent

    if children:
        gevent.sleep(1.5)  # the workers' last stats reports arrive after stop
    runner.quit()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def _result(env: Any, spec: dict[str, Any], workers: int, elapsed: float, series: list[dict[str, Any]],
            stopped: str) -> dict[str, Any]:
    """The run's ``result`` line: totals, percentiles, errors by text, per-case figures, the ticks."""
    total = env.stats.total
    requests = total.num_requests
    errors: dict[str, int] = {}
    for entry in env.stats.errors.values():
        key = str(entry.error)
        errors[key] = errors.get(key, 0) + entry.occurrences
    per_case = {
        name: {"requests": e.num_requests, "failures": e.num_failures,
               "p95_ms": float(e.get_response_time_percentile(0.95)) if e.num_requests else None}
        for (name, _method), e in env.stats.entries.items()
    }
    return {
        "type": "result",
        "requests": requests,
        "failures": total.num_failures,
        "duration_seconds": round(elapsed, 3),
        "rps": requests / elapsed if elapsed > 0 else 0.0,
        "error_rate": total.num_failures / requests if requests else 0.0,
        "avg_ms": float(total.avg_response_time) if requests else None,
        "max_ms": float(total.max_response_time) if requests else None,
        **_percentiles(dict(total.response_times), requests - total.num_none_requests),
        "users": int(spec["users"]),
        "workers": workers,
        "errors": errors,
        "per_case": per_case,
        "series": series,
        "stopped": stopped,
    }


def _unreachable(env: Any) -> int:
    """How many requests so far could not connect at all."""
    return sum(e.occurrences for e in env.stats.errors.values() if str(e.error).startswith(UNREACHABLE))


def _run_worker(spec: dict[str, Any], master: str) -> None:
    import gevent
    import locust.runners
    from locust.env import Environment

    # Report stats to the master every second (default 3 s), so the over-time series is smooth.
    locust.runners.WORKER_REPORT_INTERVAL = 1.0
    host, port = master.rsplit(":", 1)
    env = Environment(user_classes=[_user_class(spec)], host=spec["endpoint_url"])
    runner = env.create_worker_runner(host, int(port))
    assert runner.greenlet is not None
    runner.greenlet.join()
    gevent.sleep(0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(sys.stdin.read())
    # Imported here, after reading the spec: importing locust monkey-patches this process.
    import locust  # noqa: F401

    if args[:1] == ["--worker"]:
        _run_worker(spec, args[1])
    else:
        _run(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
