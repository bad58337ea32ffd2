"""A deploy (:class:`modelops.deploy.api.DeployResult`) as report rows, tables and charts: what
``deploy`` and ``promote`` write with ``--junit``, ``--markdown`` and ``--html``.

- a JUnit test case per region's rollout (its failure: the rollback's reason, an alarm's or a
  judgment's, with the figures), per judged step (its failure: the figures that decided), and per
  environment's test run between the stages of ``--through`` (its failure: each failed check with
  what was measured against its threshold);
- tables: the rollout per region, a table per judgment (metric, reference, candidate, effect with
  bounds, margin, confidence, samples, outcome) and its worst disagreements with their inputs, the
  failed checks of the tests;
- charts (HTML): per judged region, one per metric, both releases side by side at each step.

:data:`RENDERERS` maps each report format to its renderer, so the CLI writes whichever files it was
asked for in one loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from modelops.report.html import Chart, Table, render_html
from modelops.report.items import Item, Report
from modelops.report.judgment import deciding, outcome_text, verdict_charts, verdict_table, worst_table
from modelops.report.junit import render_junit
from modelops.report.markdown import render_markdown

if TYPE_CHECKING:
    from modelops.deploy.api import DeployResult
    from modelops.deploy.judged import JudgedStep
    from modelops.deploy.rollout import RegionOutcome

_STATUS = {"succeeded": "passed", "rolled_back": "failed", "failed": "failed", "skipped": "skipped"}


def _where(d: RegionOutcome) -> str:
    return f"{d.environment}/{d.region}"


def _step_items(d: RegionOutcome, step: JudgedStep) -> list[Item]:
    """A judged step's verdicts: the ones that decided a fail fail; every one says its figures."""
    subject = f"{_where(d)} judged {step.percent}%"
    j = step.judgment
    items = []
    for v in j.verdicts:
        failed = deciding(j, v)
        note = f" ({j.note})" if failed and j.note else ""
        items.append(Item(id=f"judgment.{v.metric}", status="failed" if failed else "passed",
                          message=f"{outcome_text(j, v)}: {v.figures()}{note}", subject=subject))
    if not j.verdicts:  # nothing was answered by both: the judgment's note says why
        items.append(Item(id="judgment", status="failed" if j.outcome.value == "fail" else "passed",
                          message=j.summary(), subject=subject))
    return items


def to_report(result: DeployResult) -> Report:
    """The generic report: an item per region's rollout, per verdict of each judged step, per check
    of each environment's tests."""
    from modelops.report.testrun import to_report as test_items

    items: list[Item] = []
    for d in result.deployments:
        items.append(Item(id="rollout", status=_STATUS.get(d.status, "failed"),
                          message=d.detail or d.status.replace("_", " "), subject=f"{_where(d)} rollout"))
        for step in d.judgments:
            items.extend(_step_items(d, step))
    for tests in result.tests:
        subject = f"{tests.environment} tests"
        for item in test_items(tests).items:
            where = item.subject or ""
            items.append(Item(id=item.id, status=item.status, message=f"{where}: {item.message}" if where else item.message,
                              subject=subject, file=item.file, line=item.line, column=item.column,
                              duration_seconds=item.duration_seconds))
    summary: dict[str, object] = {"model": result.model, "release": result.release,
                                  "result": result.result.replace("_", " "),
                                  "environments": ", ".join(result.environments)}
    if result.message:
        summary["why"] = result.message
    return Report(title=f"modelops deploy {result.model} ({result.release})", items=tuple(items),
                  subjects=tuple(dict.fromkeys(i.subject for i in items if i.subject)), summary=summary,
                  failing=("error", "failed"), subject_kind="case")


def to_tables(result: DeployResult) -> list[Table]:
    """The rollout per region; per judged step its verdicts and worst disagreements; the failed checks
    of the tests."""
    tables = [Table("Rollout", ("where", "status", "serving", "detail"),
                    tuple((_where(d), d.status.replace("_", " "), d.serving or "-", d.detail)
                          for d in result.deployments),
                    tuple(_STATUS.get(d.status, "failed") for d in result.deployments))] if result.deployments else []
    for d in result.deployments:
        for step in d.judgments:
            title = f"{_where(d)} judged at {step.percent}%"
            tables.append(verdict_table(step.judgment, title))
            worst = worst_table(step.judgment, title)
            if worst is not None:
                tables.append(worst)
    for tests in result.tests:
        checks = tests.failed_checks
        if checks:
            tables.append(Table(f"Failed checks of the tests in {tests.environment} ({tests.release})",
                                ("region", "check", "measured", "threshold", "detail", "where"),
                                tuple((c.region, c.check, c.measured, c.threshold, c.detail, c.where) for c in checks),
                                tuple("failed" for _ in checks)))
    return tables


def to_charts(result: DeployResult) -> list[Chart]:
    """Per judged region, a chart per metric: the reference and the candidate at each step."""
    charts: list[Chart] = []
    for d in result.deployments:
        if d.judgments:
            j = d.judgments[0].judgment
            charts += verdict_charts([(f"{s.percent}%", s.judgment) for s in d.judgments],
                                     f"{_where(d)}: {j.candidate} judged against {j.reference}")
    return charts


#: Each report file format of ``deploy`` and ``promote``, rendered from the result.
RENDERERS: Mapping[str, Callable[[DeployResult], str]] = {
    "junit": lambda r: render_junit(to_report(r)),
    "markdown": lambda r: render_markdown(to_report(r), tables=to_tables(r), passed_rows=False),
    "html": lambda r: render_html(to_report(r), charts=to_charts(r), tables=to_tables(r)),
}
