"""The ``modelops`` command: the root callback, command registration and the one place errors are printed."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from modelops import __version__
from modelops.cli import context as cli_context
from modelops.errors import ExitStatus, ModelopsError

INTERRUPTED = ExitStatus.INTERRUPTED
INTERRUPTED_MESSAGE = "interrupted (Ctrl-C)"
INTERRUPTED_HINT = "run the same command again"
INTERRUPTED_ROLLOUT_HINT = "run the same command again: it resumes from what the ledger and the cloud say"
# Commands that roll endpoints out (reconcile loops: a re-run converges).
_ROLLOUT_COMMANDS = frozenset({"deploy", "promote", "rollback", "sync", "rollout"})

CANNOT_WRITE = "cannot use {path}: {reason}"
CANNOT_WRITE_HINT = ("modelops keeps its state in MODELOPS_DATA_DIR (or --data-dir) and the local cloud's in "
                     "MODELOPS_LOCAL_DATA_DIR: point them at a writable directory")
DISK_FULL = "cannot write {path}: the disk is full"
DISK_FULL_HINT = "free space on that disk, or point MODELOPS_DATA_DIR (or --data-dir) at a directory on another one"
# What an unwritable or full state directory raises, wherever modelops first writes to it.
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT})

# Each module registers its own commands; each owns one concern (see DESIGN.md).
_COMMAND_MODULES = ("config", "local", "build", "deploy", "rollout", "test", "ci", "ledger")

app = typer.Typer(
    name="modelops",
    help="GitOps deployment pipeline for ML models on Amazon SageMaker (or the embedded local cloud).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelops {__version__}")
        raise typer.Exit()


# Modules that plug checkers into validate (and deploy's policy gate, ci pr) when a command runs, not
# at start-up: build's say what build and deploy would refuse (signatures, model data names, hadolint
# over the Dockerfile it would render: ~70 ms of imports that `modelops --help` does not need).
_CHECKER_MODULES = ("modelops.build.checks",)


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details of what happens.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", metavar="DIR", envvar="MODELOPS_DATA_DIR", help="Where modelops keeps its state."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    import importlib
    from dataclasses import replace

    from modelops.cli.progress import RichProgress

    cli = cli_context.get(ctx)
    cli.verbose, cli.debug, cli.command = verbose, debug or cli.debug, ctx.invoked_subcommand or ""
    cli.runtime = replace(cli.runtime, progress=RichProgress(cli.console), verbose=verbose,
                          data_dir=data_dir.expanduser().resolve() if data_dir is not None else cli.runtime.data_dir)
    for module in _CHECKER_MODULES:
        importlib.import_module(module)


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"modelops.cli.{name}").register(app)


_register_commands()


def _print_error(cli: cli_context.CliContext, err: ModelopsError) -> None:
    from rich.text import Text

    cli.console.print(Text("error: ", style="bold red") + Text(err.message))
    if err.hint:
        cli.console.print(Text("  hint: ", style="yellow") + Text(err.hint))


def _failed(cli: cli_context.CliContext, message: str, hint: str | None, status: int) -> int:
    """Return ``status``; with ``--output json``, a failure is still one JSON document on stdout
    (``{"error": {"message", "hint", "exit_status"}}``, unless the command printed its own first), so a
    pipeline that parses stdout reads why instead of failing on empty input."""
    if not cli.emitted:
        cli.emit({"error": {"message": message, "hint": hint, "exit_status": status}})
    return status


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in this process and return its exit status (tests call this directly)."""
    from modelops.runtime import Runtime

    args = list(sys.argv[1:] if argv is None else argv)
    cli = cli_context.CliContext(runtime=Runtime.from_environment(),
                                 debug=os.environ.get("MODELOPS_DEBUG") == "1")
    try:
        result = app(args=args, prog_name="modelops", standalone_mode=False, obj=cli)
    except ModelopsError as err:
        _traceback(cli)
        return _user_error(cli, err)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        return _failed(cli, "aborted", None, int(INTERRUPTED))
    except typer.TyperException as exc:  # click's usage errors, as typer vendors them
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"error: {exc}\n")
        format_message = getattr(exc, "format_message", None)
        message = format_message() if format_message is not None else str(exc)
        return _failed(cli, message, None, int(getattr(exc, "exit_code", ExitStatus.BAD_INPUT)))
    except KeyboardInterrupt:
        return _interrupted(cli)
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)  # a write() that fails so names no file
        if exc.errno not in _UNWRITABLE or not (exc.filename or full):
            return _internal_error(cli, exc)
        _traceback(cli)
        if full:
            return _user_error(cli, ModelopsError(DISK_FULL.format(path=exc.filename or "modelops' state"),
                                                  hint=DISK_FULL_HINT, exit_status=ExitStatus.ENVIRONMENT))
        return _user_error(cli, ModelopsError(
            CANNOT_WRITE.format(path=exc.filename, reason=exc.strerror),
            hint=CANNOT_WRITE_HINT if _in_state_dir(cli, exc.filename) else None, exit_status=ExitStatus.ENVIRONMENT))
    except Exception as exc:  # a bug in modelops, not the user's to fix
        return _internal_error(cli, exc)
    if result == INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130) and returns its code
        return _interrupted(cli)
    if isinstance(result, int):
        return int(result)
    return int(ExitStatus.OK)


def _user_error(cli: cli_context.CliContext, err: ModelopsError) -> int:
    _print_error(cli, err)
    return _failed(cli, err.message, err.hint, int(err.exit_status))


def _traceback(cli: cli_context.CliContext) -> None:
    if cli.debug:
        import traceback

        traceback.print_exc()


def _in_state_dir(cli: cli_context.CliContext, filename: object) -> bool:
    """Whether ``filename`` is in one of modelops' state dirs (so the hint about them applies)."""
    dirs = (cli.runtime.data_dir, cli.runtime.local_cloud_dir)
    path = Path(os.fsdecode(filename)) if isinstance(filename, str | bytes) else None
    return path is not None and any(path == d or d in path.parents for d in dirs)


def _internal_error(cli: cli_context.CliContext, exc: Exception) -> int:
    _traceback(cli)
    message = f"internal error: {type(exc).__name__}: {exc}"
    hint = "this is a bug in modelops; run again with --debug for the traceback and report it"
    sys.stderr.write(f"{message}\n  {hint}\n")
    return _failed(cli, message, hint, int(ExitStatus.ENVIRONMENT))


def _interrupted(cli: cli_context.CliContext) -> int:
    hint = INTERRUPTED_ROLLOUT_HINT if cli.command in _ROLLOUT_COMMANDS else INTERRUPTED_HINT
    return _user_error(cli, ModelopsError(INTERRUPTED_MESSAGE, hint=hint, exit_status=INTERRUPTED))


def main() -> NoReturn:
    sys.exit(run())
