"""The terminal view: a rich table of items and a one-line verdict (on the CLI's console)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.report.items import STATUS_ORDER, Report, plural

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {"error": "bold red", "failed": "bold red", "warning": "yellow", "info": "cyan", "passed": "green",
          "skipped": "dim"}


def render_terminal(console: Console, report: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    rows = sorted(report.items, key=lambda i: (i.file or "", i.line or 0, STATUS_ORDER.get(i.status, 9)))
    if rows:
        table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False, box=None)
        table.add_column("severity", no_wrap=True)
        table.add_column("location", no_wrap=True, overflow="fold")
        table.add_column("rule", no_wrap=True)
        table.add_column("message", overflow="fold")
        for item in rows:
            message = Text(item.message)
            if item.hint:
                message.append("\n" + item.hint, style="dim")
            table.add_row(Text(item.status, style=_STYLE.get(item.status, "")), Text(item.location or "-"),
                          Text(item.id), message)
        console.print(table)
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    tally = ", ".join(plural(n, s) for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
    if report.subjects:
        subjects = f"{len(report.subjects)} model(s)"
    else:  # e.g. `validate pipelines/`: no model, the pipeline files
        subjects = f"{report.summary['files']} file(s)" if report.summary.get("files") else "input"
    if report.failed:
        console.print(Text(f"{report.title}: failed: {tally} in {subjects}", style="bold red"))
    else:
        console.print(Text(f"{report.title}: ok: {subjects}" + (f" ({tally})" if tally else ""), style="bold green"))
