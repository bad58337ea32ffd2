"""CLI commands on rollouts in flight and blocked releases: ``modelops watch``, ``modelops rollout
pause|resume|abort|promote`` and ``modelops release unblock``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.deploy.control import RolloutResult
    from modelops.deploy.watch import WatchEvent

_Model = Annotated[str, typer.Argument(help="Model name or folder.")]
_Env = Annotated[str, typer.Option("--env", "-e", metavar="ENV", help="The environment (pipelines/environments.yaml).")]
_Region = Annotated[str | None, typer.Option("--region", metavar="REGION", help="Only this region (default: every region of the rollout).")]
_Reason = Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (kept in the ledger).")]

rollout_app = typer.Typer(name="rollout", no_args_is_help=True, rich_markup_mode=None,
                          help="Act on a rollout in flight: pause, resume, abort (roll back now), promote (finish without further bake).")
release_app = typer.Typer(name="release", no_args_is_help=True, rich_markup_mode=None,
                          help="Releases refused in an environment (rolled back there): unblock.")


def watch(
    ctx: typer.Context,
    model: _Model,
    env: _Env,
    region: _Region = None,
    output: Output = OutputFormat.text,
) -> int:
    """Follow a rollout live (steps, weights, alarms, intents) from the cloud and the ledger until it ends."""
    from modelops.deploy.watch import WatchRequest
    from modelops.deploy.watch import watch as run_watch

    cli = cli_context.get(ctx)
    result = run_watch(WatchRequest(model, env, region), cli.runtime, lambda event: _print_event(cli.console, event))
    cli.emit(result)
    return int(result.exit_status)


def _print_event(console: Console, event: WatchEvent) -> None:
    """One line per change, time first, whole (a terminal wraps it; a log keeps it greppable)."""
    from rich.text import Text

    when = datetime.fromtimestamp(event.at, UTC).strftime("%H:%M:%S")
    style = {"end": "bold", "ledger": "cyan"}.get(event.kind, "")
    console.print(Text(f"{when} ", style="dim") + Text(f"{event.region}: " if event.region else "")
                  + Text(event.text, style=style))


def _control(ctx: typer.Context, model: str, env: str, action: str, region: str | None, reason: str) -> int:
    from modelops.deploy.control import RolloutRequest, control_rollout

    cli = cli_context.get(ctx)
    result = control_rollout(RolloutRequest(model, env, action, region, reason), cli.runtime)
    cli.emit(result, lambda console: _render_control(console, result))
    return int(result.exit_status)


def _render_control(console: Console, result: RolloutResult) -> None:
    from rich.text import Text

    for r in result.regions:
        console.print(Text(f"{result.environment}/{r.region} ({r.release}, {r.status}): {r.effect}"))
    for o in result.outcomes:
        console.print(Text(f"{o.environment}/{o.region}: {o.status.replace('_', ' ')}, serving {o.serving or '-'}"
                           + (f": {o.detail}" if o.detail else "")))
    if result.action != "abort" and not any(r.effective for r in result.regions):
        console.print(Text(f"{result.action} recorded; nothing it can hold or finish now", style="yellow"))


@rollout_app.command()
def pause(ctx: typer.Context, model: _Model, env: _Env, region: _Region = None, reason: _Reason = "",
          output: Output = OutputFormat.text) -> int:
    """Hold the rollout before its next step that moves traffic (SageMaker's own update cannot be held)."""
    return _control(ctx, model, env, "pause", region, reason)


@rollout_app.command()
def resume(ctx: typer.Context, model: _Model, env: _Env, region: _Region = None, reason: _Reason = "",
           output: Output = OutputFormat.text) -> int:
    """Lift a pause: the rollout goes on at its next step."""
    return _control(ctx, model, env, "resume", region, reason)


@rollout_app.command()
def abort(ctx: typer.Context, model: _Model, env: _Env, region: _Region = None, reason: _Reason = "",
          output: Output = OutputFormat.text) -> int:
    """Roll back now: SageMaker rolls a baking update back (its rollback alarm forced), a finished one is
    taken back; the release is then blocked in the environment."""
    return _control(ctx, model, env, "abort", region, reason)


@rollout_app.command()
def promote(ctx: typer.Context, model: _Model, env: _Env, region: _Region = None, reason: _Reason = "",
            output: Output = OutputFormat.text) -> int:
    """Finish without further bake where modelops holds the rollout (SageMaker cannot end its bake early)."""
    return _control(ctx, model, env, "promote", region, reason)


@release_app.command()
def unblock(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release id (iris-0123456789).")],
    env: _Env,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why it may roll out there again (required; kept in the ledger).")] = "",
    output: Output = OutputFormat.text,
) -> int:
    """Let a release rolled back in an environment roll out there again (recorded with who and why)."""
    from modelops.deploy.control import UnblockRequest
    from modelops.deploy.control import unblock as run_unblock

    cli = cli_context.get(ctx)
    result = run_unblock(UnblockRequest(release, env, reason), cli.runtime)
    cli.emit(result, lambda console: console.print(
        f"{result.release} unblocked in {result.environment} by {result.by} (was: {result.block.reason})"))
    return 0


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("watch")(watch)
    app.add_typer(rollout_app)
    app.add_typer(release_app)
