"""SLOs and the baseline: what a load run's figures are held to.

SLOs come from ``model.yaml`` (``spec.tests.load.slo``: p50/p95/p99 ceilings, maximum error rate,
minimum requests per second). The baseline is the last passing load test of another release in the
same environment and region (from the ledger); p95 may not grow, nor throughput drop, by more than
the policy's tolerance (``pipelines/policy.yaml`` ``baseline``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelops.config.model import Slo
from modelops.config.policy import Policy
from modelops.verify.load import LoadStats

SLO = "slo"
BASELINE = "baseline"


@dataclass(frozen=True)
class LimitCheck:
    """One figure against one limit. ``name`` is e.g. ``slo.p95_ms`` or ``baseline.rps``;
    ``comparison`` is ``<=`` (a ceiling) or ``>=`` (a floor)."""

    name: str
    kind: str
    metric: str
    actual: float | None
    limit: float
    comparison: str
    passed: bool
    detail: str = ""

    @property
    def measured(self) -> str:
        """The figure measured, in its unit (``12.3 req/s``, ``no data``)."""
        return "no data" if self.actual is None else _fmt(self.metric, self.actual)

    @property
    def threshold(self) -> str:
        """The limit with its comparison (``>= 20.0 req/s``)."""
        return f"{self.comparison} {_fmt(self.metric, self.limit)}"

    @property
    def message(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        text = f"{self.metric} {self.measured} (limit {self.threshold}) {verdict}"
        return f"{text}; {self.detail}" if self.detail else text

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "metric": self.metric, "actual": self.actual,
                "limit": self.limit, "comparison": self.comparison, "passed": self.passed, "message": self.message}


def _fmt(metric: str, value: float) -> str:
    if metric.endswith("_ms"):
        return f"{value:g} ms"
    if metric == "rps":
        return f"{value:.1f} req/s"
    if metric == "error_rate":
        return f"{value:.2%}"
    return f"{value:g}"


def _ceiling(kind: str, metric: str, actual: float | None, limit: float, detail: str = "") -> LimitCheck:
    return LimitCheck(f"{kind}.{metric}", kind, metric, actual, limit, "<=",
                      actual is not None and actual <= limit, detail)


def _floor(kind: str, metric: str, actual: float | None, limit: float, detail: str = "") -> LimitCheck:
    return LimitCheck(f"{kind}.{metric}", kind, metric, actual, limit, ">=",
                      actual is not None and actual >= limit, detail)


def slo_checks(stats: LoadStats, slo: Slo) -> tuple[LimitCheck, ...]:
    """Each SLO the model sets, checked against the run."""
    checks = []
    for metric in ("p50_ms", "p95_ms", "p99_ms"):
        limit = getattr(slo, metric)
        if limit is not None:
            checks.append(_ceiling(SLO, metric, getattr(stats, metric), float(limit)))
    if slo.max_error_rate is not None:
        checks.append(_ceiling(SLO, "error_rate", stats.error_rate, float(slo.max_error_rate)))
    if slo.min_rps is not None:
        checks.append(_floor(SLO, "rps", stats.rps, float(slo.min_rps)))
    return tuple(checks)


def baseline_checks(stats: LoadStats, baseline: Mapping[str, float], release: str,
                    policy: Policy) -> tuple[LimitCheck, ...]:
    """p95 and throughput against the baseline release's, within the policy's tolerances."""
    checks = []
    base_p95 = baseline.get("p95_ms")
    if base_p95 is not None:
        limit = max(base_p95 * (1 + policy.baseline_p95_tolerance), base_p95 + policy.baseline_p95_slack_ms)
        checks.append(_ceiling(BASELINE, "p95_ms", stats.p95_ms, limit,
                               f"baseline {release}: {base_p95:g} ms, +{policy.baseline_p95_tolerance:.0%} allowed"))
    base_rps = baseline.get("rps")
    if base_rps is not None:
        limit = base_rps * (1 - policy.baseline_throughput_tolerance)
        checks.append(_floor(BASELINE, "rps", stats.rps, limit,
                             f"baseline {release}: {base_rps:.1f} req/s, "
                             f"-{policy.baseline_throughput_tolerance:.0%} allowed"))
    return tuple(checks)
