"""Every command's options read as a user's words in --help: a value is named for what it is (ENV,
REF, REGION, FILE...), never by a Python type such as <str>, <int range> or list[str] (typer shows an
argument's type whatever its metavar, so arguments are left as typer draws them)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import run_cli

COMMANDS = [("validate",), ("schema",), ("init",), ("build",), ("deploy",), ("promote",), ("approve",),
            ("rollback",), ("status",), ("history",), ("plan",), ("sync",), ("invoke",), ("test",),
            ("local", "up"), ("local", "down"), ("local", "status"), ("local", "logs"),
            ("ci", "changed"), ("ci", "pr"), ("ci", "spinnaker"), ("ledger", "verify")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_no_python_type_names(command: tuple[str, ...]) -> None:
    result = run_cli(*command, "--help")
    assert result.exit_code == 0, result
    options = [line for line in result.stdout.splitlines() if line.lstrip().startswith("-")]
    python_types = re.compile(r"list\[|<(str|int|float|path)\b")
    assert options and not [line for line in options if python_types.search(line)], result.stdout
