"""A deploy's reports say why: a judged canary rolled back on wrong answers, and a --through stopped by
failed tests, rendered as JUnit, Markdown and HTML (the HTML's charts laid out by headless Chromium).
The judgments are real ones, computed by the judge from synthetic mirrored rounds."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelops.config.cases import Case, CaseRequest, Check, Expectation
from modelops.config.model import Slo
from modelops.config.yamlsource import Position
from modelops.deploy.api import TESTS_FAILED, DeployResult
from modelops.deploy.judged import JudgedStep
from modelops.deploy.rollout import RegionOutcome
from modelops.report.deployrun import RENDERERS, to_charts, to_report, to_tables
from modelops.verify.invoke import Invocation
from modelops.verify.judge import Disagreement, JudgmentPolicy, Outcome, Round, judge
from modelops.verify.load import LoadPlan, LoadStats
from modelops.verify.regression import evaluate
from modelops.verify.service import LoadResult, RegionReport, TestReport
from modelops.verify.slo import slo_checks
from tests.helpers import CHROMIUM, measured_in_chromium

REFERENCE, CANDIDATE = "iris-aaaaaaaaaa", "iris-bbbbbbbbbb"
INPUT = '{"instances": [[5.9, 3.0, 4.2, 1.5]]}'


def _rounds(n_rounds: int, per_round: int, *, flips: float, seed: int) -> list[Round]:
    """Mirrored rounds of two equally fast releases; the candidate answers ``flips`` of inputs differently."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_rounds):
        noise = rng.choice((1.0, 1.3))
        r = Round()
        for _ in range(per_round):
            for side in (r.reference, r.candidate):
                side.sent += 1
                side.latencies_ms.append(rng.lognormvariate(1.0, 0.3) * noise)
            r.compared += 1
            if rng.random() < flips:
                r.disagreements.append(Disagreement(INPUT, '{"label": "versicolor"}', '{"label": "virginica"}',
                                                    "$.label: versicolor != virginica", 0.0))
            else:
                r.agreed += 1
        out.append(r)
    return out


def _judged_rollback() -> DeployResult:
    """prod/us-east-1: the 10% step passes, the 50% step fails on agreement and rolls back."""
    policy = JudgmentPolicy(latency_margin=1.0, throughput_margin=0.9)  # this scenario is about answers
    passed = judge(_rounds(10, 60, flips=0.0, seed=1), policy, reference=REFERENCE, candidate=CANDIDATE, seed=1)
    failed = judge(_rounds(10, 60, flips=0.06, seed=2), policy, reference=REFERENCE, candidate=CANDIDATE, seed=2)
    assert (passed.outcome, failed.outcome) == (Outcome.PASS, Outcome.FAIL)
    detail = f"{failed.summary()}; traffic taken back from the candidate at once; back on {REFERENCE}"
    region = RegionOutcome("prod", "us-east-1", "iris-prod", CANDIDATE, "rolled_back", detail, REFERENCE, REFERENCE,
                           (JudgedStep(10, passed), JudgedStep(50, failed)))
    skipped = RegionOutcome("prod", "eu-west-1", "iris-prod", CANDIDATE, "skipped", "not touched")
    return DeployResult("iris", CANDIDATE, "rolled_back", (region, skipped),
                        f"{CANDIDATE} rolled back in prod/us-east-1: {detail}", ("prod",))


def _failed_tests() -> DeployResult:
    """--through staging: dev deployed, dev's tests failed one regression case and the rps SLO."""
    stats = LoadStats(requests=30, failures=0, duration_seconds=3, rps=10.0, error_rate=0, p50_ms=2, p95_ms=6,
                      p99_ms=8)
    slo = Slo(p95_ms=150, min_rps=20)
    bad = evaluate(Case("setosa", CaseRequest(), Expectation(checks=(Check("$.label", "equals", "setosa"),)),
                        position=Position("models/iris/tests/cases.yaml", 12, 5)),
                   Invocation(200, b'{"label": "virginica"}', 2.0))
    region = RegionReport("us-east-1", "iris-dev", CANDIDATE, regression=(bad,),
                          load=LoadResult(stats, LoadPlan(users=2, spawn_rate=2, duration_seconds=3),
                                          slo_checks(stats, slo)))
    tests = TestReport("iris", "dev", CANDIDATE, (region,), "models/iris/tests/cases.yaml", "models/iris/model.yaml")
    dev = RegionOutcome("dev", "us-east-1", "iris-dev", CANDIDATE, "succeeded", f"serving {CANDIDATE}", None,
                        CANDIDATE)
    return DeployResult("iris", CANDIDATE, TESTS_FAILED, (dev,), "tests failed in dev", ("dev",), (tests,))


def test_junit_has_a_case_per_rollout_and_judged_step_whose_failure_is_the_figures_that_decided() -> None:
    result = _judged_rollback()
    root = ET.fromstring(RENDERERS["junit"](result))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"prod/us-east-1 rollout", "prod/us-east-1 judged 10%", "prod/us-east-1 judged 50%",
                          "prod/eu-west-1 rollout"}
    assert cases["prod/us-east-1 judged 10%"].find("failure") is None
    failure = cases["prod/us-east-1 judged 50%"].find("failure")
    assert failure is not None and failure.get("type") == "judgment.agreement"
    message = failure.get("message") or ""
    agreement = next(v for v in result.deployments[0].judgments[1].judgment.verdicts if v.metric == "agreement")
    assert message == f"fail (decided): {agreement.figures()}", message
    assert "agreement" in message and "paired answers" in message and "minimum 99.0%" in message
    # The verdicts that did not decide are there too, with their figures.
    assert "latency p95" in (cases["prod/us-east-1 judged 50%"].findtext("system-out") or "")
    rollout = cases["prod/us-east-1 rollout"].find("failure")
    assert rollout is not None and "agreement" in (rollout.get("message") or "")
    assert root.get("failures") == "2"


def test_markdown_has_a_table_per_judgment_and_the_worst_disagreements_with_their_inputs() -> None:
    md = RENDERERS["markdown"](_judged_rollback())
    assert md.startswith("### modelops deploy iris (iris-bbbbbbbbbb): ❌ failed")
    # The rows list what did not pass (the tables show every figure): no passing verdict twice.
    assert "| ❌ failed | `judgment.agreement` | `prod/us-east-1 judged 50%` | fail (decided): agreement " in md
    assert "| ✅ passed |" not in md
    assert "#### prod/us-east-1 judged at 50%: fail (iris-bbbbbbbbbb against iris-aaaaaaaaaa" in md
    assert ("| metric | reference | candidate | effect (bounds) | margin | confidence | samples (ref/cand) | outcome |"
            in md)
    agreement = next(line for line in md.splitlines() if line.startswith("| ❌ agreement"))
    assert "minimum 99.00%" in agreement and "fail (decided)" in agreement and "| 95% |" in agreement
    latency = next(line for line in md.splitlines() if line.startswith("| ✅ latency p95") or
                   line.startswith("| latency p95"))
    assert " ms | " in latency and "| 600/600 |" in latency
    assert "#### prod/us-east-1 judged at 50%: worst disagreements" in md
    assert '{"instances": [[5.9, 3.0, 4.2, 1.5]]}' in md and "$.label: versicolor != virginica" in md


def test_failed_tests_of_a_through_are_cases_and_a_table_of_measured_against_threshold() -> None:
    result = _failed_tests()
    doc = result.to_dict()
    assert result.exit_status == 1
    checks = doc["tests"][0]["failed_checks"]
    assert [(c["check"], c["measured"], c["threshold"]) for c in checks] == [
        ("regression.setosa", '"virginica"', 'expected equals "setosa"'),
        ("slo.rps", "10.0 req/s", ">= 20.0 req/s")]
    assert checks[0]["where"] == "models/iris/tests/cases.yaml:12"
    root = ET.fromstring(RENDERERS["junit"](result))
    tests = next(c for c in root.iter("testcase") if c.get("name") == "dev tests")
    failure = tests.find("failure")
    assert failure is not None and (failure.get("message") or "").startswith("2 problem(s); first: ")
    assert "rps 10.0 req/s (limit >= 20.0 req/s) FAILED" in (failure.text or "")
    md = RENDERERS["markdown"](result)
    assert "#### Failed checks of the tests in dev (iris-bbbbbbbbbb)" in md
    assert "| ❌ us-east-1 | slo.rps | 10.0 req/s | >= 20.0 req/s |" in md
    html = RENDERERS["html"](result)
    assert "Failed checks of the tests in dev" in html and "&gt;= 20.0 req/s" in html
    assert to_charts(result) == []  # nothing was judged


def test_charts_put_both_releases_side_by_side_per_metric_with_the_bounds_and_the_margin() -> None:
    result = _judged_rollback()
    charts = to_charts(result)
    assert [c.title for c in charts] == ["latency p95: reference vs candidate", "throughput: reference vs candidate",
                                         "error rate: reference vs candidate", "agreement: reference vs candidate"]
    agreement = charts[3]
    assert agreement.categories == ("10%", "50%")
    _, candidate = agreement.series
    assert candidate.intervals[1][1] < 99.0 < candidate.intervals[0][1]  # 50%: the whole interval under the minimum
    assert [lim.value for lim in agreement.limits] == [99.0, 99.0]
    latency = charts[0]
    ref_ms = latency.series[0].points[0][1]
    assert latency.limits[0].value == pytest.approx(ref_ms * 2.0)  # margin +100% of the reference
    assert to_report(result).failed and len(to_tables(result)) == 1 + 2 + 1


def _measure(page: str, tmp_path: Path) -> list[dict]:
    """Lay the page out in headless Chromium and measure each chart: text past its edges, its bars
    (colour, height), its whiskers' ends and its margin lines (y in pixels, down is larger)."""
    script = """
<script>
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    const clipped = [...svg.querySelectorAll('text')].filter(t => {
      const b = t.getBoundingClientRect();
      return b.left < box.left || b.right > box.right || b.top < box.top || b.bottom > box.bottom;
    }).map(t => t.textContent);
    const bars = [...svg.querySelectorAll('rect[fill]')].filter(r => r.getAttribute('fill') !== '#ffffff')
      .map(r => ({fill: r.getAttribute('fill'), height: r.getBoundingClientRect().height,
                  x: r.getBoundingClientRect().left}));
    const whiskers = [...svg.querySelectorAll('g')].map(g => {
      const ys = [...g.querySelectorAll('line')].map(l => l.getBoundingClientRect());
      return {top: Math.min(...ys.map(b => b.top)), bottom: Math.max(...ys.map(b => b.bottom))};
    });
    const margins = [...svg.querySelectorAll('line[stroke="#d62728"]')].filter(l => l.querySelector('title'))
      .map(l => l.getBoundingClientRect().top);
    return {title: svg.getAttribute('aria-label'), clipped, bars, whiskers, margins};
  });
  document.body.innerHTML = '<pre id="measured">' + JSON.stringify(charts) + '</pre>';
});
</script>
"""
    return measured_in_chromium(page, script, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is installed by `make system-deps`")
def test_the_html_report_draws_each_metric_for_both_releases_in_headless_chromium(tmp_path: Path) -> None:
    page = RENDERERS["html"](_judged_rollback())
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    charts = _measure(page, tmp_path)
    assert [c["title"] for c in charts] == ["latency p95: reference vs candidate", "throughput: reference vs candidate",
                                            "error rate: reference vs candidate", "agreement: reference vs candidate"]
    for chart in charts:
        assert chart["clipped"] == [], chart
    latency, agreement = charts[0], charts[3]
    # Both releases side by side at both steps: grey reference, blue candidate, drawn with real heights.
    fills = [b["fill"] for b in latency["bars"]]
    assert sorted(fills) == ["#1f77b4", "#1f77b4", "#7f7f7f", "#7f7f7f"], fills
    assert all(b["height"] > 20 for b in latency["bars"]), latency["bars"]
    # Agreement: only the candidate has a share; at 50% its whole interval lies under the minimum's
    # line (a larger y), at 10% its top is above it: the chart shows the decision.
    assert len(agreement["bars"]) == 2 and len(agreement["whiskers"]) == 2 and len(agreement["margins"]) == 2
    passed, failed = sorted(agreement["whiskers"], key=lambda w: w["top"])
    assert failed["top"] > agreement["margins"][1] and passed["top"] < agreement["margins"][0], agreement
