"""Synthetic traffic for deploy's bake periods: a model's regression requests sent to its endpoint at
a steady rate in a background thread, so that CloudWatch alarms watching a canary see data (an
endpoint nobody calls never breaches a latency alarm). Stoppable; counts answers and errors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelops.config.cases import Case, Cases
from modelops.errors import InputError, ModelopsError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients

NO_TRAFFIC_CASES = "no regression case expecting success to send as synthetic traffic to {endpoint}"
NO_TRAFFIC_CASES_HINT = "add a case that expects status 200 to the model's tests/cases.yaml"
UNREACHABLE_STATUS = 0  # by_status key of requests that got no answer at all


@dataclass(frozen=True)
class TrafficStats:
    """What the sender did: requests sent, the ones that did not succeed, answers by HTTP status
    (0: no answer), and the last error's text."""

    sent: int = 0
    errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    last_error: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 0.0


class TrafficSender:
    """Sends ``cases`` round robin at ``rate`` requests per second until :meth:`stop`. One thread;
    a slow endpoint gets requests back to back (the rate is a ceiling). Use :func:`send_traffic`."""

    def __init__(self, client: Any, endpoint: str, cases: Sequence[Case], *, rate: float, runtime: Runtime,
                 resource: str):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._client = client
        self._endpoint = endpoint
        self._cases = tuple(cases)
        self._interval = 1.0 / rate
        self._runtime = runtime
        self._resource = resource
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._errors = 0
        self._by_status: dict[int, int] = {}
        self._last_error = ""
        self._thread = threading.Thread(target=self._loop, name=f"traffic-{endpoint}", daemon=True)

    def start(self) -> TrafficSender:
        self._thread.start()
        return self

    def _count(self, status: int, error: str = "") -> None:
        with self._lock:
            self._sent += 1
            self._by_status[status] = self._by_status.get(status, 0) + 1
            if not 200 <= status < 300:
                self._errors += 1
                self._last_error = error or str(status)

    def _loop(self) -> None:
        from modelops.verify.invoke import invoke

        clock = self._runtime.clock
        due = clock.monotonic()
        i = 0
        while not self._stop.is_set():
            case = self._cases[i % len(self._cases)]
            i += 1
            try:
                answer = invoke(self._client, self._endpoint, case.request, clock, resource=self._resource)
            except ModelopsError as exc:
                self._count(UNREACHABLE_STATUS, exc.message)
            else:
                self._count(answer.status, "" if answer.ok else answer.describe())
            due += self._interval
            wait = due - clock.monotonic()
            if wait < 0:
                due = clock.monotonic()  # behind: do not burst to catch up
            elif self._stop.wait(wait):
                break

    def stats(self) -> TrafficStats:
        """The counts so far (the sender keeps going)."""
        with self._lock:
            return TrafficStats(self._sent, self._errors, dict(self._by_status), self._last_error)

    def stop(self, timeout: float = 10.0) -> TrafficStats:
        """Stop sending (waits for the request in flight, up to ``timeout``) and return the counts."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.stats()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> TrafficSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def send_traffic(clients: Clients, region: str, endpoint: str, cases: Cases | Sequence[Case], *, rate: float,
                 runtime: Runtime) -> TrafficSender:
    """Start sending the model's regression requests (the ones expecting success, by weight > 0) to
    ``endpoint`` in ``region`` at ``rate`` per second, in a background thread; returns the running
    sender (``with send_traffic(...) as sender: ...`` stops it at the end of the block)."""
    chosen = cases.load_mix() if isinstance(cases, Cases) else tuple(c for c in cases if c.expects_success)
    if not chosen:
        raise InputError(NO_TRAFFIC_CASES.format(endpoint=endpoint), hint=NO_TRAFFIC_CASES_HINT)
    client = clients.client("sagemaker-runtime", region)
    return TrafficSender(client, endpoint, chosen, rate=rate, runtime=runtime,
                         resource=f"{clients.environment.name}:{region}:{endpoint}").start()
