"""Health of an endpoint from live signals, not from records: its status, the recent per-variant
CloudWatch figures (5xx rate and p99 latency against the environment's alarm thresholds, invocations)
and the state of its SLO alarms. Pure: :mod:`modelops.deploy.observed` gathers the inputs.

- **healthy**: serving, figures within the thresholds over the window, no SLO alarm in ALARM;
- **degraded**: serving, but an SLO alarm is in ALARM, a figure breaches its threshold, or an update
  is rolling back;
- **unknown**: serving, nothing breaches, but no invocation in the window: nothing shows it works;
- **unhealthy**: not serving (Failed, OutOfService, UpdateRollbackFailed);
- ``-``: no endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.config import Environment
from modelops.deploy.cloud import AlarmView, VariantMetrics
from modelops.deploy.specs import SloThresholds

HEALTHY = "healthy"
DEGRADED = "degraded"
UNKNOWN = "unknown"
UNHEALTHY = "unhealthy"
ABSENT = "-"

NOT_SERVING = frozenset({"Failed", "OutOfService", "UpdateRollbackFailed", "Deleting"})
#: On AWS, SageMaker publishes endpoint metrics once a minute and CloudWatch shows them a minute or
#: two later: health looks back at least this far there.
AWS_MIN_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Health:
    """``state`` (above), ``reasons`` (why it is not healthy, or what it rests on) and the figures."""

    state: str
    reasons: tuple[str, ...] = ()
    window_seconds: int = 0
    invocations: float | None = None
    error_rate: float | None = None
    p99_ms: float | None = None
    alarms: Mapping[str, str] = field(default_factory=dict)  # alarm name -> state

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": list(self.reasons), "window_seconds": self.window_seconds,
                "invocations": self.invocations, "error_rate_5xx": self.error_rate, "p99_ms": self.p99_ms,
                "alarms": dict(self.alarms)}

    @property
    def summary(self) -> str:
        """One line: the figures, or why there are none."""
        if self.state == ABSENT:
            return ""
        if not self.invocations:
            return f"no invocations in the last {self.window_seconds} s"
        parts = [f"{self.invocations:g} invocations"]
        if self.error_rate is not None:
            parts.append(f"5xx {self.error_rate:.1%}")
        if self.p99_ms is not None:
            parts.append(f"p99 {self.p99_ms:.0f} ms")
        return ", ".join(parts) + f" in the last {self.window_seconds} s"


def health_window(environment: Environment, slo: SloThresholds) -> int:
    """How far back health looks: two alarm periods (on aws at least :data:`AWS_MIN_WINDOW_SECONDS`)."""
    window = 2 * slo.period_seconds
    return window if environment.is_local else max(window, AWS_MIN_WINDOW_SECONDS)


def health_of(status: str | None, metrics: Mapping[str, VariantMetrics], alarms: Mapping[str, AlarmView],
              slo: SloThresholds, window_seconds: int) -> Health:
    """The health of one endpoint (``status`` None: it does not exist)."""
    if status is None:
        return Health(ABSENT)
    invocations = sum(m.invocations or 0.0 for m in metrics.values())
    errors = sum(m.errors_5xx or 0.0 for m in metrics.values())
    latencies = [m.p99_ms for m in metrics.values() if m.p99_ms is not None]
    rate = errors / invocations if invocations else None
    p99 = max(latencies) if latencies else None
    figures: dict[str, Any] = {"window_seconds": window_seconds, "invocations": invocations, "error_rate": rate,
                               "p99_ms": p99, "alarms": {n: a.state for n, a in alarms.items()}}
    if status in NOT_SERVING:
        return Health(UNHEALTHY, (f"endpoint is {status}",), **figures)
    reasons = [f"alarm {a.name} in ALARM" + (f": {a.reason}" if a.reason else "")
               for a in alarms.values() if a.state == "ALARM"]
    if status == "RollingBack":
        reasons.append("an update is rolling back")
    if rate is not None and slo.error_rate_5xx is not None and rate > slo.error_rate_5xx:
        reasons.append(f"5xx rate {rate:.1%} above {slo.error_rate_5xx:g} "
                       f"({errors:g} of {invocations:g} invocations in the last {window_seconds} s)")
    if p99 is not None and slo.p99_latency_ms is not None and p99 > slo.p99_latency_ms:
        reasons.append(f"p99 latency {p99:.0f} ms above {slo.p99_latency_ms:g} ms in the last {window_seconds} s")
    if reasons:
        return Health(DEGRADED, tuple(reasons), **figures)
    if not invocations:
        return Health(UNKNOWN, (f"no invocations in the last {window_seconds} s",), **figures)
    return Health(HEALTHY, (), **figures)
