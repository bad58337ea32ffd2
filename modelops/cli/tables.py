"""Tables that never cut what they show: a rich table when every column fits the console whole (the
last one may fold), else one line per item, as ``validate`` does, so a CI log (80 columns, not a
terminal) keeps region names, statuses and release ids whole and greppable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: The narrowest the last (folded) column of a table may be before the table gives way to lines.
MIN_LAST_COLUMN = 20
#: ... when it holds sentences (a rollback's reason), which read badly folded narrower.
MIN_PROSE_COLUMN = 30
_GAP = 2  # rich's padding between columns of a box-less table without edge padding


def fits(width: int, header: Sequence[str], rows: Sequence[Sequence[str]], *, min_last: int = MIN_LAST_COLUMN) -> bool:
    """Whether a table of ``rows`` shows every column but the last whole in ``width`` columns, with
    at least ``min_last`` left for the last (which folds)."""
    columns = len(header)
    fixed = sum(max(len(r[i]) for r in (header, *rows)) for i in range(columns - 1))
    last = min(min_last, max(len(r[-1]) for r in (header, *rows)))
    return fixed + _GAP * (columns - 1) + last <= width


def table_or_lines(console: Console, title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                   line: Callable[[Sequence[str]], str], *, min_last: int = MIN_LAST_COLUMN) -> None:
    """Print ``rows`` under ``title``: as a table when it :func:`fits`, else each as ``line(row)``."""
    from rich.table import Table
    from rich.text import Text

    if fits(console.width, header, rows, min_last=min_last):
        # No box, like validate's and build's tables: borders cost two columns per column.
        table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
        for name in header[:-1]:
            table.add_column(name, no_wrap=True)
        table.add_column(header[-1], overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        return
    console.print(Text(title))
    for row in rows:
        console.print(Text(line(row)))
