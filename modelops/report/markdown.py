"""Markdown for a pull-request comment: a verdict line, counts, and a table of what was found."""

from __future__ import annotations

from modelops.report.items import STATUS_ORDER, Report, plural

MAX_ROWS = 100  # PR comments have a size limit; the rest is counted, not listed
_ICON = {"error": "❌", "failed": "❌", "warning": "⚠️", "info": "\N{INFORMATION SOURCE}\ufe0f", "passed": "✅", "skipped": "⏭️"}


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_markdown(report: Report) -> str:
    verdict = "❌ failed" if report.failed else "✅ passed"
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.status] = counts.get(item.status, 0) + 1
    tally = ", ".join(plural(n, status) for status, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
    lines = [f"### {report.title}: {verdict}", ""]
    checked = f"Checked {len(report.subjects)} model(s)" if report.subjects else "Checked"
    lines.append(f"{checked}: {tally or 'nothing to report'}.")
    if report.subjects:
        lines += ["", "Models: " + ", ".join(f"`{s}`" for s in report.subjects)]
    rows = sorted(report.items, key=lambda i: (STATUS_ORDER.get(i.status, 9), i.file or "", i.line or 0))
    if rows:
        lines += ["", "| | Rule | Location | Message |", "| --- | --- | --- | --- |"]
        for item in rows[:MAX_ROWS]:
            message = _cell(item.message) + (f"<br>_{_cell(item.hint)}_" if item.hint else "")
            lines.append(f"| {_ICON.get(item.status, '')} {item.status} | `{item.id}` | "
                         f"`{_cell(item.location) or '-'}` | {message} |")
        if len(rows) > MAX_ROWS:
            lines += ["", f"... and {len(rows) - MAX_ROWS} more (see the full report in the CI logs)."]
    return "\n".join(lines) + "\n"
