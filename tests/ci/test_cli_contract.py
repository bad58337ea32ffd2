"""Every modelops command line the CI definitions run (Jenkinsfile, spinnaker/*.json, the GitHub
workflow) parses against the real CLI: the command exists, its options exist, required arguments are
there. Parsed with click's own parser, without running anything."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import typer

from modelops.cli.app import app
from tests.helpers import PROJECT_ROOT

# Values the pipelines fill in at run time, as a shell would see them.
_VARS = {"$MODEL": "models/iris", "$MODEL_NAME": "iris", "$MODELOPS_ENV": "dev", "$GIT_COMMIT": "0123abc",
         "$REGION": "us-east-1", "$RELEASE": "iris-0123456789", "$release": "iris-0123456789",
         "$MODELOPS_BASE": "origin/main", "$BASE_REF": "origin/main", "$REPORTS": "reports", "$REF": "main",
         "${parameters.model}": "models/iris", "${parameters.ref}": "main"}


def _expand(line: str) -> list[str]:
    for name in sorted(_VARS, key=len, reverse=True):
        line = line.replace(name, _VARS[name])
    words = shlex.split(line)
    for stop in (">", "||", "|"):
        if stop in words:
            words = words[: words.index(stop)]
    return words


def _jenkinsfile_commands() -> list[list[str]]:
    text = (PROJECT_ROOT / "Jenkinsfile").read_text()
    text = re.sub(r"'\s*\+\s*\n\s*'", "", text)  # 'a ' +\n 'b' -> 'a b'
    text = text.replace("\\\n", " ")  # shell line continuations
    found = re.findall(r"'{1,3}(modelops [^'\n]+)", text)
    return [_expand(f) for f in found]


def _spinnaker_commands() -> list[list[str]]:
    out = []
    for path in sorted((PROJECT_ROOT / "spinnaker").glob("*.json")):
        for stage in json.loads(path.read_text())["stages"]:
            if stage["type"] != "runJobManifest":
                continue
            for container in stage["manifest"]["spec"]["template"]["spec"]["containers"]:
                if container["command"] == ["modelops"]:
                    out.append(["modelops", *(_VARS.get(a, a) for a in container["args"])])
                else:
                    script = container["command"][-1]
                    out += [_expand(m) for m in re.findall(r"(modelops [^\n|)]+)", script)]
    return out


def _workflow_commands() -> list[list[str]]:
    text = (PROJECT_ROOT / ".github/workflows/pr.yml").read_text().replace("\\\n", " ")
    return [_expand(m) for m in re.findall(r"^\s*(modelops ci [^\n]+)", text, flags=re.MULTILINE)]


COMMANDS = sorted({tuple(c) for c in _jenkinsfile_commands() + _spinnaker_commands() + _workflow_commands()})


def _parse(words: list[str]) -> None:
    """Parse ``modelops WORDS`` as the CLI would, down to the leaf command, without invoking it (typer
    vendors click: groups are the commands with ``resolve_command``). Raises typer's usage errors."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("modelops", list(words[1:]))
    while hasattr(command, "resolve_command"):
        args = [*ctx._protected_args, *ctx.args]
        name, command, rest = command.resolve_command(ctx, args)
        ctx = command.make_context(name, list(rest), parent=ctx)


def test_the_pipelines_run_the_commands_they_should() -> None:
    verbs = {" ".join(c[1:3]) if c[1] == "ci" else c[1] for c in COMMANDS}
    assert {"ci changed", "ci pr", "validate", "build", "deploy", "test", "approve"} <= verbs


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c[1:]) for c in COMMANDS])
def test_each_command_line_parses_against_the_cli(words: tuple[str, ...]) -> None:
    try:
        _parse(list(words))
    except typer.TyperException as exc:
        pytest.fail(f"{' '.join(words)}: {exc}")


def test_the_parser_catches_an_unknown_option() -> None:
    with pytest.raises(typer.TyperException, match="--bsae"):
        _parse(["modelops", "ci", "pr", "--bsae", "main"])
    with pytest.raises(typer.TyperException, match="--changed-sinze"):
        _parse(["modelops", "validate", "--changed-sinze", "main"])
    with pytest.raises(typer.TyperException, match=r"(?i)release"):
        _parse(["modelops", "approve", "--env", "prod"])
