"""CLI commands of the deploy concern: deploy, promote, approve, rollback, status, history, plan, sync, and
``invoke`` (one request to a deployed model)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.deploy.api import DeployResult, HistoryReport, Plan, StatusReport

BODY_AND_FILE = "give --body or --file, not both"
NO_BODY = "give the request with --body TEXT, --file PATH or --file - (stdin)"
CANNOT_READ = "cannot read {path}: {reason}"

_Env = Annotated[str, typer.Option("--env", "-e", metavar="ENV", help="The environment (pipelines/environments.yaml).")]
_Ref = Annotated[str | None, typer.Option("--ref", metavar="REF", help="The git ref to read the release from (default: HEAD).")]


def deploy(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder (models/iris).")],
    env: Annotated[str | None, typer.Option("--env", "-e", metavar="ENV", help="Deploy to this environment (default: the first).")] = None,
    through: Annotated[str | None, typer.Option("--through", metavar="ENV", help="Deploy through every environment up to this one.")] = None,
    region: Annotated[list[str] | None, typer.Option(
        "--region", metavar="REGION", help="Only this region of --env (repeatable); same gates. A rollback here rolls back the "
                         "environment's other regions serving the release too, as the environments config says.")] = None,
    ref: _Ref = None,
    output: Output = OutputFormat.text,
) -> int:
    """Build, gate and roll a release out: one environment, or --through the promotion order."""
    from modelops.deploy import DeployRequest
    from modelops.deploy import deploy as run_deploy

    cli = cli_context.get(ctx)
    request = DeployRequest(model, environment=env, through=through, ref=ref, regions=tuple(region or ()))
    result = run_deploy(request, cli.runtime)
    _render_deploy(cli, result)
    return int(result.exit_status)


def promote(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release id (iris-0123456789).")],
    to: Annotated[str, typer.Option("--to", metavar="ENV", help="The environment to promote it to.")],
    output: Output = OutputFormat.text,
) -> int:
    """Deploy a release that passed the previous environment to the next one."""
    from modelops.deploy import PromoteRequest
    from modelops.deploy import promote as run_promote

    cli = cli_context.get(ctx)
    result = run_promote(PromoteRequest(release, to), cli.runtime)
    _render_deploy(cli, result)
    return int(result.exit_status)


def approve(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release id to approve.")],
    env: _Env,
    comment: Annotated[str, typer.Option("--comment", metavar="TEXT", help="Why (kept in the ledger).")] = "",
    output: Output = OutputFormat.text,
) -> int:
    """Approve a release for an environment (recorded with who and when)."""
    from modelops.deploy import ApproveRequest
    from modelops.deploy import approve as run_approve

    cli = cli_context.get(ctx)
    result = run_approve(ApproveRequest(release, env, comment), cli.runtime)
    again = "" if result.recorded else " (already approved by them)"
    cli.emit(result, lambda console: console.print(f"{result.release} approved for {result.environment} by "
                                                   f"{result.by}{again}"))
    return 0


def rollback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: _Env,
    region: Annotated[str | None, typer.Option("--region", metavar="REGION", help="Only this region.")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """Return a model to the release that served before the current one."""
    from modelops.deploy import RollbackRequest
    from modelops.deploy import rollback as run_rollback

    cli = cli_context.get(ctx)
    result = run_rollback(RollbackRequest(model, env, region), cli.runtime)
    _render_deploy(cli, result)
    return int(result.exit_status)


def status(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Model name or folder (default: every model).")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """What serves where: environment x region -> release, traffic weights, health."""
    from modelops.deploy import StatusRequest
    from modelops.deploy import status as run_status

    cli = cli_context.get(ctx)
    report = run_status(StatusRequest(model), cli.runtime)
    cli.emit(report, lambda console: _print_table(console, status_table(report), empty=not report.endpoints,
                                                  what="no endpoints deployed"))
    return 0


def history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    output: Output = OutputFormat.text,
) -> int:
    """Releases, rollout steps, tests and approvals of a model, oldest first."""
    from modelops.deploy import HistoryRequest
    from modelops.deploy import history as run_history

    cli = cli_context.get(ctx)
    report = run_history(HistoryRequest(model), cli.runtime)
    cli.emit(report, lambda console: _print_table(console, history_lines(report), empty=not report.entries,
                                                  what=f"no history for {report.model}"))
    return 0


def plan(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: _Env,
    ref: _Ref = None,
    output: Output = OutputFormat.text,
) -> int:
    """What a deploy would change in each region (nothing is changed)."""
    from modelops.deploy import PlanRequest
    from modelops.deploy import plan as run_plan

    cli = cli_context.get(ctx)
    result = run_plan(PlanRequest(model, env, ref), cli.runtime)
    cli.emit(result, lambda console: _render_plan(console, result))
    return 0


def sync(
    ctx: typer.Context,
    env: _Env,
    ref: _Ref = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report drift only; deploy nothing.")] = False,
    output: Output = OutputFormat.text,
) -> int:
    """Reconcile every model at a git ref with what an environment runs; report drift."""
    from modelops.deploy import SyncRequest
    from modelops.deploy import sync as run_sync

    cli = cli_context.get(ctx)
    result = run_sync(SyncRequest(env, ref, dry_run), cli.runtime)

    def text(console: Console) -> None:
        for p in result.plans:
            _render_plan(console, p)
        for d in result.deployed:
            console.print(f"{d.model}: {d.release} {d.result}" + (f" ({d.message})" if d.message else ""))
        for err in result.errors:
            console.print(f"[red]error:[/red] {err}")
        console.print(f"{env}: {len(result.drift)} of {len(result.plans)} model(s) drifted")

    cli.emit(result, text)
    return int(result.exit_status)


def invoke(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: _Env,
    region: Annotated[str | None, typer.Option("--region", metavar="REGION", help="The region (default: the environment's first).")] = None,
    body: Annotated[str | None, typer.Option("--body", metavar="BODY", help="The request body.")] = None,
    file: Annotated[Path | None, typer.Option("--file", metavar="FILE", help="Read the request body from a file (- for stdin).")] = None,
    content_type: Annotated[str, typer.Option("--content-type", metavar="TYPE")] = "application/json",
    accept: Annotated[str, typer.Option("--accept", metavar="TYPE")] = "application/json",
    output: Output = OutputFormat.text,
) -> int:
    """Send one request to a model's endpoint and print the answer."""
    from modelops.verify.invoke import InvokeRequest, invoke_model

    cli = cli_context.get(ctx)
    result = invoke_model(InvokeRequest(model, env, _body(body, file), region, content_type, accept), cli.runtime)

    def text(console: Console) -> None:
        sys.stdout.write(result.body.decode("utf-8", "replace").rstrip("\n") + "\n")  # the answer is the output
        console.print(f"{result.endpoint} ({result.region}): {result.describe()}")

    cli.emit(result, text)
    return 0 if result.ok else 1


def gc(
    ctx: typer.Context,
    keep: Annotated[int, typer.Option("--keep", metavar="N", help="Keep each model's last N releases (and what serves anywhere).")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be freed; free nothing.")] = False,
    min_age: Annotated[float, typer.Option("--min-age", metavar="SECONDS",
                                           help="Keep local files younger than this (a build under way has not recorded its release yet).")] = 3600.0,
    output: Output = OutputFormat.text,
) -> int:
    """Free old releases: their SageMaker models and endpoint configs, local images, model data, build cache."""
    from modelops.deploy.gc import GcRequest
    from modelops.deploy.gc import gc as run_gc

    cli = cli_context.get(ctx)
    result = run_gc(GcRequest(keep=keep, dry_run=dry_run, min_age_seconds=min_age), cli.runtime)

    def text(console: Console) -> None:
        from modelops.sizes import human_size

        verb = "would free" if result.dry_run else "freed"
        for f in result.freed:
            console.print(f"{verb} {f.kind} {f.name} ({f.where}" + (f", {human_size(f.bytes)})" if f.bytes else ")"),
                          markup=False, highlight=False)
        for line in result.skipped:
            console.print(line, markup=False)
        kept = sum(len(r) for r in result.kept.values())
        console.print(f"{verb} {human_size(result.bytes)} in {len(result.freed)} item(s); kept {kept} release(s) "
                      f"of {len(result.kept)} model(s)")

    cli.emit(result, text)
    return 0


# -- rendering -------------------------------------------------------------------------------------


def _body(body: str | None, file: Path | None) -> bytes:
    from modelops.errors import InputError

    if body is not None and file is not None:
        raise InputError(BODY_AND_FILE)
    if body is not None:
        return body.encode()
    if file is None:
        raise InputError(NO_BODY)
    if str(file) == "-":
        return sys.stdin.buffer.read()
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InputError(CANNOT_READ.format(path=file, reason=exc.strerror or exc)) from exc


def _render_deploy(cli: cli_context.CliContext, result: DeployResult) -> None:
    def text(console: Console) -> None:
        console.print(deploy_table(result))
        style = {"succeeded": "green", "rolled_back": "yellow"}.get(result.result, "red")
        line = f"[{style}]{result.result.replace('_', ' ')}[/{style}]"
        console.print(line + (f": {result.message}" if result.message else ""))

    cli.emit(result, text)


def deploy_table(result: DeployResult) -> Any:
    """The deploy summary: one row per region. The endpoint (always ``<model>-<env>``) is left to
    ``--output json``, and a success's detail ("serving <release>") would only repeat the serving column,
    so the table fits 100 columns with release ids whole."""
    table = _table(f"{result.model} {result.release}")
    for name in ("env", "region", "status"):
        table.add_column(name)
    table.add_column("serving", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for d in result.deployments:
        detail = "" if d.serving and d.detail == f"serving {d.serving}" else d.detail
        table.add_row(d.environment, d.region, d.status, d.serving or "-", detail)
    return table


def status_table(report: StatusReport) -> Any:
    """``status`` as a table: the model is named in the title when there is one, the endpoint (always
    ``<model>-<env>``) is left to ``--output json``, and the last step drops what its row already says."""
    models = sorted({e.model for e in report.endpoints})
    several = len(models) > 1
    table = _table("modelops status" + ("" if several or not models else f": {models[0]}"))
    if several:
        table.add_column("model", no_wrap=True)
    for name in ("env", "region"):
        table.add_column(name)
    table.add_column("release", no_wrap=True)
    for name in ("status", "weights", "health"):
        table.add_column(name)
    table.add_column("last step", overflow="fold")  # may name another release: wrapped whole, never cut
    for e in report.endpoints:
        weights = ", ".join(f"{w.fleet} {w.weight:g}" for w in e.weights) or "-"
        row = [e.environment, e.region, e.release or "-", e.status, weights, e.health, _last_step(e.last_step, e.release)]
        table.add_row(*([e.model] if several else []), *row)
    return table


def history_lines(report: HistoryReport) -> Any:
    """``history`` as a log: one line per entry, its leading columns aligned and the last ("what":
    image URIs, step details, test figures) whole at the end of the line, never folded into a narrow
    column (a CI log is 80 columns; a terminal wraps the line itself)."""
    from rich.text import Text

    rows = [(_when(e.get("at", 0.0)), e["entry"], e.get("release", "") or "-",
             "/".join(p for p in (e.get("environment"), e.get("region")) if p) or "-", _what(e))
            for e in report.entries]
    header = ("time (UTC)", "kind", "release", "where", "what")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    text = Text(f"history of {report.model}\n")
    text.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  what", style="bold")
    for row in rows:
        text.append("\n" + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    return text


def _table(title: str) -> Any:
    from rich.table import Table

    # No box, like validate's and build's tables: borders cost two columns per column at 80-100 wide.
    return Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)


def _last_step(text: str | None, release: str | None) -> str:
    """``"<release> <step> (<status>)"`` without the release when the row shows it, and without the
    status when it only repeats the step (``succeeded (succeeded)``)."""
    if not text:
        return "-"
    if release and text.startswith(release + " "):
        text = text[len(release) + 1:]
    step, sep, status = text.rpartition(" (")
    if sep and status == f"{step.rsplit(' ', 1)[-1]})":
        return step
    return text


def _render_plan(console: Console, p: Plan) -> None:
    table = _table(f"plan: {p.model} -> {p.environment} ({p.release})")
    for name in ("region", "endpoint"):
        table.add_column(name)
    table.add_column("deployed", no_wrap=True)
    table.add_column("action")
    table.add_column("changes", overflow="fold")
    for r in p.regions:
        table.add_row(r.region, r.endpoint, r.deployed_release or "-", r.action, "; ".join(r.changes) or "in sync")
    console.print(table)


def _print_table(console: Console, table: Any, *, empty: bool, what: str) -> None:
    if empty:
        console.print(what)
    else:
        console.print(table)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _what(entry: dict[str, Any]) -> str:
    kind = entry["entry"]  # the record type (a test record's own ``kind`` names the test kind)
    if kind == "step":  # "succeeded", not "succeeded (succeeded)"
        step, status = entry["step"], entry["status"]
        text = step if status == step else f"{step} ({status})"
        return text + (f": {entry['detail']}" if entry.get("detail") else "")
    if kind == "test":  # the region has its own column
        return (f"{entry.get('kind', '')} {'passed' if entry.get('passed') else 'FAILED'}: "
                f"{entry.get('summary', '')}").rstrip(": ")
    if kind == "approval":  # who, and where that came from (entries from before it was kept: who only)
        from modelops.identity import Identity

        who = str(Identity(entry["by"], entry["source"], bool(entry.get("authenticated")))) if entry.get(
            "source") else entry["by"]
        return f"approved by {who}" + (f": {entry['comment']}" if entry.get("comment") else "")
    if kind == "release":
        author = f" (author {entry['author']})" if entry.get("author") else ""
        return f"built from {str(entry['commit'])[:12]}{author} by {entry.get('created_by', '')}"
    if kind == "build":
        return f"image {entry['image_uri']}"
    return ""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    for name, command in (("deploy", deploy), ("promote", promote), ("approve", approve), ("rollback", rollback),
                          ("status", status), ("history", history), ("plan", plan), ("sync", sync),
                          ("invoke", invoke), ("gc", gc)):
        app.command(name)(command)
