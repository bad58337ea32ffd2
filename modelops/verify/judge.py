"""The judgment: is the candidate release worse than the reference (the release serving), measured in
the same window on the same inputs? Pure statistics; nothing here sends a request.

The data are **rounds**: short stretches of a bake in which every input went to both releases, one
right after the other, in alternating order (:mod:`modelops.verify.mirror`). Whatever slows the
machine in a round (another job, a noisy neighbour, a garbage collection) slows both sides of it, so
the comparison is paired by round and never against a figure recorded at another time.

Each metric ends in a :class:`Verdict` with an effect (a ratio for latency and throughput, a
difference for rates), its one-sided confidence bounds, the margin the policy allows, and an outcome:

- **fail**: the candidate is worse than the margin allows, with the stated confidence (the lower
  bound of how much worse is past the margin);
- **pass**: with the same confidence it is not (the upper bound is within the margin);
- **inconclusive**: the data cannot tell yet; the bake goes on for another round, up to a limit.
  What an inconclusive end means is the policy's ``on_inconclusive``: ``pass`` by default, as Kayenta
  and Flagger judge (a release is held back on evidence that it is worse, not for a lack of evidence
  that it is not); ``fail`` demands that evidence, which takes more traffic than a short bake on a
  busy machine gives.

A latency or throughput fail must also **replicate**: each half of the rounds, judged alone, must
fail it too. On a shared machine one instance can run slower than its twin for seconds at a time (a
busy neighbour on its core), which over one bake looks like a slower release; a slower release is
slower in every stretch of the bake.

The methods, and why:

- latency quantile (p95 by default): in each round the ratio of the candidate's quantile to the
  reference's (the machine's state of that round cancels out), their geometric mean as the effect,
  and a bootstrap over rounds for its bounds, so the interval carries what varies from round to round
  instead of pretending requests are independent;
- throughput: what one connection sustains (requests per second = 1 / mean latency) is compared the
  same way; mirrored requests are sent in lock step, so their counts cannot differ by themselves;
- error rate (5xx, model errors, no answer): the difference of two proportions with Newcombe's hybrid
  score interval (method 10), sound at 0 errors where the Wald interval is not;
- answer agreement: the share of paired answers that agree within the model's tolerances, with a
  Wilson score interval against the environment's minimum. A model that declares its answers are
  expected to change (a new model version) has the agreement reported, not gated.

The accuracy of these rules on a loaded machine (A/A false failures, power against real regressions)
is measured by ``bench/judge.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from statistics import NormalDist
from typing import Any

BOOTSTRAP_RESAMPLES = 2000
#: A round's quantile needs this many answers per side to count.
MIN_PER_ROUND = 10
#: Disagreements kept for the report (the first seen of each input, worst first).
WORST_KEPT = 5


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class JudgmentPolicy:
    """What a judgment holds a candidate to (from ``pipelines/policy.yaml`` ``judgment:``)."""

    confidence: float = 0.95
    max_rounds: int = 3
    on_inconclusive: str = "pass"
    latency_quantile: float = 95.0
    latency_margin: float = 0.10
    throughput_margin: float = 0.10
    error_margin: float = 0.005
    min_agreement: float = 0.99
    expect_change: bool = False  # the model declares its answers change: agreement reported, not gated


def judgment_policy(judgment: Any, environment: str, *, expect_change: bool = False) -> JudgmentPolicy:
    """The policy a judgment in ``environment`` holds a candidate to, from ``judgment:`` of
    policy.yaml (:class:`modelops.config.policy.Judgment`) and the model's ``answers.expect_change``."""
    return JudgmentPolicy(
        confidence=judgment.confidence, max_rounds=judgment.max_rounds, on_inconclusive=judgment.on_inconclusive,
        latency_quantile=judgment.latency_quantile, latency_margin=judgment.latency_margin,
        throughput_margin=judgment.latency_margin, error_margin=judgment.error_margin,
        min_agreement=judgment.min_agreement_for(environment), expect_change=expect_change)


@dataclass
class Side:
    """What one release did in one round."""

    latencies_ms: list[float] = field(default_factory=list)  # of the answered requests
    errors: int = 0  # 5xx, model errors, no answer
    sent: int = 0


@dataclass(frozen=True)
class Disagreement:
    """One input the two releases answered differently: what was sent and what each said."""

    request: str
    reference: str
    candidate: str
    detail: str
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request, "reference": self.reference, "candidate": self.candidate,
                "detail": self.detail, "score": self.score}


@dataclass
class Round:
    """One round of mirrored requests: both sides, and the answers compared."""

    reference: Side = field(default_factory=Side)
    candidate: Side = field(default_factory=Side)
    compared: int = 0  # pairs where both answered (their answers compared)
    agreed: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """The judgment of one metric. ``effect`` and its bounds are a ratio (candidate / reference) for
    latency and throughput, a difference (candidate - reference) for error rates, and the candidate's
    own share for agreement; ``margin`` is in the same terms."""

    metric: str
    unit: str
    reference: float | None
    candidate: float
    effect: float
    low: float
    high: float
    margin: float
    confidence: float
    samples: tuple[int, int]
    outcome: Outcome
    gated: bool = True

    def figures(self) -> str:
        """Both values, the effect with its bounds, the margin and the samples, in one line."""
        conf = f"{self.confidence:.0%}"
        n_ref, n_cand = self.samples
        if self.metric == "agreement":
            return (f"agreement {self.candidate:.1%} of {n_cand} paired answers "
                    f"({conf} interval {self.low:.1%}..{self.high:.1%}), minimum {self.margin:.1%}")
        if self.unit == "%":
            return (f"{self.metric} {self.candidate:.2%} vs {format_value(self.reference, self.unit)} "
                    f"({self.effect * 100:+.2f} pp, {conf} bounds {self.low * 100:+.2f}..{self.high * 100:+.2f} pp), "
                    f"margin +{self.margin * 100:.2f} pp, n={n_cand}/{n_ref}")
        worse = "+" if self.higher_is_worse else "-"
        return (f"{self.metric} {format_value(self.candidate, self.unit)} vs {format_value(self.reference, self.unit)} "
                f"({format_ratio(self.effect)}, {conf} bounds {format_ratio(self.low)}..{format_ratio(self.high)}), "
                f"margin {worse}{self.margin:.0%}, n={n_cand}/{n_ref}")

    @property
    def higher_is_worse(self) -> bool:
        """Whether a larger value is worse (latency, error rates) or better (throughput, agreement)."""
        return self.metric not in ("throughput", "agreement")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "unit": self.unit, "reference": self.reference, "candidate": self.candidate,
                "effect": self.effect, "low": self.low, "high": self.high, "margin": self.margin,
                "confidence": self.confidence, "samples": {"reference": self.samples[0], "candidate": self.samples[1]},
                "outcome": self.outcome.value, "gated": self.gated, "figures": self.figures()}


def format_value(value: float | None, unit: str) -> str:
    """A verdict's value in its unit: a share (``%``, ``ratio``) in percent, else 3 digits and the unit."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit in ("%", "ratio"):
        return f"{value:.2%}"
    return f"{value:.3g} {unit}"


def format_ratio(ratio: float) -> str:
    """A ratio (candidate / reference) as a change in percent."""
    return f"{(ratio - 1) * 100:+.1f}%" if math.isfinite(ratio) else "inf"


@dataclass(frozen=True)
class Judgment:
    """The verdicts of a candidate against a reference over ``rounds`` rounds; ``outcome`` is fail if
    any gated verdict fails, pass if all pass, else inconclusive (before the policy's last round) or
    what the policy says an inconclusive end means."""

    reference: str
    candidate: str
    outcome: Outcome
    verdicts: tuple[Verdict, ...]
    rounds: int
    worst: tuple[Disagreement, ...] = ()
    note: str = ""

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.gated and v.outcome == Outcome.FAIL)

    def summary(self) -> str:
        """One line: the outcome and the figures that decided it."""
        deciding = self.failed or tuple(v for v in self.verdicts if v.gated and v.outcome == Outcome.INCONCLUSIVE)
        if self.outcome == Outcome.PASS and not deciding:
            return f"judgment pass: {self.candidate} is no worse than {self.reference} ({self.rounds} round(s))"
        head = f"judgment {self.outcome.value}: {self.candidate} against {self.reference}"
        return head + (": " + "; ".join(v.figures() for v in deciding) if deciding else "") + (
            f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "candidate": self.candidate, "outcome": self.outcome.value,
                "rounds": self.rounds, "note": self.note, "summary": self.summary(),
                "verdicts": [v.to_dict() for v in self.verdicts], "worst": [d.to_dict() for d in self.worst]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Judgment:
        verdicts = tuple(Verdict(
            metric=v["metric"], unit=v["unit"], reference=v["reference"], candidate=v["candidate"],
            effect=v["effect"], low=v["low"], high=v["high"], margin=v["margin"], confidence=v["confidence"],
            samples=(v["samples"]["reference"], v["samples"]["candidate"]), outcome=Outcome(v["outcome"]),
            gated=v.get("gated", True)) for v in doc.get("verdicts", ()))
        worst = tuple(Disagreement(**d) for d in doc.get("worst", ()))
        return cls(reference=doc["reference"], candidate=doc["candidate"], outcome=Outcome(doc["outcome"]),
                   verdicts=verdicts, rounds=int(doc.get("rounds", 0)), worst=worst, note=doc.get("note", ""))


# -- the tests ---------------------------------------------------------------------------------------


def _decide(low: float, high: float, limit: float, *, higher_is_worse: bool) -> Outcome:
    """fail when the whole interval is past ``limit`` on the worse side, pass when it is all on the
    good side, inconclusive otherwise."""
    if higher_is_worse:
        return Outcome.FAIL if low > limit else Outcome.PASS if high <= limit else Outcome.INCONCLUSIVE
    return Outcome.FAIL if high < limit else Outcome.PASS if low >= limit else Outcome.INCONCLUSIVE


def _quantile(values: Any, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q, method="linear")) if len(values) else math.nan


def paired_ratio(rounds: Sequence[tuple[Sequence[float], Sequence[float]]], statistic: str, q: float, *,
                 confidence: float, seed: int = 0) -> tuple[float, float, float, float, float]:
    """The ratio candidate / reference of ``statistic`` (``quantile`` q, or ``mean``), paired by round:
    each round's ratio (both sides saw the same machine), their geometric mean as the effect, and its
    one-sided ``confidence`` bounds from a bootstrap over rounds. ``rounds``: (reference values,
    candidate values) of each round. Returns (reference, candidate, ratio, low, high), the first two
    over all rounds pooled (what a reader compares)."""
    import numpy as np

    def stat(values: Any) -> float:
        if not len(values):
            return math.nan
        return float(np.mean(values)) if statistic == "mean" else _quantile(values, q)

    ref = stat(np.concatenate([np.asarray(r, dtype=float) for r, _ in rounds]))
    cand = stat(np.concatenate([np.asarray(c, dtype=float) for _, c in rounds]))
    logs = np.asarray([math.log(stat(c) / stat(r)) for r, c in rounds
                       if len(r) >= MIN_PER_ROUND and len(c) >= MIN_PER_ROUND and stat(r) > 0 and stat(c) > 0])
    if logs.size < 2:
        return ref, cand, cand / ref if ref > 0 else math.inf, 0.0, math.inf
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, logs.size, size=(BOOTSTRAP_RESAMPLES, logs.size))].mean(axis=1)
    tail = (1 - confidence) * 100
    return (ref, cand, math.exp(float(logs.mean())), math.exp(float(np.percentile(means, tail))),
            math.exp(float(np.percentile(means, 100 - tail))))


def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion (``z``: the normal quantile of each tail)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x_cand: int, n_cand: int, x_ref: int, n_ref: int, z: float) -> tuple[float, float, float]:
    """The difference of two proportions (candidate - reference) and its bounds, by Newcombe's hybrid
    score method (Wilson intervals of each side combined)."""
    p1 = x_cand / n_cand if n_cand else 0.0
    p2 = x_ref / n_ref if n_ref else 0.0
    l1, u1 = wilson(x_cand, n_cand, z)
    l2, u2 = wilson(x_ref, n_ref, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _performance(rounds: Sequence[Round], policy: JudgmentPolicy, seed: int) -> tuple[Verdict, ...]:
    """The latency quantile and throughput verdicts of ``rounds`` (none when a side never answered)."""
    c = policy.confidence
    pairs = [(r.reference.latencies_ms, r.candidate.latencies_ms) for r in rounds]
    n_ref = sum(len(r.reference.latencies_ms) for r in rounds)
    n_cand = sum(len(r.candidate.latencies_ms) for r in rounds)
    if not (n_ref and n_cand):
        return ()
    q = policy.latency_quantile
    ref, cand, ratio, low, high = paired_ratio(pairs, "quantile", q, confidence=c, seed=seed)
    latency = Verdict(f"latency p{q:g}", "ms", ref, cand, ratio, low, high, policy.latency_margin, c,
                      (n_ref, n_cand), _decide(low, high, 1 + policy.latency_margin, higher_is_worse=True))
    ref_m, cand_m, ratio_m, low_m, high_m = paired_ratio(pairs, "mean", 0, confidence=c, seed=seed + 1)

    def inv(x: float) -> float:  # throughput of one connection is 1 / mean latency: ratio and bounds invert
        return 1 / x if x > 0 else math.inf

    throughput = Verdict("throughput", "req/s", 1000 / ref_m, 1000 / cand_m if cand_m > 0 else math.inf,
                         inv(ratio_m), inv(high_m), inv(low_m), policy.throughput_margin, c, (n_ref, n_cand),
                         _decide(inv(high_m), inv(low_m), 1 - policy.throughput_margin, higher_is_worse=False))
    return latency, throughput


def _unreplicated(verdicts: Sequence[Verdict], rounds: Sequence[Round], policy: JudgmentPolicy,
                  seed: int) -> list[str]:
    """The failed performance metrics that do not fail in each half of the rounds judged alone. A
    performance fail counts only when it replicates: on a shared machine one instance can be slower
    than its twin for seconds at a time (the scheduler put it beside a busy neighbour): over a whole
    bake that looks like a slower release, but it comes and goes, while a slower release is slower in
    every stretch of the bake. Rates (errors, agreement) need no such check: a slow instance neither
    errs nor answers differently."""
    failed = [v.metric for v in verdicts if v.outcome == Outcome.FAIL]
    if not failed:
        return []
    half = len(rounds) // 2
    halves = [{v.metric: v.outcome for v in _performance(part, policy, seed)} for part in (rounds[:half], rounds[half:])]
    return [m for m in failed if any(h.get(m) != Outcome.FAIL for h in halves)]


# -- the judgment -------------------------------------------------------------------------------------


def judge(rounds: Sequence[Round], policy: JudgmentPolicy, *, reference: str, candidate: str,
          final: bool = True, seed: int | None = None) -> Judgment:
    """Judge ``candidate`` against ``reference`` over ``rounds``. ``final``: no more rounds will come,
    so an inconclusive outcome becomes what the policy says (``on_inconclusive``)."""
    c = policy.confidence
    z = NormalDist().inv_cdf(c)
    seed = random.randrange(2**31) if seed is None else seed
    verdicts = list(_performance(rounds, policy, seed))
    unreplicated = _unreplicated(verdicts, rounds, policy, seed)
    verdicts = [replace(v, outcome=Outcome.INCONCLUSIVE) if v.metric in unreplicated else v for v in verdicts]
    sent_ref = sum(r.reference.sent for r in rounds)
    sent_cand = sum(r.candidate.sent for r in rounds)
    if sent_ref and sent_cand:
        err_ref = sum(r.reference.errors for r in rounds)
        err_cand = sum(r.candidate.errors for r in rounds)
        d, low, high = newcombe(err_cand, sent_cand, err_ref, sent_ref, z)
        verdicts.append(Verdict("error rate", "%", err_ref / sent_ref, err_cand / sent_cand, d, low, high,
                                policy.error_margin, c, (sent_ref, sent_cand),
                                _decide(low, high, policy.error_margin, higher_is_worse=True)))
    compared = sum(r.compared for r in rounds)
    if compared:
        agreed = sum(r.agreed for r in rounds)
        low, high = wilson(agreed, compared, z)
        share = agreed / compared
        verdicts.append(Verdict("agreement", "ratio", None, share, share, low, high, policy.min_agreement, c,
                                (compared, compared),
                                _decide(low, high, policy.min_agreement, higher_is_worse=False),
                                gated=not policy.expect_change))
    gated = [v for v in verdicts if v.gated]
    note = ""
    if unreplicated:
        note = (f"{' and '.join(unreplicated)} worse over the rounds but not in each half of them: not counted "
                "as a fail (one instance slowed by a busy neighbour for a while; a slower release is slower throughout)")
    if not gated:
        outcome, note = Outcome.INCONCLUSIVE, "no request was answered by both releases"
    elif any(v.outcome == Outcome.FAIL for v in gated):
        outcome = Outcome.FAIL
    elif all(v.outcome == Outcome.PASS for v in gated):
        outcome = Outcome.PASS
    else:
        outcome = Outcome.INCONCLUSIVE
    if outcome == Outcome.INCONCLUSIVE and final:
        outcome = Outcome(policy.on_inconclusive)
        note = (note + "; " if note else "") + (
            f"still inconclusive after {len(rounds)} round(s): policy judgment.on_inconclusive is {outcome.value}")
    if policy.expect_change and compared:
        note = (note + "; " if note else "") + "answers are expected to change (model.yaml answers.expect_change): " \
                                               "agreement reported, not gated"
    worst = sorted((d for r in rounds for d in r.disagreements),
                   key=lambda d: (d.score if d.score is not None else -1.0))[:WORST_KEPT]
    return Judgment(reference=reference, candidate=candidate, outcome=outcome, verdicts=tuple(verdicts),
                    rounds=len(rounds), worst=tuple(worst), note=note)
