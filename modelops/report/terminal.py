"""The terminal view: a rich table of items and a one-line verdict (on the CLI's console)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.report.items import STATUS_ORDER, Item, Report, plural

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {"error": "bold red", "failed": "bold red", "warning": "yellow", "info": "cyan", "passed": "green",
          "skipped": "dim"}


def render_terminal(console: Console, report: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    rows = sorted(report.items, key=lambda i: (i.file or "", i.line or 0, STATUS_ORDER.get(i.status, 9)))
    if rows and _table_fits(console, rows):
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
    else:
        # Too narrow for a table (a CI log is 80 columns): one line per item, as compilers print them,
        # so a log parser or grep finds `file:line:col: severity: message [rule]` whole.
        for item in rows:
            line = Text(f"{item.location}: " if item.location else "")
            line.append(item.status, style=_STYLE.get(item.status, ""))
            line.append(f": {item.message} [{item.id}]")
            console.print(line)
            if item.hint:
                console.print(Text(f"  hint: {item.hint}", style="dim"))
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    tally = ", ".join(plural(n, s) for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
    if report.subjects:
        subjects = f"{len(report.subjects)} model(s)"
    else:  # e.g. `validate pipelines/`: no model, the pipeline files
        files = report.summary.get("files")
        subjects = f"no models ({files} pipeline file(s) checked)" if files else "no models"
    if report.failed:
        console.print(Text(f"{report.title}: failed: {tally} in {subjects}", style="bold red"))
    else:
        console.print(Text(f"{report.title}: ok: {subjects}" + (f" ({tally})" if tally else ""), style="bold green"))


#: Below this width the message column of the table is too narrow to read.
MIN_MESSAGE_WIDTH = 40


def _table_fits(console: Console, rows: list[Item]) -> bool:
    fixed = max(len(i.status) for i in rows) + max(len(i.location) or 1 for i in rows) + max(len(i.id) for i in rows)
    return console.width - fixed - 3 >= MIN_MESSAGE_WIDTH  # three one-space column gaps
