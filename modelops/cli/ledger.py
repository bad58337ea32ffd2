"""CLI commands of the ledger concern: ``ledger verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.deploy.api import LedgerVerifyReport

ledger_app = typer.Typer(name="ledger", help="The ledger of releases, rollouts, tests and approvals.",
                         no_args_is_help=True, rich_markup_mode=None)


@ledger_app.command("verify")
def verify(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model (name or folder; default: every model).")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", metavar="ENV",
                                            help="Only this environment's ledger (default: every ledger).")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """Check that no entry was edited, deleted, reordered or slipped in behind modelops' back (exit 3 if one was)."""
    from modelops.deploy import LedgerVerifyRequest, verify_ledgers

    cli = cli_context.get(ctx)
    report = verify_ledgers(LedgerVerifyRequest(model, env), cli.runtime)
    cli.emit(report, lambda console: _render(console, report))
    error = report.first_error()
    if error is not None:  # the line a deploy of that model would refuse with, on stderr in every format
        cli.console.print(f"error: {error.message}", markup=False)
        cli.console.print(f"  hint: {error.hint}", markup=False)
    return int(report.exit_status)


def _render(console: Console, report: LedgerVerifyReport) -> None:
    from rich.text import Text

    for check in report.ledgers:
        v = check.verification
        text = Text(f"ledger {v.ledger} ({', '.join(check.environments)}): ")
        text.append("ok" if v.ok else "does not verify", style="green" if v.ok else "bold red")
        for chain in v.models:
            before = f", {chain.legacy} before the chain" if chain.legacy else ""
            head = f", head {chain.head.seq} {chain.head.hash[:16]}" if chain.head else ""
            line = f"\n  {chain.model}: {chain.entries} entries{before}{head}"
            text.append(line if chain.ok else f"\n  {chain.model}: {chain.problem.message if chain.problem else ''}",
                        style="" if chain.ok else "red")
        if not v.models:
            text.append("\n  no entries")
        console.print(text)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(ledger_app)
