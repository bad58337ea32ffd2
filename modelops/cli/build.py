"""CLI commands of the build concern: ``build``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.build import BuildResult


def build(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder (models/iris).")],
    env: Annotated[str, typer.Option("--env", "-e", metavar="ENV", help="Build for this environment's cloud and regions.")] = "dev",
    ref: Annotated[str | None, typer.Option("--ref", metavar="REF", help="Build the model as it is at this git ref.")] = None,
    context_only: Annotated[Path | None, typer.Option("--context-only", metavar="DIR",
                                                      help="Write DIR/<region>/ build contexts; do not build.")] = None,
    builder: Annotated[str | None, typer.Option("--builder", metavar="BUILDER", help="local, docker or codebuild (default: the environment's).")] = None,
    sign_key: Annotated[Path | None, typer.Option("--sign-key", metavar="PEM",
                                                  help="Sign the artifact manifest with this EC private key.")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """Build a release: DLC-based image and model data per region, recorded where deploy finds them."""
    from modelops.build import BuildRequest
    from modelops.build import build as run_build

    cli = cli_context.get(ctx)
    result = run_build(BuildRequest(model, environment=env, ref=ref, context_only=context_only, builder=builder,
                                    sign_key=sign_key), cli.runtime)
    cli.emit(result, lambda console: _render(console, result))
    return 0


def _render(console: Console, result: BuildResult) -> None:
    how = "context written to " + str(result.context_dir) if result.context_dir else (
        "cache hit" if result.cache_hit else f"built with {result.builder}")
    console.print(f"[bold]{result.release}[/bold]  {result.digest}  ({how})")
    for line in image_lines(result):
        console.print(line, soft_wrap=True, markup=False)


def image_lines(result: BuildResult) -> list[str]:
    """Each region's image and model data, a URI per line and never broken by modelops (the terminal
    soft-wraps): two ~90-character URIs side by side in a table were cut with an ellipsis at 100
    columns, and they are what a user copies."""
    width = max((len(i.region) for i in result.images), default=0)
    lines = []
    for image in result.images:
        lines.append(f"  {image.region:<{width}}  image       {image.image_uri}")
        lines.append(f"  {'':<{width}}  model data  {image.model_data_url or '-'}")
    return lines


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("build")(build)
