"""CLI commands of the test concern: ``modelops test MODEL --env E``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.report import Table
    from modelops.verify import TestReport


class Only(StrEnum):
    regression = "regression"
    load = "load"


def test(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder (models/iris).")],
    env: Annotated[str, typer.Option("--env", "-e", metavar="ENV", help="Environment whose endpoint is tested.")] = "dev",
    region: Annotated[str | None, typer.Option("--region", "-r", metavar="REGION", help="Only this region (default: all).")] = None,
    only: Annotated[Only | None, typer.Option("--only", help="Run only the regression cases or the load test.")] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=0, help="Locust workers (0: one process).")] = 0,
    users: Annotated[int | None, typer.Option("--users", metavar="N", min=1, help="Override the load profile's users.")] = None,
    duration: Annotated[float | None, typer.Option("--duration", metavar="SECONDS", min=1, help="Override the load duration (s).")] = None,
    ref: Annotated[str | None, typer.Option("--ref", metavar="REF", help="Read the model's config and cases at this git ref.")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")] = None,
    html: Annotated[Path | None, typer.Option("--html", metavar="FILE", help="Write an HTML report with charts.")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """Run a model's regression cases and load test against its endpoint, held to its SLOs (the stored
    baseline and trend are shown, never gated)."""
    cli = cli_context.get(ctx)
    from modelops.report.files import check_target
    from modelops.verify import TestRequest, run_tests

    for report_path in (p for p in (junit, html) if p is not None):
        check_target(report_path)  # before the tests run: a bad path must not cost the load test
    request = TestRequest(model=model, environment=env, region=region, only=only.value if only else None,
                          workers=workers, ref=ref, users=users, duration_seconds=duration)
    result = run_tests(request, cli.runtime)
    _write_reports(result, junit, html)
    cli.emit(result, lambda console: render_summary(console, result))
    return 0 if result.passed else 1


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("test")(test)


# -- rendering ------------------------------------------------------------------------------------


def _write_reports(result: TestReport, junit: Path | None, html: Path | None) -> None:
    from modelops.report import render_html, render_junit
    from modelops.report.files import write_text
    from modelops.report.testrun import to_charts, to_report, to_tables

    if junit is None and html is None:
        return
    report = to_report(result)
    if junit is not None:
        write_text(junit, render_junit(report))
    if html is not None:
        write_text(html, render_html(report, charts=to_charts(result), tables=to_tables(result)))


def render_summary(console: Console, result: TestReport) -> None:
    """The terminal summary: per region, the load figures against their limits, the regression
    cases, and each failed expectation on its own line (case, file:line, path, expected, actual)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from modelops.report.testrun import to_tables
    from modelops.verify.history import NOT_A_GATE

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
        if reg.load is not None and reg.load.changes:
            for change in reg.load.changes:
                console.print(Text(f"{reg.region}: {change.message}", style="yellow" if change.worse else "dim"),
                              soft_wrap=True)
            release = reg.load.baseline.release if reg.load.baseline else ""
            console.print(Text(f"{reg.region}: the baseline ({release}) is {NOT_A_GATE}", style="dim"), soft_wrap=True)
    verdict = "passed" if result.passed else "FAILED"
    console.print(Text(f"modelops test {result.model} ({result.environment}, release {result.release}): {verdict}",
                       style="bold green" if result.passed else "bold red"))
