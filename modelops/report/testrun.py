"""A test run (:class:`modelops.verify.TestReport`) as report rows, charts and tables: what the JUnit,
HTML and terminal renderers of ``modelops test`` show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.report.html import BASELINE_COLOR, Chart, Limit, Series, Table
from modelops.report.items import Item, Report
from modelops.verify.history import NOT_A_GATE

if TYPE_CHECKING:
    from modelops.verify import TestReport


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2%}"
    return f"{value:.1f}{unit}" if unit == " req/s" else f"{value:g}{unit}"


def to_report(result: TestReport) -> Report:
    """The generic report: an item (a JUnit test case) per regression case and per SLO check, in each
    region; the stored baseline's comparison as ``info`` items (JUnit ``system-out``, never a failure)."""

    many = len(result.regions) > 1
    items = []
    for reg in result.regions:
        prefix = f"{reg.region}/" if many else ""
        for case in reg.regression or ():
            subject, seconds = f"{prefix}regression/{case.case}", case.latency_ms / 1000.0
            if case.passed:
                items.append(Item(id=f"regression.{case.case}", status="passed", message=case.message,
                                  subject=subject, file=case.file, line=case.line, duration_seconds=seconds))
            # One item per unmet expectation: a report counts what it lists ("2 problem(s)").
            for i, failure in enumerate(case.failures):
                items.append(Item(id=f"regression.{case.case}", status="failed", message=failure.message,
                                  subject=subject, file=case.file, line=failure.line or case.line,
                                  duration_seconds=seconds if i == 0 else None))
        if reg.load is not None:
            for check in reg.load.checks:
                items.append(Item(id=check.name, status="passed" if check.passed else "failed",
                                  message=check.message, subject=f"{prefix}{check.kind}/{check.metric}",
                                  file=result.model_file))
            for change in reg.load.changes:
                items.append(Item(id=f"baseline.{change.metric}", status="info", message=change.message,
                                  subject=f"{prefix}baseline/{change.metric}", hint=NOT_A_GATE))
        elif reg.load_skipped:
            items.append(Item(id="load", status="skipped", message=reg.load_skipped, subject=f"{prefix}load"))
    summary: dict[str, object] = {"model": result.model, "environment": result.environment,
                                  "release": result.release}
    for reg in result.regions:
        if reg.load is not None:
            s = reg.load.stats
            summary[f"load {reg.region}"] = (
                f"{s.requests} requests in {s.duration_seconds:g} s, {reg.load.plan.users} users"
                + (f", {reg.load.plan.workers} workers" if reg.load.plan.workers else ""))
            if reg.load.baseline is not None:
                summary[f"baseline {reg.region}"] = (
                    f"{reg.load.baseline.release}: "
                    + "; ".join(f"{c.metric} {c.change_text()}" for c in reg.load.changes) + f" ({NOT_A_GATE})")
    return Report(title=f"modelops test {result.model} ({result.environment})", items=tuple(items),
                  subjects=tuple(dict.fromkeys(i.subject for i in items if i.subject)), summary=summary)


def to_charts(result: TestReport) -> list[Chart]:
    """Per region: latency percentiles and throughput over the run, with the SLO limits and the
    baseline release's figures (history, not a gate) as reference lines."""

    charts = []
    for reg in result.regions:
        if reg.load is None:
            continue
        series = reg.load.stats.series
        base = reg.load.baseline
        section = f"{reg.region}: {reg.endpoint} (release {reg.release})"
        latency = tuple(
            Series(name, tuple((p.t, float(getattr(p, attr))) for p in series if getattr(p, attr) is not None))
            for name, attr in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")))
        lat_limits = [Limit(f"SLO {m[:3]}", float(result.slo[m])) for m in ("p95_ms", "p99_ms") if m in result.slo]
        if base is not None and "p95_ms" in base.metrics:
            lat_limits.append(Limit(f"baseline p95 ({base.release}, history)", float(base.metrics["p95_ms"]), BASELINE_COLOR))
        charts.append(Chart("Latency percentiles over time", "seconds since start", "milliseconds", latency,
                            tuple(lat_limits), section))
        rps = (Series("requests/s", tuple((p.t, p.rps) for p in series)),)
        rps_limits = [Limit("SLO min", float(result.slo["min_rps"]))] if "min_rps" in result.slo else []
        if base is not None and "rps" in base.metrics:
            rps_limits.append(Limit(f"baseline ({base.release}, history)", float(base.metrics["rps"]), BASELINE_COLOR))
        charts.append(Chart("Throughput over time", "seconds since start", "requests per second", rps,
                            tuple(rps_limits), section))
    return charts


def to_tables(result: TestReport) -> list[Table]:
    """The load figures against their SLOs (the verdict) and beside the stored baseline (its change and
    trend: history, not a gate), and the regression cases, per region."""

    tables = []
    for reg in result.regions:
        if reg.load is not None:
            s, base = reg.load.stats, reg.load.baseline
            checks = {c.name: c for c in reg.load.checks}
            changes = {c.metric: c for c in reg.load.changes}
            rows, statuses = [], []
            for metric, unit in (("p50_ms", " ms"), ("p95_ms", " ms"), ("p99_ms", " ms"), ("rps", " req/s"),
                                 ("error_rate", "%")):
                slo = checks.get(f"slo.{metric}")
                change = changes.get(metric)
                base_value = base.metrics.get(metric) if base is not None else None
                rows.append((metric, _fmt(getattr(s, metric), unit),
                             f"{slo.comparison} {_fmt(slo.limit, unit)}" if slo else "-",
                             "-" if slo is None else ("ok" if slo.passed else "FAILED"),
                             _fmt(base_value, unit), change.change_text() if change else "-",
                             change.trend_text() if change and len(change.trend) > 1 else "-"))
                statuses.append("" if slo is None else ("passed" if slo.passed else "failed"))
            title = f"Load test in {reg.region}: {s.requests} requests, {s.failures} errors"
            if base is not None:
                title += f"; baseline {base.release}: history, not a gate"
            tables.append(Table(title, ("metric", "measured", "SLO", "verdict",
                                        f"baseline {base.release if base else '(none)'}", "change", "trend"),
                                tuple(rows), tuple(statuses)))
        if reg.regression is not None:
            tables.append(Table(f"Regression cases in {reg.region}", ("case", "status", "latency", "verdict", "result"),
                                tuple((r.case, str(r.status), f"{r.latency_ms:.1f} ms", "ok" if r.passed else "FAILED",
                                       r.message) for r in reg.regression),
                                tuple("passed" if r.passed else "failed" for r in reg.regression)))
    return tables
