"""The CLI's one context object: built once per invocation, handed to every command.

It holds the console (human output, on stderr), the library's :class:`~modelops.runtime.Runtime`, and
what the user asked of the output. Every command ends in :meth:`CliContext.emit`: the result's JSON
document on stdout with ``--output json``, its text rendering on the console otherwise. The error
printer (``app.run``) asks the same object whether a document is owed, so a failure with
``--output json`` is still one JSON document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from modelops.runtime import Runtime

if TYPE_CHECKING:
    from rich.console import Console


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class Document(Protocol):
    """A command's result: ``to_dict()`` is its ``--output json`` document."""

    def to_dict(self) -> Mapping[str, Any]: ...


@dataclass(eq=False)
class CliContext:
    """What a command may use: the console, the runtime, and the output the user chose.

    Built by ``app.run`` before the command line is parsed (so the error printer has it too), then
    completed by the root callback (``runtime``, ``verbose``, ``debug``) and by a command's ``--output``
    option (``output``)."""

    runtime: Runtime
    verbose: bool = False
    debug: bool = False
    command: str = ""  # the command run (``deploy``, ``ci``...), once the command line is parsed
    output: OutputFormat = OutputFormat.text
    _emitted: bool = field(default=False, repr=False)
    _console: Console | None = field(default=None, repr=False)

    @property
    def console(self) -> Console:
        """Human output: stderr, so stdout stays clean for --output json. Made on first use (rich
        costs `modelops --help` time it does not need)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    @property
    def wants_json(self) -> bool:
        return self.output is OutputFormat.json

    @property
    def emitted(self) -> bool:
        """Whether this invocation has printed its JSON document."""
        return self._emitted

    def emit(self, result: Document | Mapping[str, Any], text: Callable[[Console], object] | None = None) -> None:
        """Show a command's result in the chosen format: the JSON document on stdout, or ``text``
        rendered on the console (nothing when a command has no text form beyond its own lines)."""
        if self.output is OutputFormat.json:
            document = result if isinstance(result, Mapping) else result.to_dict()
            sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
            sys.stdout.flush()
            self._emitted = True
        elif text is not None:
            text(self.console)


def get(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext), "app.run builds the CLI context"
    return obj


def _choose_output(ctx: typer.Context, value: OutputFormat | None) -> OutputFormat | None:
    # Eager, so it is known before any other option or argument can fail: a usage error in a command
    # run with --output json is still an error document.
    if value is not None and isinstance(ctx.find_root().obj, CliContext):
        ctx.find_root().obj.output = value
    return value


#: Every command's ``--output`` option. Commands read the choice from the context (``emit``), not
#: from this parameter.
Output = Annotated[OutputFormat, typer.Option(
    "--output", "-o", metavar="FORMAT", help="text, or json (one document on stdout).", is_eager=True,
    callback=_choose_output)]
