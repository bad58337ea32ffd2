"""Renders the library's progress events with rich, on the CLI's console."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgressBar
    from rich.progress import TaskID


class RichProgress:
    """Implements :class:`modelops.runtime.Progress` for a terminal (bars) or a log (plain lines)."""

    def __init__(self, console: Console):
        self._console = console
        self._bar: RichProgressBar | None = None
        self._tasks: dict[str, TaskID] = {}

    def step(self, message: str) -> None:
        from rich.text import Text

        self._console.print(Text(message), highlight=False)

    def start(self, task: str, total: float | None = None) -> None:
        if not self._console.is_terminal:
            self.step(f"{task} ...")
            return
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self._bar is None:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[message]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
        self._tasks[task] = self._bar.add_task(task, total=total, message="")

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None:
        if self._bar is None or task not in self._tasks:
            return
        if message is None:
            self._bar.update(self._tasks[task], advance=amount)
        else:
            self._bar.update(self._tasks[task], advance=amount, message=message)

    def finish(self, task: str) -> None:
        if self._bar is None or task not in self._tasks:
            return
        self._bar.remove_task(self._tasks.pop(task))
        if not self._tasks:
            self._bar.stop()
            self._bar = None
