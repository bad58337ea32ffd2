"""CLI commands of the test concern: ``modelops test MODEL --env E``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.report import Chart, Report, Table
    from modelops.verify import TestReport


class Only(StrEnum):
    regression = "regression"
    load = "load"


def test(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder (models/iris).")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose endpoint is tested.")] = "dev",
    region: Annotated[str | None, typer.Option("--region", "-r", help="Only this region (default: all).")] = None,
    only: Annotated[Only | None, typer.Option("--only", help="Run only the regression cases or the load test.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Locust workers (0: one process).")] = 0,
    users: Annotated[int | None, typer.Option("--users", min=1, help="Override the load profile's users.")] = None,
    duration: Annotated[float | None, typer.Option("--duration", min=1, help="Override the load duration (s).")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Read the model's config and cases at this git ref.")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")] = None,
    html: Annotated[Path | None, typer.Option("--html", metavar="FILE", help="Write an HTML report with charts.")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="text, or json (one document on stdout).")] = OutputFormat.text,
) -> int:
    """Run a model's regression cases and load test against its endpoint; SLOs and the baseline."""
    cli = cli_context.get(ctx)
    from modelops.verify import TestRequest, run_tests

    request = TestRequest(model=model, environment=env, region=region, only=only.value if only else None,
                          workers=workers, ref=ref, users=users, duration_seconds=duration)
    result = run_tests(request, cli.runtime)
    _write_reports(result, junit, html)
    if output is OutputFormat.json:
        cli.emit_json(result.to_dict())
    else:
        render_summary(cli.console, result)
    return 0 if result.passed else 1


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("test")(test)


# -- rendering ------------------------------------------------------------------------------------


def _write_reports(result: TestReport, junit: Path | None, html: Path | None) -> None:
    from modelops.report import render_html, render_junit
    from modelops.report.files import write_text

    if junit is None and html is None:
        return
    report = to_report(result)
    if junit is not None:
        write_text(junit, render_junit(report))
    if html is not None:
        write_text(html, render_html(report, charts=to_charts(result), tables=to_tables(result)))


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2%}"
    return f"{value:.1f}{unit}" if unit == " req/s" else f"{value:g}{unit}"


def to_report(result: TestReport) -> Report:
    """The generic report: an item (a JUnit test case) per regression case and per SLO or baseline
    check, in each region."""
    from modelops.report import Item, Report

    many = len(result.regions) > 1
    items = []
    for reg in result.regions:
        prefix = f"{reg.region}/" if many else ""
        for case in reg.regression or ():
            items.append(Item(id=f"regression.{case.case}", status="passed" if case.passed else "failed",
                              message=case.message, subject=f"{prefix}regression/{case.case}", file=case.file,
                              line=case.line, duration_seconds=case.latency_ms / 1000.0))
        if reg.load is not None:
            for check in reg.load.checks:
                items.append(Item(id=check.name, status="passed" if check.passed else "failed",
                                  message=check.message, subject=f"{prefix}{check.kind}/{check.metric}",
                                  file=result.model_file))
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
                summary[f"baseline {reg.region}"] = reg.load.baseline.release
    return Report(title=f"modelops test {result.model} ({result.environment})", items=tuple(items),
                  subjects=tuple(dict.fromkeys(i.subject for i in items if i.subject)), summary=summary)


def to_charts(result: TestReport) -> list[Chart]:
    """Per region: latency percentiles and throughput over the run, with the SLO limits and the
    baseline release's figures as reference lines."""
    from modelops.report import Chart, Limit, Series
    from modelops.report.html import BASELINE_COLOR

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
            lat_limits.append(Limit(f"baseline p95 ({base.release})", float(base.metrics["p95_ms"]), BASELINE_COLOR))
        charts.append(Chart("Latency percentiles over time", "seconds since start", "milliseconds", latency,
                            tuple(lat_limits), section))
        rps = (Series("requests/s", tuple((p.t, p.rps) for p in series)),)
        rps_limits = [Limit("SLO min", float(result.slo["min_rps"]))] if "min_rps" in result.slo else []
        if base is not None and "rps" in base.metrics:
            rps_limits.append(Limit(f"baseline ({base.release})", float(base.metrics["rps"]), BASELINE_COLOR))
        charts.append(Chart("Throughput over time", "seconds since start", "requests per second", rps,
                            tuple(rps_limits), section))
    return charts


def to_tables(result: TestReport) -> list[Table]:
    """The load figures against their limits, and the regression cases, per region."""
    from modelops.report import Table

    tables = []
    for reg in result.regions:
        if reg.load is not None:
            s, base = reg.load.stats, reg.load.baseline
            checks = {c.name: c for c in reg.load.checks}
            rows, statuses = [], []
            for metric, unit in (("p50_ms", " ms"), ("p95_ms", " ms"), ("p99_ms", " ms"), ("rps", " req/s"),
                                 ("error_rate", "%")):
                slo = checks.get(f"slo.{metric}")
                against = checks.get(f"baseline.{metric}")
                base_value = base.metrics.get(metric) if base is not None else None
                verdicts = [c for c in (slo, against) if c is not None]
                rows.append((metric, _fmt(getattr(s, metric), unit),
                             f"{slo.comparison} {_fmt(slo.limit, unit)}" if slo else "-",
                             _fmt(base_value, unit), f"{against.comparison} {_fmt(against.limit, unit)}" if against else "-",
                             "-" if not verdicts else ("ok" if all(c.passed for c in verdicts) else "FAILED")))
                statuses.append("" if not verdicts else ("passed" if all(c.passed for c in verdicts) else "failed"))
            tables.append(Table(f"Load test in {reg.region}: {s.requests} requests, {s.failures} errors",
                                ("metric", "measured", "SLO", f"baseline {base.release if base else '(none)'}",
                                 "baseline limit", "verdict"), tuple(rows), tuple(statuses)))
        if reg.regression is not None:
            tables.append(Table(f"Regression cases in {reg.region}", ("case", "status", "latency", "verdict", "result"),
                                tuple((r.case, str(r.status), f"{r.latency_ms:.1f} ms", "ok" if r.passed else "FAILED",
                                       r.message) for r in reg.regression),
                                tuple("passed" if r.passed else "failed" for r in reg.regression)))
    return tables


def render_summary(console: Console, result: TestReport) -> None:
    """The terminal summary: per region, the load figures against their limits, the regression
    cases, and each failed expectation on its own line (case, file:line, path, expected, actual)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    def show(table: Table, columns: tuple[int, ...] | None = None) -> None:
        keep = columns or tuple(range(len(table.header)))
        rich = RichTable(title=table.title, title_justify="left", box=None, pad_edge=False, header_style="bold")
        for i in keep:
            rich.add_column(table.header[i], overflow="fold")
        for r, row in enumerate(table.rows):
            status = table.statuses[r] if r < len(table.statuses) else ""
            style = {"passed": "green", "failed": "bold red"}.get(status, "")
            rich.add_row(*(Text(row[i], style=style if i == 0 or row[i] in ("ok", "FAILED") else "") for i in keep))
        console.print(rich)

    for table in to_tables(result):
        # Regression tables: case, status, latency and a verdict here; the failures follow, one a line.
        show(table, (0, 1, 2, 3) if table.title.startswith("Regression") else None)
    for reg in result.regions:
        for case in reg.regression or ():
            for failure in case.failures:
                where = f" ({case.file}:{failure.line or case.line})" if case.file else ""
                console.print(Text("FAILED ", style="bold red") + Text(f"{case.case}{where}: ", style="bold")
                              + Text(f"{failure.path}: expected {failure.expected}, got {failure.actual}"))
        if reg.load_skipped:
            console.print(Text(f"{reg.region}: load test skipped: {reg.load_skipped}", style="dim"))
    verdict = "passed" if result.passed else "FAILED"
    console.print(Text(f"modelops test {result.model} ({result.environment}, release {result.release}): {verdict}",
                       style="bold green" if result.passed else "bold red"))
