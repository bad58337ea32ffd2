"""CLI commands of the config concern: ``validate``, ``schema``, ``init``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

NAME_NEEDED = "give the model's NAME (modelops init NAME), or --repo to start a repository"
INIT_REPO_NEXT = ("next: git add -A && git commit -m 'modelops init'; modelops validate; then deploy: "
                  "modelops deploy {folder} --through prod (prod needs an approval from someone else: "
                  "modelops approve RELEASE --env prod)")


class SchemaKind(StrEnum):
    model = "model"
    environments = "environments"
    policy = "policy"
    cases = "cases"
    access = "access"


def validate(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Model folders, models/, pipelines/ (default: the whole repo).")] = None,
    ref: Annotated[str | None, typer.Option("--ref", metavar="REF", help="Validate the configs at this git ref (no checkout).")] = None,
    changed_since: Annotated[str | None, typer.Option("--changed-since", metavar="REF",
                                                      help="Only models changed since REF (all when pipelines/ changed).")] = None,
    output: Output = OutputFormat.text,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")] = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", metavar="FILE", help="Write a SARIF 2.1.0 report.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write a Markdown PR comment.")] = None,
    bandit: Annotated[bool, typer.Option("--bandit/--no-bandit", help="Scan inference code with bandit.")] = True,
    list_rules: Annotated[bool, typer.Option("--list-rules", help="List the rules and exit.")] = False,
) -> int:
    """Check model configs, pipelines and inference code: schema, security policy, capacity, bandit."""
    cli = cli_context.get(ctx)
    if list_rules:
        return _list_rules(cli)
    from modelops.policy.validation import ValidateRequest
    from modelops.policy.validation import validate as run_validate
    from modelops.report import from_findings, render_junit, render_markdown, render_sarif, render_terminal
    from modelops.report.files import write_text

    request = ValidateRequest(paths=tuple(paths or ()), ref=ref, changed_since=changed_since, bandit=bandit)
    result = run_validate(request, cli.runtime)
    report = from_findings("modelops validate", result.findings, subjects=[m.name for m in result.models],
                           summary=result.summary(), rules=result.rules, fail_on=str(result.fail_on))
    for path, render in ((junit, render_junit), (sarif, render_sarif), (markdown, render_markdown)):
        if path is not None:
            write_text(path, render(report))
    cli.emit(result, lambda console: render_terminal(console, report))
    return int(result.exit_status)


def _list_rules(cli: cli_context.CliContext) -> int:
    from modelops.policy.rules import RULES

    def text(console: Console) -> None:
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        # Rule ids whole (policy.yaml names them): the summary wraps instead.
        table.add_column("rule", no_wrap=True, min_width=max(len(r) for r in RULES))
        table.add_column("severity", no_wrap=True)
        table.add_column("environments", overflow="fold")
        table.add_column("summary", overflow="fold")
        for r in RULES.values():
            table.add_row(r.id, str(r.severity), ", ".join(r.environments or ()), r.summary)
        console.print(table)

    cli.emit({"rules": [{"rule": r.id, "severity": str(r.severity), "environments": list(r.environments or []),
                         "summary": r.summary} for r in RULES.values()]}, text)
    return 0


def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="Which config file's schema.")] = SchemaKind.model,
) -> None:
    """Print the JSON Schema (draft 2020-12) of model.yaml, environments.yaml, policy.yaml, cases.yaml or access.yaml."""
    import sys

    from modelops.config.schema import schema_text

    sys.stdout.write(schema_text(kind.value))


def init(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The model's name (lower case, digits, dashes).")] = None,
    team: Annotated[str, typer.Option("--team", metavar="TEAM", help="The owning team.")] = "my-team",
    description: Annotated[str, typer.Option("--description", metavar="TEXT", help="One line about the model.")] = "",
    repo: Annotated[bool, typer.Option("--repo", help="Start a repository here: pipelines, CI files and a first "
                                                      "model NAME (default my-model).")] = False,
    output: Output = OutputFormat.text,
) -> int:
    """Scaffold models/NAME with a config, inference code and regression cases that every environment accepts."""
    cli = cli_context.get(ctx)
    if repo:
        return _init_repo(cli, name, team, description)
    from modelops.config.scaffold import init_model
    from modelops.errors import InputError

    if name is None:
        raise InputError(NAME_NEEDED)
    result = init_model(cli.runtime.cwd, name, team=team, description=description)

    def text(console: Console) -> None:
        console.print(f"created {result.folder}: {', '.join(f.split('/', 2)[2] for f in result.files)}")
        console.print(f"next: add artifacts, then modelops validate {result.folder}")

    cli.emit({"folder": result.folder, "files": list(result.files)}, text)
    return 0


def _init_repo(cli: cli_context.CliContext, name: str | None, team: str, description: str) -> int:
    from modelops.ci.repository import InitRepoRequest, init_repo

    result = init_repo(InitRepoRequest(model=name or "my-model", team=team, description=description), cli.runtime)

    def text(console: Console) -> None:
        console.print(f"created {len(result.files)} files in {result.root}" + (
            " (a new git repository)" if result.git_initialized else "") + f": {', '.join(result.files)}")
        console.print(INIT_REPO_NEXT.format(folder=result.model.folder))

    cli.emit(result, text)
    return 0


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("init")(init)
