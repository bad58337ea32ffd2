"""The CLI's context object, built once per invocation in the root callback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from modelops.runtime import Runtime

if TYPE_CHECKING:
    from rich.console import Console


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


@dataclass(frozen=True)
class CliContext:
    """Built once in the typer callback and handed to every command."""

    console: Console  # human output: stderr, so stdout stays clean for --output json
    runtime: Runtime
    verbose: bool = False
    debug: bool = False

    def emit_json(self, document: Any) -> None:
        """Print the one JSON document of ``--output json`` on stdout."""
        emit_document(document)


_before_commands: list[Callable[[], None]] = []


def before_commands(setup: Callable[[], None]) -> None:
    """Run ``setup`` once a command is about to run (not for ``modelops --help``): for wiring that
    imports more than start-up should pay for, such as a checker plugged into validate."""
    if setup not in _before_commands:
        _before_commands.append(setup)


def run_before_commands() -> None:
    for setup in _before_commands:
        setup()


_emitted = [False]  # whether this invocation has printed its JSON document (see app.run)


def emit_document(document: Any) -> None:
    """Print a JSON document on stdout and remember that this invocation has printed one."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
    _emitted[0] = True


def reset_emitted() -> None:
    """Start of an invocation: no JSON document printed yet."""
    _emitted[0] = False


def emitted() -> bool:
    """True when this invocation has printed its JSON document."""
    return _emitted[0]


def get(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext), "the root callback builds the CLI context"
    return obj
