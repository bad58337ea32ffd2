"""CLI commands of the local concern: ``modelops local up|down|status|logs``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from modelops.localcloud import LocalCloudInfo

NOT_RUNNING = "the local cloud is not running (data dir {data_dir})"
NO_LOG = "the local cloud has no log yet in {data_dir}"
OTHER_PORT = "note: it listens on port {running}, not {port}; `modelops local down` first to move it"
OTHER_TIMING = ("note: it runs with timing {running}, not {asked}; `modelops local down` first to change it "
                "(the state stays)")

local_app = typer.Typer(name="local", help="The embedded local cloud: start, stop, inspect.",
                        no_args_is_help=True, rich_markup_mode=None)

DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR", help="The local cloud's data dir (default: $MODELOPS_LOCAL_DATA_DIR, else <data dir>/localcloud).")]


def _data_dir(cli: cli_context.CliContext, data_dir: Path | None) -> Path:
    return data_dir.expanduser().absolute() if data_dir is not None else cli.runtime.local_cloud_dir


def _render(cli: cli_context.CliContext, info: LocalCloudInfo | None, data_dir: Path, verb: str) -> None:
    if info is None:
        cli.emit({"running": False, "data_dir": str(data_dir)},
                 lambda console: console.print(NOT_RUNNING.format(data_dir=data_dir)))
    else:
        timing = "" if info.timing.get("profile") == "fast" else f", timing {_timing_words(info.timing)}"
        cli.emit(info, lambda console: console.print(
            f"local cloud {verb} at {info.url} (pid {info.pid}, data dir {info.data_dir}{timing})"))


def _timing_words(timing: dict[str, object]) -> str:
    return f"{timing.get('profile')} x {timing.get('scale'):g}" if isinstance(timing.get("scale"), float | int) \
        else str(timing.get("profile"))


@local_app.command()
def up(ctx: typer.Context,
       port: Annotated[int | None, typer.Option("--port", metavar="PORT", min=0, max=65535,
                                                help="Port on 127.0.0.1 (default, or 0: a free one).")] = None,
       timing: Annotated[str | None, typer.Option(
           "--timing", metavar="PROFILE",
           help="How long the service's own phases take: fast (default, about a second to InService), or aws "
                "(SageMaker's: minutes to create, longer to update blue/green).")] = None,
       time_scale: Annotated[float | None, typer.Option(
           "--time-scale", metavar="FACTOR", help="Multiplies the profile's durations (0.05: a twentieth).")] = None,
       data_dir: DataDirOption = None, output: Output = OutputFormat.text) -> int:
    """Start the local cloud in the background (or report the one already running)."""
    from modelops import localcloud
    from modelops.errors import InputError

    cli = cli_context.get(ctx)
    try:
        chosen = localcloud.timing(timing or "fast", 1.0 if time_scale is None else time_scale)
    except ValueError as exc:
        raise InputError(str(exc), hint="e.g. --timing aws --time-scale 0.05") from exc
    root = _data_dir(cli, data_dir)
    running = localcloud.status(root)
    info = running or localcloud.ensure_running(root, port, chosen)
    _render(cli, info, root, "already running" if running else "running")
    if running is not None and port and running.port != port:
        cli.console.print(OTHER_PORT.format(port=port, running=running.port))
    if running is not None and (timing or time_scale is not None) and running.timing != chosen.to_dict():
        cli.console.print(OTHER_TIMING.format(running=_timing_words(running.timing),
                                              asked=_timing_words(chosen.to_dict())))
    return 0


@local_app.command()
def down(ctx: typer.Context, data_dir: DataDirOption = None) -> int:
    """Stop the local cloud and its model containers (the state stays in the data dir)."""
    from modelops import localcloud

    cli = cli_context.get(ctx)
    root = _data_dir(cli, data_dir)
    stopped = localcloud.stop(root)
    cli.console.print("local cloud stopped" if stopped else NOT_RUNNING.format(data_dir=root))
    return 0


@local_app.command()
def status(ctx: typer.Context, data_dir: DataDirOption = None, output: Output = OutputFormat.text) -> int:
    """Whether the local cloud runs, and where."""
    from modelops import localcloud

    cli = cli_context.get(ctx)
    root = _data_dir(cli, data_dir)
    _render(cli, localcloud.status(root), root, "running")
    return 0


@local_app.command()
def logs(ctx: typer.Context, follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         data_dir: DataDirOption = None) -> int:
    """Print the local cloud's server log (model containers log under <data dir>/logs/)."""
    import sys
    import time

    from modelops import localcloud
    from modelops.errors import InputError

    cli = cli_context.get(ctx)
    path = localcloud.log_path(_data_dir(cli, data_dir))
    if not path.exists():
        raise InputError(NO_LOG.format(data_dir=path.parent), hint="start it with `modelops local up`")
    with path.open("r", errors="replace") as handle:
        sys.stdout.write(handle.read())
        while follow:
            line = handle.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)
    return 0


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(local_app)
