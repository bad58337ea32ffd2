"""Load runs with real locust in a child process against a server speaking the runtime API: stats,
errors, SLO checks, the stored baseline as history (never a gate); reports (JUnit, JSON, HTML rendered by headless Chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelops.config.cases import Case, CaseRequest, Check, Expectation
from modelops.config.model import Slo
from modelops.runtime import Runtime
from modelops.verify.history import NOT_A_GATE, PastRun, history
from modelops.verify.load import LoadPlan, LoadStats, Target, run_load
from modelops.verify.service import LoadResult, RegionReport, TestReport
from modelops.verify.slo import slo_checks
from tests.helpers import CHROMIUM, measured_in_chromium
from tests.verify.fakeruntime import echo_model, fake_runtime
from tests.verify.pngread import read_png

PAYLOADS = (Case("small", CaseRequest(body=b'{"x": 1}'), Expectation()),
            Case("large", CaseRequest(body=json.dumps({"x": list(range(200))}).encode()), Expectation(), weight=3))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def step(self, message: str) -> None:
        self.events.append(("step", message, None))

    def start(self, task: str, total: float | None = None) -> None:
        self.events.append(("start", task, total))

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None:
        self.events.append(("advance", task, message))

    def finish(self, task: str) -> None:
        self.events.append(("finish", task, None))


def runtime(tmp_path: Path, progress: Recorder | None = None) -> Runtime:
    return Runtime(cwd=tmp_path, data_dir=tmp_path / "data", environ=dict(os.environ),
                   progress=progress or Recorder())


def load(tmp_path: Path, delay: float = 0.0, payloads: tuple[Case, ...] = PAYLOADS, workers: int = 0,
         seconds: float = 3, progress: Recorder | None = None) -> tuple[LoadStats, int, int]:
    with fake_runtime(echo_model(delay)) as server:
        target = Target(server.url, "us-east-1", "ep-1", "AKIDEXAMPLE", "secret-never-shown")
        stats = run_load(target, LoadPlan(users=4, spawn_rate=4, duration_seconds=seconds, workers=workers),
                         payloads, runtime(tmp_path, progress))
        return stats, server.requests, server.signed


def test_load_run_counts_signs_and_reports_progress(tmp_path: Path) -> None:
    progress = Recorder()
    stats, served, signed = load(tmp_path, progress=progress)
    assert stats.requests > 0 and stats.failures == 0 and stats.error_rate == 0.0
    assert served >= stats.requests and signed == served  # every request SigV4-signed
    assert set(stats.per_case) == {"small", "large"}
    assert stats.per_case["large"]["requests"] > stats.per_case["small"]["requests"]  # weight 3 vs 1
    assert stats.p50_ms is not None and stats.p50_ms <= stats.p95_ms <= stats.p99_ms  # type: ignore[operator]
    assert len(stats.series) >= 2 and all(p.users <= 4 for p in stats.series)
    kinds = [e[0] for e in progress.events]
    assert kinds[0] == "start" and kinds[-1] == "finish" and "advance" in kinds
    assert any("req/s" in str(e[2]) for e in progress.events if e[0] == "advance")


def test_errors_are_counted_by_kind(tmp_path: Path) -> None:
    broken = (Case("ok", CaseRequest(body=b"{}"), Expectation()),
              Case("not-json", CaseRequest(content_type="text/csv", body=b"1,2"), Expectation()))
    stats, _, _ = load(tmp_path, payloads=broken, seconds=2)
    assert 0 < stats.error_rate < 1
    assert stats.per_case["not-json"]["failures"] == stats.per_case["not-json"]["requests"] > 0
    assert list(stats.errors) == ["424 ModelError"]


def test_slow_model_fails_its_slos(tmp_path: Path) -> None:
    stats, _, _ = load(tmp_path, delay=0.2, seconds=2)
    checks = {c.name: c for c in slo_checks(stats, Slo(p50_ms=50, p95_ms=150, max_error_rate=0.01))}
    assert not checks["slo.p95_ms"].passed and not checks["slo.p50_ms"].passed
    assert checks["slo.error_rate"].passed
    assert "FAILED" in checks["slo.p95_ms"].message and "limit <= 150 ms" in checks["slo.p95_ms"].message


def test_a_stored_baseline_far_better_than_today_is_shown_with_its_change_and_trend_but_fails_nothing() -> None:
    # The figures: a baseline recorded on a quiet machine (1,945 req/s), today's run on a busy one.
    stats = LoadStats(requests=5000, failures=0, duration_seconds=4, rps=1107.0, error_rate=0, p50_ms=2, p95_ms=9,
                      p99_ms=12)
    runs = [PastRun("iris-0000000001", 1.0, {"p95_ms": 4.0, "rps": 1945.0}),
            PastRun("iris-0000000002", 2.0, {"p95_ms": 7.0, "rps": 919.0}, passed=True),
            PastRun("iris-0000000002", 3.0, {"p95_ms": 5.0, "rps": 1487.0})]
    past = history(runs[0], runs, {"p95_ms": stats.p95_ms, "rps": stats.rps})
    result = LoadResult(stats, LoadPlan(users=4, spawn_rate=4, duration_seconds=4), slo_checks(stats, Slo(p95_ms=150)),
                        past)
    assert result.passed  # the SLO holds; the stored figures gate nothing
    p95, rps = result.changes
    assert (p95.metric, round(p95.change or 0, 3), p95.worse) == ("p95_ms", 1.25, True)
    assert (rps.metric, round((rps.change or 0) * 100, 1), rps.worse) == ("rps", -43.1, True)
    assert rps.trend == (1945.0, 919.0, 1487.0, 1107.0)
    assert rps.message == ("rps 1107.0 req/s vs 1945.0 req/s in iris-0000000001 (-43.1%); "
                           "last 4 runs: 1945, 919, 1487, 1107 req/s (history, not a gate)")
    doc = result.to_dict()
    assert doc["passed"] is True and [c["name"] for c in doc["checks"]] == ["slo.p95_ms"]
    assert doc["baseline"]["gate"] is False and doc["baseline"]["release"] == "iris-0000000001"
    assert [(c["metric"], c["change_pct"]) for c in doc["baseline"]["changes"]] == [("p95_ms", 125.0),
                                                                                    ("rps", -43.08)]
    assert "judged canary" in doc["baseline"]["note"] and "same window" in doc["baseline"]["note"]


@pytest.mark.slow
def test_master_and_workers(tmp_path: Path) -> None:
    stats, served, _ = load(tmp_path, workers=2, seconds=3)
    assert stats.workers == 2 and stats.requests > 0 and served >= stats.requests
    assert set(stats.per_case) == {"small", "large"}


def test_locust_stays_out_of_the_modelops_process() -> None:
    code = ("import sys, modelops.cli.app, modelops.verify.service, modelops.verify.load, modelops.verify.traffic;"
            "bad = [m for m in ('locust', 'gevent', 'geventhttpclient') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def sample_report(stats: LoadStats, *, with_baseline: bool = True) -> TestReport:
    from modelops.verify.invoke import Invocation
    from modelops.verify.regression import evaluate

    slo = Slo(p50_ms=50, p95_ms=150, p99_ms=300, max_error_rate=0.01, min_rps=20)
    base = PastRun("iris-0000000001", 1.0, {"p95_ms": 3.0, "rps": 400.0})
    past = history(base, (base,), {"p95_ms": stats.p95_ms, "rps": stats.rps}) if with_baseline else None
    checks = slo_checks(stats, slo)
    good = evaluate(PAYLOADS[0], Invocation(200, b'{"echo": {"x": 1}}', 2.0))
    bad = evaluate(Case("answers-changed", CaseRequest(), Expectation(
        latency_ms=1.0, checks=(Check("$.label", "equals", "setosa"),))), Invocation(200, b"{}", 2.0))
    region = RegionReport("us-east-1", "iris-dev", "iris-0000000002", regression=(good, bad),
                          load=LoadResult(stats, LoadPlan(users=4, spawn_rate=4, duration_seconds=3), checks, past))
    return TestReport("iris", "dev", "iris-0000000002", (region,), "models/iris/tests/cases.yaml",
                      "models/iris/model.yaml", {k: v for k, v in slo.__dict__.items() if v is not None})


def test_json_and_junit_shapes(tmp_path: Path) -> None:
    from modelops.report import render_junit
    from modelops.report.testrun import to_report

    stats = LoadStats(requests=10, failures=0, duration_seconds=1, rps=10, error_rate=0, p50_ms=2, p95_ms=6, p99_ms=8)
    report = sample_report(stats)
    doc = report.to_dict()
    assert doc["passed"] is False
    assert [(r["case"], r["passed"]) for r in doc["regression"]] == [("small", True), ("answers-changed", False)]
    assert doc["regression"][1]["message"] == ("answers-changed: latency_ms: expected <= 1, got 2.0; "
                                               "answers-changed: $.label: expected equals \"setosa\", got (not found)")
    assert {k: doc["load"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "error_rate")} == {
        "p50_ms": 2, "p95_ms": 6, "p99_ms": 8, "rps": 10, "error_rate": 0}
    assert doc["load"]["passed"] is False  # 10 req/s < SLO 20 (the baseline's 400 is shown, not gated)
    junit = ET.fromstring(render_junit(to_report(report)))
    cases = {c.get("name"): c.find("failure") is not None for c in junit.iter("testcase")}
    # A case with two unmet expectations is two problems, listed and counted alike.
    [failure] = [c.find("failure") for c in junit.iter("testcase") if c.get("name") == "regression/answers-changed"]
    assert failure.get("message").startswith("2 problem(s); first: ")
    assert len(failure.text.splitlines()) == 2
    assert cases == {"regression/small": False, "regression/answers-changed": True, "slo/p50_ms": False,
                     "slo/p95_ms": False, "slo/p99_ms": False, "slo/error_rate": False, "slo/rps": True,
                     "baseline/p95_ms": False, "baseline/rps": False}
    # The baseline is history in system-out: its figures and change, never a <failure>.
    [rps] = [c for c in junit.iter("testcase") if c.get("name") == "baseline/rps"]
    assert "rps 10.0 req/s vs 400.0 req/s in iris-0000000001 (-97.5%)" in rps.find("system-out").text
    assert "history, not a gate" in rps.find("system-out").text
    assert NOT_A_GATE in doc["regions"][0]["load"]["baseline"]["note"]


def chart_pixels(png: Path) -> tuple[int, list[int]]:
    """(distinct colours, for each of the first three series colours the number of screen columns
    holding a pixel of that colour) of a screenshot. A drawn line spans the plot's width (~540
    columns); the point markers and the legend swatch alone cover under 100."""
    from modelops.report.html import PALETTE

    width, _, pixels = read_png(png)
    wanted = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in PALETTE[:3]]
    columns: list[set[int]] = [set() for _ in wanted]
    for n, p in enumerate(pixels):
        for k, w in enumerate(wanted):
            if sum(abs(a - b) for a, b in zip(p, w, strict=True)) < 30:
                columns[k].add(n % width)
    return len(set(pixels)), [len(c) for c in columns]


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is installed by `make system-deps`")
def test_html_report_renders_charts_in_headless_chromium(tmp_path: Path) -> None:
    from modelops.report import render_html
    from modelops.report.testrun import to_charts, to_report, to_tables

    stats, _, _ = load(tmp_path, seconds=3)
    report = sample_report(stats)
    page = render_html(to_report(report), charts=to_charts(report), tables=to_tables(report))
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page
    assert "secret-never-shown" not in page
    assert page.count("<svg") == 2 and "baseline p95 (iris-0000000001, history)" in page and "SLO p95" in page
    html_file = tmp_path / "report.html"
    html_file.write_text(page)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,900",
                    "--hide-scrollbars", html_file.as_uri()], check=True, capture_output=True, timeout=120)
    colours, (blue, _, green) = chart_pixels(shot)
    assert colours > 50  # text, grid, lines, table rows: not a blank page
    # The lines were drawn across the plots: p99 (green, drawn last in the latency chart) and
    # requests/s (blue, the throughput chart's only series; p50 in the latency chart is blue too).
    assert green > 300 and blue > 300, (blue, green)


def test_a_run_whose_requests_cannot_connect_stops_instead_of_waiting_out_its_duration(tmp_path: Path) -> None:
    # A dead endpoint (the cloud gone mid-test) used to be hammered for the whole load profile, minutes
    # on AWS, before modelops could say the environment failed.
    import socket

    from modelops.verify import loadrun

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = Target(f"http://127.0.0.1:{port}", "us-east-1", "ep-1", "AKIDEXAMPLE", "secret-never-shown")
    stats = run_load(target, LoadPlan(users=2, spawn_rate=2, duration_seconds=120), PAYLOADS, runtime(tmp_path))
    assert stats.requests > 0 and stats.failures == stats.requests
    assert all(e.startswith(loadrun.UNREACHABLE + ": ConnectionRefusedError") for e in stats.errors), stats.errors
    assert stats.stopped.startswith("stopped after ") and "failed to connect" in stats.stopped, stats.stopped
    assert stats.duration_seconds < 120  # it did not wait out the profile


# Measures every chart of a page as Chromium lays it out: text that runs past its SVG's edges (a clipped
# legend label) and how much of the plot's height each drawn line spans.
_MEASURE = """
<script>
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    const clipped = [...svg.querySelectorAll('text')].filter(t => {
      const b = t.getBoundingClientRect();
      return b.left < box.left || b.right > box.right || b.top < box.top || b.bottom > box.bottom;
    }).map(t => t.textContent);
    const lines = [...svg.querySelectorAll('polyline')].map(p => {
      const ys = [...p.points].map(pt => pt.y); return Math.max(...ys) - Math.min(...ys);
    });
    return {title: svg.getAttribute('aria-label'), clipped, lines};
  });
  document.body.innerHTML = '<pre id="measured">' + JSON.stringify(charts) + '</pre>';
});
</script>
"""


def _measure(page: str, tmp_path: Path) -> list[dict]:
    return measured_in_chromium(page, _MEASURE, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is installed by `make system-deps`")
def test_a_passing_runs_chart_is_scaled_to_its_lines_and_no_legend_label_is_cut(tmp_path: Path) -> None:
    # The latency axis used to reach up to a distant SLO (300 ms against lines under 10 ms), pressing a
    # passing run's lines flat on zero; legend labels ran past the chart's right edge.
    from modelops.report import render_html
    from modelops.report.testrun import to_charts, to_report, to_tables
    from modelops.verify.load import SeriesPoint

    series = tuple(SeriesPoint(t=float(t), users=4, rps=400.0 + 30 * (t % 3), error_rate=0.0, p50_ms=2.0 + t % 2,
                               p95_ms=5.0 + t % 3, p99_ms=7.0 + t % 4) for t in range(1, 11))
    stats = LoadStats(requests=4000, failures=0, duration_seconds=10, rps=410, error_rate=0, p50_ms=2, p95_ms=6,
                      p99_ms=9, series=series)
    report = sample_report(stats)
    page = render_html(to_report(report), charts=to_charts(report), tables=to_tables(report))
    assert "SLO p99 (300, above the chart)" in page  # named, not drawn
    charts = _measure(page, tmp_path)
    assert [c["title"] for c in charts] == ["Latency percentiles over time", "Throughput over time"]
    for chart in charts:
        assert chart["clipped"] == [], chart
    latency = charts[0]["lines"]
    # p99 goes 7..10 ms: on an axis scaled to its lines it spans a good part of the 226 px plot.
    assert max(latency) > 40, latency
