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

INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
INTERRUPTED_MESSAGE = "interrupted (Ctrl-C)"
INTERRUPTED_HINT = "run the same command again"
INTERRUPTED_ROLLOUT_HINT = "run the same command again: it resumes from what the ledger and the cloud say"
# Commands that roll endpoints out (reconcile loops: a re-run converges).
_ROLLOUT_COMMANDS = frozenset({"deploy", "promote", "rollback", "sync"})

CANNOT_WRITE = "cannot use {path}: {reason}"
CANNOT_WRITE_HINT = ("modelops keeps its state in MODELOPS_DATA_DIR (or --data-dir) and the local cloud's in "
                     "MODELOPS_LOCAL_DATA_DIR: point them at a writable directory")
DISK_FULL = "cannot write {path}: the disk is full"
DISK_FULL_HINT = "free space on that disk, or point MODELOPS_DATA_DIR (or --data-dir) at a directory on another one"
# What an unwritable or full state directory raises, wherever modelops first writes to it.
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT})

# Each module registers its own commands; each owns one concern (see DESIGN.md).
_COMMAND_MODULES = ("config", "local", "build", "deploy", "test", "ci")

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
    from rich.console import Console

    from modelops.cli.progress import RichProgress
    from modelops.runtime import Runtime

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    runtime = Runtime.from_environment(progress=RichProgress(console), verbose=verbose)
    if data_dir is not None:
        from dataclasses import replace

        runtime = replace(runtime, data_dir=data_dir.expanduser().resolve())
    ctx.obj = cli_context.CliContext(console=console, runtime=runtime, verbose=verbose, debug=debug)
    cli_context.run_before_commands()


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"modelops.cli.{name}").register(app)


_register_commands()


def _print_error(err: ModelopsError) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(Text("error: ", style="bold red") + Text(err.message))
    if err.hint:
        console.print(Text("  hint: ", style="yellow") + Text(err.hint))


def _wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--output json`` (before any ``--``)."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg in ("--output=json", "-ojson") or (arg in ("--output", "-o") and args[i + 1:i + 2] == ["json"]):
            return True
    return False


def _failed(args: Sequence[str], message: str, hint: str | None, status: int) -> int:
    """Return ``status``; with ``--output json``, a failure is still one JSON document on stdout
    (``{"error": {"message", "hint", "exit_status"}}``, unless the command printed its own first), so a
    pipeline that parses stdout reads why instead of failing on empty input."""
    if _wants_json(args) and not cli_context.emitted():
        cli_context.emit_document({"error": {"message": message, "hint": hint, "exit_status": status}})
    return status


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in this process and return its exit status (tests call this directly)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MODELOPS_DEBUG") == "1"
    cli_context.reset_emitted()
    try:
        result = app(args=args, prog_name="modelops", standalone_mode=False)
    except ModelopsError as err:
        if debug:
            import traceback

            traceback.print_exc()
        _print_error(err)
        return _failed(args, err.message, err.hint, int(err.exit_status))
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        return _failed(args, "aborted", None, 130)
    except typer.TyperException as exc:  # click's usage errors, as typer vendors them
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"error: {exc}\n")
        format_message = getattr(exc, "format_message", None)
        message = format_message() if format_message is not None else str(exc)
        return _failed(args, message, None, int(getattr(exc, "exit_code", ExitStatus.BAD_INPUT)))
    except KeyboardInterrupt:
        return _interrupted(args)
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)  # a write() that fails so names no file
        if exc.errno not in _UNWRITABLE or not (exc.filename or full):
            return _internal_error(args, exc, debug)
        if debug:
            import traceback

            traceback.print_exc()
        if full:
            unwritable = ModelopsError(DISK_FULL.format(path=exc.filename or "modelops' state"),
                                       hint=DISK_FULL_HINT, exit_status=ExitStatus.ENVIRONMENT)
        else:
            unwritable = ModelopsError(CANNOT_WRITE.format(path=exc.filename, reason=exc.strerror),
                                       hint=CANNOT_WRITE_HINT if _in_state_dir(args, exc.filename) else None,
                                       exit_status=ExitStatus.ENVIRONMENT)
        _print_error(unwritable)
        return _failed(args, unwritable.message, unwritable.hint, int(ExitStatus.ENVIRONMENT))
    except Exception as exc:  # a bug in modelops, not the user's to fix
        return _internal_error(args, exc, debug)
    if result == INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130) and returns its code
        return _interrupted(args)
    if isinstance(result, int):
        return int(result)
    return int(ExitStatus.OK)


def _in_state_dir(args: Sequence[str], filename: object) -> bool:
    """Whether ``filename`` is in one of modelops' state dirs (so the hint about them applies)."""
    from modelops.runtime import default_data_dir

    if "--data-dir" in args or any(a.startswith("--data-dir=") for a in args):
        return True
    dirs = [default_data_dir(os.environ), Path(os.environ.get("MODELOPS_LOCAL_DATA_DIR") or default_data_dir(os.environ))]
    path = Path(os.fsdecode(filename)) if isinstance(filename, str | bytes) else None
    return path is not None and any(path == d or d in path.parents for d in dirs)


def _internal_error(args: Sequence[str], exc: Exception, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    sys.stderr.write(
        f"internal error: {type(exc).__name__}: {exc}\n"
        "  this is a bug in modelops; run again with --debug for the traceback and report it\n"
    )
    return _failed(args, f"internal error: {type(exc).__name__}: {exc}",
                   "this is a bug in modelops; run again with --debug for the traceback and report it",
                   int(ExitStatus.ENVIRONMENT))


def _interrupted(args: Sequence[str]) -> int:
    # The command: the first word that is neither an option nor the value of the root's --data-dir.
    words = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "--data-dir")]
    command = words[0] if words else ""
    hint = INTERRUPTED_ROLLOUT_HINT if command in _ROLLOUT_COMMANDS else INTERRUPTED_HINT
    _print_error(ModelopsError(INTERRUPTED_MESSAGE, hint=hint))
    return _failed(args, INTERRUPTED_MESSAGE, hint, INTERRUPTED)


def main() -> NoReturn:
    sys.exit(run())
