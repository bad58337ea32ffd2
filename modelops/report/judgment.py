"""A judgment (:class:`modelops.verify.judge.Judgment`) as tables and charts: the figures that decided
(metric, both releases' values, the effect with its bounds, the margin, the confidence, the samples,
the outcome), the worst disagreements with their inputs, and per metric a bar chart of the reference
beside the candidate across the judged steps, with the candidate's bounds and the margin it is held to.

The chart draws the decision as the judgment takes it: a ratio's bounds (latency, throughput) and a
difference's (error rates) are put in the metric's own unit around the reference (reference x bound,
reference + bound), and the margin likewise, so a fail is a whisker wholly past the margin's line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelops.report.html import BASELINE_COLOR, LIMIT_COLOR, PALETTE, Chart, Limit, Series, Table
from modelops.verify.judge import format_ratio, format_value

if TYPE_CHECKING:
    from modelops.verify.judge import Judgment, Verdict

HEADER = ("metric", "reference", "candidate", "effect (bounds)", "margin", "confidence", "samples (ref/cand)",
          "outcome")
CANDIDATE_COLOR = PALETTE[0]


def effect_text(v: Verdict) -> str:
    """The effect with its one-sided bounds, in the verdict's terms."""
    if v.metric == "agreement":
        return f"{v.effect:.2%} ({v.low:.2%}..{v.high:.2%})"
    if v.unit == "%":
        return f"{v.effect * 100:+.2f} pp ({v.low * 100:+.2f}..{v.high * 100:+.2f} pp)"
    return f"{format_ratio(v.effect)} ({format_ratio(v.low)}..{format_ratio(v.high)})"


def margin_text(v: Verdict) -> str:
    if v.metric == "agreement":
        return f"minimum {v.margin:.2%}"
    if v.unit == "%":
        return f"+{v.margin * 100:.2f} pp"
    return f"{'+' if v.higher_is_worse else '-'}{v.margin:.0%}"


def outcome_text(judgment: Judgment, v: Verdict) -> str:
    """The verdict's outcome, and whether it decided the judgment or was only reported."""
    if not v.gated:
        return f"{v.outcome.value} (reported, not gated)"
    return v.outcome.value + (" (decided)" if deciding(judgment, v) else "")


def deciding(judgment: Judgment, v: Verdict) -> bool:
    """Whether ``v`` is one of the figures that failed ``judgment``: a gated fail, or a gated
    inconclusive when the policy made an inconclusive end a fail."""
    from modelops.verify.judge import Outcome

    if judgment.outcome != Outcome.FAIL or not v.gated:
        return False
    return v.outcome == Outcome.FAIL or (not judgment.failed and v.outcome == Outcome.INCONCLUSIVE)


def verdict_table(judgment: Judgment, title: str) -> Table:
    """A row per metric: both values, effect and bounds, margin, confidence, samples, outcome."""
    rows, statuses = [], []
    for v in judgment.verdicts:
        rows.append((v.metric, "-" if v.metric == "agreement" else format_value(v.reference, v.unit),
                     format_value(v.candidate, v.unit), effect_text(v), margin_text(v), f"{v.confidence:.0%}",
                     f"{v.samples[0]}/{v.samples[1]}", outcome_text(judgment, v)))
        statuses.append("failed" if deciding(judgment, v) else "passed" if v.outcome.value == "pass" else "")
    note = f"; {judgment.note}" if judgment.note else ""
    return Table(f"{title}: {judgment.outcome.value} ({judgment.candidate} against {judgment.reference}, "
                 f"{judgment.rounds} round(s){note})", HEADER, tuple(rows), tuple(statuses))


def worst_table(judgment: Judgment, title: str) -> Table | None:
    """The worst disagreements, with the input sent and what each release answered (None: none)."""
    if not judgment.worst:
        return None
    return Table(f"{title}: worst disagreements", ("input", judgment.reference, judgment.candidate, "why"),
                 tuple((d.request, d.reference, d.candidate, d.detail) for d in judgment.worst),
                 tuple("failed" for _ in judgment.worst))


def _in_unit(v: Verdict) -> tuple[float, float, tuple[float, float], float, str]:
    """(reference, candidate, candidate's bounds, the margin's line) in the unit the chart shows, and
    that unit's axis label."""
    nan = math.nan
    ref = v.reference if v.reference is not None else nan
    if v.metric == "agreement":
        return nan, v.candidate * 100, (v.low * 100, v.high * 100), v.margin * 100, "% of paired answers agreeing"
    if v.unit == "%":
        return (ref * 100, v.candidate * 100, (max(0.0, (ref + v.low) * 100), (ref + v.high) * 100),
                (ref + v.margin) * 100, "% of requests")
    limit = ref * (1 + v.margin) if v.higher_is_worse else ref * (1 - v.margin)
    return ref, v.candidate, (ref * v.low, ref * v.high), limit, v.unit


def verdict_charts(steps: Sequence[tuple[str, Judgment]], section: str) -> list[Chart]:
    """One chart per metric judged in ``steps`` ((label, judgment), e.g. ("50%", ...)): the reference
    and the candidate side by side at each step, the candidate's bounds, the margin."""
    metrics = list(dict.fromkeys(v.metric for _, j in steps for v in j.verdicts))
    charts = []
    for metric in metrics:
        ref_points, cand_points, bounds, limits = [], [], [], []
        y_label, confidence = "", 0.95
        for i, (_, judgment) in enumerate(steps):
            found = [v for v in judgment.verdicts if v.metric == metric]
            if not found:
                ref_points.append((float(i), math.nan))
                cand_points.append((float(i), math.nan))
                bounds.append((math.nan, math.nan))
                continue
            v = found[0]
            ref, cand, bound, limit, y_label = _in_unit(v)
            ref_points.append((float(i), ref))
            cand_points.append((float(i), cand))
            bounds.append(bound)  # an infinite bound (too few rounds to bound it) draws no whisker
            confidence = v.confidence
            if math.isfinite(limit):
                label = "minimum agreement" if metric == "agreement" else f"margin ({margin_text(v)} of the reference)"
                limits.append(Limit(label, limit, LIMIT_COLOR, True, category=i))
        reference = steps[0][1].reference
        candidate = steps[0][1].candidate
        series = (Series(f"reference {reference}", tuple(ref_points), BASELINE_COLOR),
                  Series(f"candidate {candidate} ({confidence:.0%} bounds)",
                         tuple(cand_points), CANDIDATE_COLOR, intervals=tuple(bounds)))
        charts.append(Chart(f"{metric}: reference vs candidate", "candidate's share of the traffic (judged step)",
                            y_label, series, tuple(limits), section, categories=tuple(label for label, _ in steps)))
    return charts
