"""Renderers of findings and results: terminal, JSON, JUnit XML, SARIF, Markdown, HTML.

Everything renders a :class:`Report` (title, items, subjects, summary, rule descriptions); build one
from findings with :func:`from_findings`, or from test results by making :class:`Item` rows with
statuses ``passed``/``failed``/``skipped``. Renderers return text (the CLI writes it) except
:func:`render_terminal`, which prints on the given rich console.

- :func:`render_junit` ``(report) -> str``: JUnit XML, a test case per subject;
- :func:`render_sarif` ``(report) -> str``: SARIF 2.1.0;
- :func:`render_markdown` ``(report) -> str``: a pull-request comment;
- :func:`render_terminal` ``(console, report)``: a rich table and a verdict line;
- :func:`render_html` ``(report, *, charts=(), tables=()) -> str``: a self-contained page with
  inline SVG line charts (:class:`Chart` of :class:`Series`, :class:`Limit` lines) and tables;
- :mod:`modelops.report.testrun`: a test run as a :class:`Report`, charts and tables;
  :mod:`modelops.report.files`: ``write_text(path, text)``, how every report file is written.
"""

from modelops.report.html import Chart, Limit, Series, Table, render_html
from modelops.report.items import Item, Report, from_findings
from modelops.report.junit import render_junit
from modelops.report.markdown import render_markdown
from modelops.report.sarif import render_sarif, sarif_document
from modelops.report.terminal import render_terminal

__all__ = [
    "Chart",
    "Item",
    "Limit",
    "Report",
    "Series",
    "Table",
    "from_findings",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_sarif",
    "render_terminal",
    "sarif_document",
]
