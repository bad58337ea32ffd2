"""CLI commands of the ci concern: ``modelops ci changed``, ``ci pr`` and ``ci spinnaker``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

ci_app = typer.Typer(name="ci", help="CI integration: changed models, the pull-request check, Spinnaker pipelines.",
                     no_args_is_help=True)

BOTH_OUT_AND_CHECK = "--out and --check cannot be used together"
SINCE_OR_ALL = "give --since REF (the models a change touches) or --all (every model), not both or neither"


@ci_app.command("changed")
def changed(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", metavar="REF", help="Compare with the merge base of REF.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every model (a first build: nothing to compare with).")] = False,
    output: Output = OutputFormat.text,
) -> int:
    """The models a change touches (all of them when pipelines/ changed), for fan-out in CI."""
    cli = cli_context.get(ctx)
    from modelops.ci import ChangedRequest
    from modelops.ci import changed as find_changed
    from modelops.errors import InputError

    if (since is None) == (not every):
        raise InputError(SINCE_OR_ALL)
    result = find_changed(ChangedRequest(since=since), cli.runtime)

    def text(console: Console) -> None:
        for model in result.models:
            console.print(f"{model.folder}  ({model.name}{'' if model.valid else ', config does not load'})")
        console.print(f"{len(result.models)} model(s) " + (f"changed since {since}" if since else "in all")
                      + (" (pipelines/ changed: all of them)" if result.pipelines_changed else ""))

    cli.emit(result, text)
    return 0


@ci_app.command("pr")
def pr(
    ctx: typer.Context,
    base: Annotated[str, typer.Option("--base", metavar="REF", help="The branch the pull request merges into.")],
    markdown: Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write the PR comment.")] = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", metavar="FILE", help="Write SARIF 2.1.0 for code scanning.")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report.")] = None,
    bandit: Annotated[bool, typer.Option("--bandit/--no-bandit", help="Scan inference code with bandit.")] = True,
    cloud_plan: Annotated[bool, typer.Option("--cloud-plan/--no-cloud-plan",
                                             help="Ask the clouds what a deploy would change (read-only).")] = True,
    output: Output = OutputFormat.text,
) -> int:
    """The pull-request check: validate the changed models, plan them per environment and region, report."""
    cli = cli_context.get(ctx)
    from modelops.ci import PrRequest, check_pr
    from modelops.report import render_junit, render_sarif, render_terminal
    from modelops.report.files import write_text

    result = check_pr(PrRequest(base=base, bandit=bandit, cloud_plan=cloud_plan), cli.runtime)
    report = result.report()
    for path, rendered in ((markdown, result.markdown), (sarif, lambda: render_sarif(report)),
                           (junit, lambda: render_junit(report))):
        if path is not None:
            write_text(path, rendered())

    def text(console: Console) -> None:
        render_terminal(console, report)
        console.print(f"{len(result.new)} new, {len(result.fixed)} fixed; plan: {len(result.plan)} row(s)")
        for folder, name in result.removed:
            console.print(f"removed: {folder} ({name}): its endpoints are not deleted")

    cli.emit(result, text)
    return int(result.exit_status)


@ci_app.command("spinnaker")
def spinnaker(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", help="Where to write (default: spinnaker/).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Fail when the files in spinnaker/ are out of date.")] = False,
    output: Output = OutputFormat.text,
) -> int:
    """Generate the Spinnaker pipeline JSON from pipelines/environments.yaml (or check it is current)."""
    cli = cli_context.get(ctx)
    from modelops.ci import SpinnakerRequest, generate
    from modelops.errors import InputError

    if out is not None and check:
        raise InputError(BOTH_OUT_AND_CHECK)
    result = generate(SpinnakerRequest(out=out, check=check), cli.runtime)
    verb = "up to date" if check else (f"wrote {len(result.written)} file(s)" if result.written else "unchanged")
    cli.emit(result, lambda console: console.print(f"{', '.join(str(f) for f in result.files)}: {verb} "
                                                   f"({result.stages} stages)"))
    return 0


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(ci_app, name="ci")
