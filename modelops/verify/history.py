"""Stored load figures as history and trend, never a gate.

A load test's figures depend on the machine as much as on the release: on a shared 2-core CI machine
the same release measured 919 to 1,945 requests/s from one run to the next. So a figure stored from
another run (the *baseline*: the last passing load test of another release in the same environment
and region) is shown beside today's, with the change in percent and the trend over the last runs, and
nothing fails on it. Whether a release is worse than the one serving is decided by a comparison in
the same window on the same inputs: the judged canary (``rollout.strategy: judged_canary``,
:mod:`modelops.verify.judge`). The gates of ``modelops test`` are the thresholds the user wrote (SLOs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: How many earlier load runs the trend shows.
TREND_RUNS = 10
#: The figures compared with the baseline, and which way is worse.
COMPARED = (("p95_ms", " ms", True), ("rps", " req/s", False))
NOT_A_GATE = ("history, not a gate: stored figures come from other runs at other times; the release is judged "
              "against the serving one in the same window by the judged canary (rollout strategy judged_canary)")


@dataclass(frozen=True)
class PastRun:
    """One recorded load test: its release, when, and its figures (``p95_ms``, ``rps``, ...)."""

    release: str
    at: float
    metrics: Mapping[str, float]
    passed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release, "at": self.at, "passed": self.passed, "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class Change:
    """One figure of this run beside the baseline's: ``change`` is (value - baseline) / baseline;
    ``trend`` the figure over the earlier runs, oldest first, then this run's."""

    metric: str
    unit: str
    value: float | None
    baseline: float | None
    release: str
    higher_is_worse: bool
    trend: tuple[float, ...] = ()

    @property
    def change(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return (self.value - self.baseline) / self.baseline

    @property
    def worse(self) -> bool:
        """Whether the figure moved the bad way (said, never failed on)."""
        c = self.change
        return c is not None and (c > 0 if self.higher_is_worse else c < 0)

    def change_text(self) -> str:
        c = self.change
        return "-" if c is None else f"{c * 100:+.1f}%"

    def trend_text(self) -> str:
        return ", ".join(_fmt(v, "") for v in self.trend) + (self.unit if self.trend else "")

    @property
    def message(self) -> str:
        """``p95_ms 12 ms vs 8 ms in iris-ab12 (+50.0%); last 4 runs: 8, 9, 8, 12 ms (history, not a gate)``."""
        text = (f"{self.metric} {_fmt(self.value, self.unit)} vs {_fmt(self.baseline, self.unit)} in {self.release} "
                f"({self.change_text()})")
        if len(self.trend) > 1:
            text += f"; last {len(self.trend)} runs: {self.trend_text()}"
        return text + " (history, not a gate)"

    def to_dict(self) -> dict[str, Any]:
        c = self.change
        return {"metric": self.metric, "value": self.value, "baseline": self.baseline, "release": self.release,
                "change_pct": None if c is None else round(c * 100, 2), "worse": self.worse,
                "trend": list(self.trend), "message": self.message}


@dataclass(frozen=True)
class History:
    """What the ledger holds about earlier load tests in one (environment, region): the baseline (the
    last passing run of another release, or None) and the last runs (any release), oldest first."""

    baseline: PastRun | None
    runs: tuple[PastRun, ...] = ()
    changes: tuple[Change, ...] = ()

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.baseline.metrics if self.baseline else {}

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.baseline.release if self.baseline else None,
                "at": self.baseline.at if self.baseline else None,
                "metrics": dict(self.metrics), "gate": False, "note": NOT_A_GATE,
                "changes": [c.to_dict() for c in self.changes], "runs": [r.to_dict() for r in self.runs]}


def history(baseline: PastRun | None, runs: Sequence[PastRun], figures: Mapping[str, float | None]) -> History:
    """The history of a load run with ``figures`` (this run's ``p95_ms``, ``rps``...): each compared
    figure beside the baseline's, with its trend."""
    changes = []
    if baseline is not None:
        for metric, unit, higher_is_worse in COMPARED:
            base = baseline.metrics.get(metric)
            value = figures.get(metric)
            if base is None:
                continue
            trend = tuple(float(r.metrics[metric]) for r in runs if metric in r.metrics)
            changes.append(Change(metric, unit, value, float(base), baseline.release, higher_is_worse,
                                  trend + ((float(value),) if value is not None else ())))
    return History(baseline, tuple(runs), tuple(changes))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit.strip() == "req/s" or (not unit and value >= 100):
        return f"{value:.1f}{unit}" if unit else f"{value:.0f}"
    return f"{value:g}{unit}"
