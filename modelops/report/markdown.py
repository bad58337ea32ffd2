"""Markdown for a pull-request comment: a verdict line, counts, a table of what was found, then any
tables of figures (:class:`~modelops.report.html.Table`, the same ones the HTML report shows)."""

from __future__ import annotations

from collections.abc import Sequence

from modelops.report.html import Table
from modelops.report.items import STATUS_ORDER, Report, plural

MAX_ROWS = 100  # PR comments have a size limit; the rest is counted, not listed
_ICON = {"error": "❌", "failed": "❌", "warning": "⚠️", "info": "\N{INFORMATION SOURCE}\ufe0f", "passed": "✅", "skipped": "⏭️"}


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _table(table: Table) -> list[str]:
    lines = ["", f"#### {_cell(table.title)}", "", "| " + " | ".join(_cell(h) for h in table.header) + " |",
             "| " + " | ".join("---" for _ in table.header) + " |"]
    for i, row in enumerate(table.rows[:MAX_ROWS]):
        status = table.statuses[i] if i < len(table.statuses) else ""
        cells = [_cell(c) for c in row]
        if status and cells:
            cells[0] = f"{_ICON.get(status, '')} {cells[0]}"
        lines.append("| " + " | ".join(cells) + " |")
    if len(table.rows) > MAX_ROWS:
        lines += ["", f"... and {len(table.rows) - MAX_ROWS} more rows."]
    return lines


def render_markdown(report: Report, *, tables: Sequence[Table] = (), passed_rows: bool = True) -> str:
    """The comment; ``tables`` follow the rows of items. ``passed_rows`` False lists only what did not
    pass (the tables show the rest with its figures), counting every item still."""
    verdict = "❌ failed" if report.failed else "✅ passed"
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    tally = ", ".join(plural(n, status) for status, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
    lines = [f"### {report.title}: {verdict}", ""]
    kind = report.subject_kind
    checked = f"Checked {len(report.subjects)} {kind}(s)" if report.subjects else "Checked"
    lines.append(f"{checked}: {tally or 'nothing to report'}.")
    if report.subjects:
        lines += ["", f"{kind.capitalize()}s: " + ", ".join(f"`{s}`" for s in report.subjects)]
    shown = report.items if passed_rows else tuple(i for i in report.items if i.status != "passed")
    rows = sorted(shown, key=lambda i: (STATUS_ORDER.get(i.status, 9), i.file or "", i.line or 0))
    if rows:
        lines += ["", "| | Rule | Location | Message |", "| --- | --- | --- | --- |"]
        for item in rows[:MAX_ROWS]:
            message = _cell(item.message) + (f"<br>_{_cell(item.hint)}_" if item.hint else "")
            lines.append(f"| {_ICON.get(item.status, '')} {item.status} | `{item.id}` | "
                         f"`{_cell(item.location or item.subject or '') or '-'}` | {message} |")
        if len(rows) > MAX_ROWS:
            lines += ["", f"... and {len(rows) - MAX_ROWS} more (see the full report in the CI logs)."]
    for table in tables:
        lines += _table(table)
    return "\n".join(lines) + "\n"
