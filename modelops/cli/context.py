"""The CLI's context object, built once per invocation in the root callback."""

from __future__ import annotations

import json
import sys
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
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
        sys.stdout.flush()


def get(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext), "the root callback builds the CLI context"
    return obj
