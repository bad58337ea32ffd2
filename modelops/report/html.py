"""A self-contained HTML page of a :class:`Report`: verdict, tables of figures, the items, and line
charts drawn as inline SVG (no script, no stylesheet or font from the network; it opens from a CI
artifact store or an e-mail as it is).

- :func:`render_html` ``(report, *, charts=(), tables=()) -> str``;
- :class:`Chart` of :class:`Series` (x, y points; dashed for a reference), with horizontal
  :class:`Limit` lines (an SLO, a baseline's figure); a chart with ``categories`` draws its series as
  bars side by side in each category (a point's x is the category's index), a series' ``intervals``
  as whiskers on its bars, and a limit with a ``category`` across that category only (a margin);
- :class:`Table` (title, header, rows of text) for figures that are not items.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelops.report.items import STATUS_ORDER, Report

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
LIMIT_COLOR = "#d62728"
BASELINE_COLOR = "#7f7f7f"
WIDTH, PLOT_HEIGHT = 840, 226
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 30, 44
# The legend sits under the plot, entries flowing in rows as wide as the chart: a label is never cut.
LEGEND_ROW, LEGEND_SWATCH, LEGEND_GAP = 18, 22, 18
CHAR_WIDTH = 6.6  # a generous average advance of an 11 px sans-serif character, for laying out labels
#: A limit further above the data than this factor is named in the legend, not drawn: scaling the axis
#: to a distant SLO pressed a passing run's lines flat against zero.
OFF_SCALE = 3.0

@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]
    color: str = ""
    dashed: bool = False
    #: Bars only: per point, the (low, high) of its interval, drawn as a whisker.
    intervals: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Limit:
    """A horizontal line: an SLO (red) or a baseline figure (grey, dashed); with ``category`` (bars
    only), across that category's bars alone (e.g. the margin the candidate is held to there)."""

    label: str
    value: float
    color: str = LIMIT_COLOR
    dashed: bool = True
    category: int | None = None


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    limits: tuple[Limit, ...] = ()
    section: str = ""  # charts of one section (e.g. a region) are grouped under its heading
    #: Bars: one group per category (the points' x are their indexes), the series side by side.
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Per row: "passed", "failed" or "" (colours the row).
    statuses: tuple[str, ...] = ()


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 8px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:bold;color:#fff}
.verdict.passed{background:#2e7d32} .verdict.failed{background:#c62828}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5} tr.failed td{background:#fdecea} tr.passed td:first-child{color:#2e7d32}
tr.failed td:first-child{color:#c62828;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #eee;padding:4px}
.meta{color:#666;font-size:13px} code{font-size:12px}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(ticks, 1)
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def _legend_rows(entries: list[tuple[str, str, bool]]) -> list[list[tuple[float, str, str, bool]]]:
    """Entries (label, colour, dashed) laid out left to right in rows that fit the chart's width."""
    rows: list[list[tuple[float, str, str, bool]]] = [[]]
    x = float(MARGIN_LEFT)
    for label, color, dashed in entries:
        width = LEGEND_SWATCH + 6 + CHAR_WIDTH * len(label)
        if rows[-1] and x + width > WIDTH - MARGIN_RIGHT:
            rows.append([])
            x = float(MARGIN_LEFT)
        rows[-1].append((x, label, color, dashed))
        x += width + LEGEND_GAP
    return rows if rows[0] else []


def render_svg(chart: Chart) -> str:
    """One chart (lines, or bars side by side with ``categories``) as an inline ``<svg>`` element,
    its legend underneath."""
    bars = bool(chart.categories)
    points = [p for s in chart.series for p in s.points if all(math.isfinite(c) for c in p)]
    whiskers = [v for s in chart.series for iv in s.intervals for v in iv if math.isfinite(v)] if bars else []
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = PLOT_HEIGHT
    data_top = max([p[1] for p in points] + whiskers, default=0.0)
    # A bar chart shows every limit: a margin is what its bars are judged against.
    in_scale = [lim for lim in chart.limits if bars or data_top <= 0 or lim.value <= data_top * OFF_SCALE]
    legend: list[tuple[str, str, bool]] = []
    for lim in chart.limits:
        if any(o.label == lim.label for o in chart.limits[:chart.limits.index(lim)]):
            continue  # a margin drawn in several categories: one entry
        figures = ", ".join(x for x in ("" if lim.category is not None else _fmt(lim.value),
                                        "" if lim in in_scale else "above the chart") if x)
        legend.append((f"{lim.label} ({figures})" if figures else lim.label, lim.color, lim.dashed))
    legend += [(s.name, s.color or PALETTE[i % len(PALETTE)], s.dashed and not bars)
               for i, s in enumerate(chart.series) if any(all(math.isfinite(c) for c in p) for p in s.points)]
    rows = _legend_rows(legend) if points else []
    height = MARGIN_TOP + plot_h + MARGIN_BOTTOM + len(rows) * LEGEND_ROW + (6 if rows else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_e(chart.title)}">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
           f'<text x="{WIDTH / 2:.0f}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
           f'{_e(chart.title)}</text>']
    if not points:
        out.append(f'<text x="{WIDTH / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#888">no data</text>')
        out.append("</svg>")
        return "".join(out)
    if bars:
        x_min, x_max = -0.5, len(chart.categories) - 0.5
    else:
        x_min = min(p[0] for p in points)
        x_max = max(p[0] for p in points)
        if x_max <= x_min:
            x_max = x_min + 1
    y_top = max([data_top] + [lim.value for lim in in_scale] + [0.0])
    step = _nice_step(y_top * 1.1 if y_top > 0 else 1.0)
    y_max = step * math.ceil((y_top * 1.1 if y_top > 0 else 1.0) / step)

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x - x_min) / (x_max - x_min) * plot_w

    def sy(y: float) -> float:
        return MARGIN_TOP + plot_h - (y / y_max) * plot_h

    # grid and axes
    y = 0.0
    while y <= y_max + step / 2:
        out.append(f'<line x1="{MARGIN_LEFT}" y1="{sy(y):.1f}" x2="{MARGIN_LEFT + plot_w}" y2="{sy(y):.1f}" '
                   f'stroke="#e5e5e5" stroke-width="1"/>')
        out.append(f'<text x="{MARGIN_LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#555">{_fmt(y)}</text>')
        y += step
    if bars:
        for i, name in enumerate(chart.categories):
            out.append(f'<text x="{sx(i):.1f}" y="{MARGIN_TOP + plot_h + 16}" text-anchor="middle" font-size="11" '
                       f'fill="#555">{_e(name)}</text>')
    else:
        x_step = _nice_step(x_max - x_min, 6)
        x = math.ceil(x_min / x_step) * x_step
        while x <= x_max + 1e-9:
            out.append(f'<text x="{sx(x):.1f}" y="{MARGIN_TOP + plot_h + 16}" text-anchor="middle" font-size="11" '
                       f'fill="#555">{_fmt(x)}</text>')
            x += x_step
    out.append(f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{MARGIN_LEFT + plot_w}" '
               f'y2="{MARGIN_TOP + plot_h}" stroke="#333"/>')
    out.append(f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{MARGIN_TOP + plot_h}" '
               f'stroke="#333"/>')
    out.append(f'<text x="{MARGIN_LEFT + plot_w / 2:.0f}" y="{MARGIN_TOP + plot_h + 36}" text-anchor="middle" '
               f'font-size="12">{_e(chart.x_label)}</text>')
    out.append(f'<text x="14" y="{MARGIN_TOP + plot_h / 2:.0f}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {MARGIN_TOP + plot_h / 2:.0f})">{_e(chart.y_label)}</text>')
    if bars:
        out.extend(_bars(chart, sx, sy))
    for lim in in_scale:
        dash = ' stroke-dasharray="6 4"' if lim.dashed else ""
        x1, x2 = ((MARGIN_LEFT, MARGIN_LEFT + plot_w) if lim.category is None
                  else (sx(lim.category - 0.45), sx(lim.category + 0.45)))
        out.append(f'<line x1="{x1:.1f}" y1="{sy(lim.value):.1f}" x2="{x2:.1f}" '
                   f'y2="{sy(lim.value):.1f}" stroke="{lim.color}" stroke-width="{2 if bars else 1.5}"{dash}>'
                   f'<title>{_e(lim.label)}: {_fmt(lim.value)}</title></line>')
    for i, s in enumerate(chart.series if not bars else ()):
        color = s.color or PALETTE[i % len(PALETTE)]
        pts = [p for p in s.points if all(math.isfinite(c) for c in p)]
        if not pts:
            continue
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        coords = " ".join(f"{sx(px):.1f},{sy(py):.1f}" for px, py in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{coords}">'
                   f'<title>{_e(s.name)}</title></polyline>')
        for px, py in pts if len(pts) <= 60 else ():
            out.append(f'<circle cx="{sx(px):.1f}" cy="{sy(py):.1f}" r="2.5" fill="{color}">'
                       f'<title>{_e(s.name)} at {_fmt(px)}: {_fmt(py)}</title></circle>')
    for r, row in enumerate(rows):
        ly = MARGIN_TOP + plot_h + MARGIN_BOTTOM + 6 + r * LEGEND_ROW
        for lx, label, color, dashed in row:
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            out.append(f'<line x1="{lx:.0f}" y1="{ly}" x2="{lx + LEGEND_SWATCH:.0f}" y2="{ly}" stroke="{color}" '
                       f'stroke-width="{6 if bars and not dashed else 2}"{dash}/>')
            out.append(f'<text x="{lx + LEGEND_SWATCH + 6:.0f}" y="{ly + 4}" font-size="11">{_e(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _bars(chart: Chart, sx: Callable[[float], float], sy: Callable[[float], float]) -> list[str]:
    """The series of a bar chart side by side in each category, each with its interval's whisker."""
    out = []
    group = 0.7  # of a category's width
    width = group / max(len(chart.series), 1)
    for i, s in enumerate(chart.series):
        color = s.color or PALETTE[i % len(PALETTE)]
        for k, (px, py) in enumerate(s.points):
            if not (math.isfinite(px) and math.isfinite(py)):
                continue
            left = px - group / 2 + i * width
            x0, x1 = sx(left + width * 0.08), sx(left + width * 0.92)
            top, bottom = sy(max(py, 0.0)), sy(0.0)
            out.append(f'<rect x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" height="{bottom - top:.1f}" '
                       f'fill="{color}"><title>{_e(s.name)}: {_fmt(py)}</title></rect>')
            if k < len(s.intervals) and all(math.isfinite(v) for v in s.intervals[k]):
                low, high = s.intervals[k]
                mid = (x0 + x1) / 2
                cap = (x1 - x0) / 4
                out.append(f'<g stroke="#222" stroke-width="1.5"><title>{_e(s.name)} interval: '
                           f'{_fmt(low)}..{_fmt(high)}</title>'
                           f'<line x1="{mid:.1f}" y1="{sy(low):.1f}" x2="{mid:.1f}" y2="{sy(high):.1f}"/>'
                           f'<line x1="{mid - cap:.1f}" y1="{sy(low):.1f}" x2="{mid + cap:.1f}" y2="{sy(low):.1f}"/>'
                           f'<line x1="{mid - cap:.1f}" y1="{sy(high):.1f}" x2="{mid + cap:.1f}" y2="{sy(high):.1f}"/>'
                           '</g>')
    return out


def _table(table: Table) -> str:
    rows = []
    for i, row in enumerate(table.rows):
        status = table.statuses[i] if i < len(table.statuses) else ""
        cls = f' class="{status}"' if status else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in table.header)
    return f"<h3>{_e(table.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(report: Report, *, charts: Sequence[Chart] = (), tables: Sequence[Table] = ()) -> str:
    """The report as one self-contained HTML page."""
    verdict = "failed" if report.failed else "passed"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>{_e(report.title)}</h1><p><span class="verdict {verdict}">{verdict.upper()}</span></p>',
    ]
    if report.summary:
        parts.append('<table class="summary"><tbody>' + "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in report.summary.items()) + "</tbody></table>")
    sections: dict[str, list[Chart]] = {}
    for chart in charts:
        sections.setdefault(chart.section, []).append(chart)
    for section, group in sections.items():
        if section:
            parts.append(f"<h2>{_e(section)}</h2>")
        parts.append('<div class="charts">' + "".join(f'<div class="chart">{render_svg(c)}</div>' for c in group)
                     + "</div>")
    parts.extend(_table(t) for t in tables)
    if report.items:
        parts.append("<h2>Results</h2><table><thead><tr><th>status</th><th>test</th><th>message</th>"
                     "<th>location</th></tr></thead><tbody>")
        for item in sorted(report.items, key=lambda i: STATUS_ORDER.get(i.status, 9)):
            cls = "failed" if item.status in report.failing else "passed"
            parts.append(f'<tr class="{cls}"><td>{_e(item.status)}</td><td>{_e(item.subject or item.id)}</td>'
                         f"<td>{_e(item.message)}</td><td><code>{_e(item.location)}</code></td></tr>")
        parts.append("</tbody></table>")
    parts.append(f'<p class="meta">{_e(report.tool)}</p></body></html>')
    return "\n".join(parts) + "\n"
