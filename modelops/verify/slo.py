"""SLOs: what a load run's figures are held to.

SLOs come from ``model.yaml`` (``spec.tests.load.slo``: p50/p95/p99 ceilings, maximum error rate,
minimum requests per second): absolute thresholds the user wrote, the only gates of a load test. The
stored baseline of an earlier run is history, shown and never gated (:mod:`modelops.verify.history`)."""

from __future__ import annotations

from dataclasses import dataclass

from modelops.config.model import Slo
from modelops.verify.load import LoadStats

SLO = "slo"


@dataclass(frozen=True)
class LimitCheck:
    """One figure against one limit. ``name`` is e.g. ``slo.p95_ms`` or ``slo.rps``;
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
