"""CLI commands of the deploy concern: deploy, promote, approve, rollback, status, history, plan, diff,
sync, and ``invoke`` (one request to a deployed model)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelops.cli import context as cli_context
from modelops.cli.context import Output, OutputFormat
from modelops.cli.tables import MIN_PROSE_COLUMN, table_or_lines

if TYPE_CHECKING:
    from rich.console import Console

    from modelops.deploy.api import DeployResult, HistoryReport, Plan, StatusReport

BODY_AND_FILE = "give --body or --file, not both"
NO_BODY = "give the request with --body TEXT, --file PATH or --file - (stdin)"
CANNOT_READ = "cannot read {path}: {reason}"

_Env = Annotated[str, typer.Option("--env", "-e", metavar="ENV", help="The environment (pipelines/environments.yaml).")]
_Junit = Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write a JUnit XML report (a case per rollout, judged step and test run).")]
_Markdown = Annotated[Path | None, typer.Option("--markdown", metavar="FILE", help="Write a Markdown PR comment with the figures that decided.")]
_Html = Annotated[Path | None, typer.Option("--html", metavar="FILE", help="Write an HTML report with a chart per judged metric.")]
_Ref = Annotated[str | None, typer.Option("--ref", metavar="REF", help="The git ref to read the release from (default: HEAD).")]
_Replay = Annotated[Path | None, typer.Option(
    "--replay", metavar="FILE", help="Requests captured elsewhere (replay JSON lines or SageMaker Data Capture records) "
                                     "that a judged canary mirrors besides the model's own.")]


def deploy(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder (models/iris).")],
    env: Annotated[str | None, typer.Option("--env", "-e", metavar="ENV", help="Deploy to this environment (default: the first).")] = None,
    through: Annotated[str | None, typer.Option("--through", metavar="ENV", help="Deploy through every environment up to this one.")] = None,
    region: Annotated[list[str] | None, typer.Option(
        "--region", metavar="REGION", help="Only this region of --env (repeatable); same gates. A rollback here rolls back the "
                         "environment's other regions serving the release too, as the environments config says.")] = None,
    ref: _Ref = None,
    replay: _Replay = None,
    junit: _Junit = None,
    markdown: _Markdown = None,
    html: _Html = None,
    output: Output = OutputFormat.text,
) -> int:
    """Build, gate and roll a release out: one environment, or --through the promotion order."""
    from modelops.deploy import DeployRequest
    from modelops.deploy import deploy as run_deploy

    cli = cli_context.get(ctx)
    reports = _report_files(junit=junit, markdown=markdown, html=html)
    request = DeployRequest(model, environment=env, through=through, ref=ref, regions=tuple(region or ()),
                            replay=replay)
    result = run_deploy(request, cli.runtime)
    _render_deploy(cli, result, reports)
    return int(result.exit_status)


def promote(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release id (iris-0123456789).")],
    to: Annotated[str, typer.Option("--to", metavar="ENV", help="The environment to promote it to.")],
    replay: _Replay = None,
    junit: _Junit = None,
    markdown: _Markdown = None,
    html: _Html = None,
    output: Output = OutputFormat.text,
) -> int:
    """Deploy a release that passed the previous environment to the next one."""
    from modelops.deploy import PromoteRequest
    from modelops.deploy import promote as run_promote

    cli = cli_context.get(ctx)
    reports = _report_files(junit=junit, markdown=markdown, html=html)
    result = run_promote(PromoteRequest(release, to, replay=replay), cli.runtime)
    _render_deploy(cli, result, reports)
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
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (kept in the ledger with the block of the release).")] = "",
    output: Output = OutputFormat.text,
) -> int:
    """Return a model to the release that served before the current one, and block that one there."""
    from modelops.deploy import RollbackRequest
    from modelops.deploy import rollback as run_rollback

    cli = cli_context.get(ctx)
    result = run_rollback(RollbackRequest(model, env, region, reason), cli.runtime)
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
    cli.emit(report, lambda console: render_status(console, report))
    return 0


def history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: Annotated[str | None, typer.Option("--env", "-e", metavar="ENV", help="Only this environment.")] = None,
    region: Annotated[str | None, typer.Option("--region", metavar="REGION", help="Only this region.")] = None,
    release: Annotated[str | None, typer.Option("--release", metavar="RELEASE", help="Only this release.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="Only entries since WHEN: 30m, 2h, 7d, or a UTC date/time (2024-05-01T12:00).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", help="Only the last N entries (after the other filters).")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", metavar="KIND", help="Only entries of this kind (repeatable): release, build, step, test, approval, block, intent.")] = None,
    output: Output = OutputFormat.text,
) -> int:
    """Releases, rollout steps, tests, approvals, blocks and rollout intents of a model, oldest first."""
    from modelops.deploy import HistoryRequest
    from modelops.deploy import history as run_history

    cli = cli_context.get(ctx)
    request = HistoryRequest(model, environment=env, region=region, release=release, since=since, limit=limit,
                             kinds=tuple(kind or ()))
    report = run_history(request, cli.runtime)
    cli.emit(report, lambda console: console.print(history_lines(report) if report.entries
                                                   else f"no history for {report.model}"))
    return 0


def plan(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: _Env,
    ref: _Ref = None,
    output: Output = OutputFormat.text,
) -> int:
    """What a deploy would change in each region (nothing is changed); exit 1 when it would change something."""
    return _planned(ctx, model, env, ref, lambda console, result: render_plan(console, result))


def diff(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name or folder.")],
    env: _Env,
    ref: _Ref = None,
    output: Output = OutputFormat.text,
) -> int:
    """Field by field, what serves (the cloud) against what git at a ref asks for; exit 1 on a difference."""
    return _planned(ctx, model, env, ref, render_diff)


def _planned(ctx: typer.Context, model: str, env: str, ref: str | None,
             render: Callable[[Console, Plan], None]) -> int:
    """``plan`` and ``diff``: the same plan (observed against desired), rendered as a plan or a diff."""
    from modelops.deploy import PlanRequest
    from modelops.deploy import plan as run_plan

    cli = cli_context.get(ctx)
    result = run_plan(PlanRequest(model, env, ref), cli.runtime)
    cli.emit(result, lambda console: render(console, result))
    return int(result.exit_status)


def sync(
    ctx: typer.Context,
    env: _Env,
    ref: _Ref = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--check", help="Report drift and degraded endpoints only; change nothing (exit 1 on either).")] = False,
    output: Output = OutputFormat.text,
) -> int:
    """Reconcile every model at a git ref with what an environment runs: repair drift, report health."""
    from modelops.deploy import SyncRequest
    from modelops.deploy import sync as run_sync

    cli = cli_context.get(ctx)
    result = run_sync(SyncRequest(env, ref, dry_run), cli.runtime)

    def text(console: Console) -> None:
        from rich.text import Text

        for p in result.plans:
            render_plan(console, p, blocked=False)
        for d in result.deployed:
            console.print(Text(f"{d.model}: {d.release} {d.result}" + (f" ({d.message})" if d.message else "")))
        for line in result.degraded:
            console.print(Text("degraded: ", style="yellow") + Text(line))
        for err in result.errors:
            console.print(Text("error: ", style="red") + Text(err))
        console.print(Text(f"{env}: {len(result.drift)} of {len(result.plans)} model(s) drifted"
                           + (f", {len(result.degraded)} endpoint(s) degraded" if result.degraded else "")))

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


def _report_files(**files: Path | None) -> dict[str, Path]:
    """The report files asked for, by format (``deployrun.RENDERERS``'s keys), each checked before
    the deploy runs: a bad path must not cost a rollout."""
    from modelops.report.files import check_target

    wanted = {fmt: path for fmt, path in files.items() if path is not None}
    for path in wanted.values():
        check_target(path)
    return wanted


def _render_deploy(cli: cli_context.CliContext, result: DeployResult, reports: dict[str, Path] | None = None) -> None:
    """Write the report files asked for, then show the result (the JSON document, or the summary
    table, each failed check of the tests with its figures, and the verdict line)."""
    if reports:
        from modelops.report.deployrun import RENDERERS
        from modelops.report.files import write_text

        for fmt, path in reports.items():
            write_text(path, RENDERERS[fmt](result))

    def text(console: Console) -> None:
        from rich.text import Text

        render_deploy(console, result)
        for tests in result.tests:
            for check in tests.failed_checks:
                console.print(Text("FAILED ", style="bold red") + Text(f"{tests.environment} ", style="bold")
                              + Text(check.message))
        style = {"succeeded": "green", "rolled_back": "yellow"}.get(result.result, "red")
        console.print(Text(result.result.replace("_", " "), style=style)
                      + Text(f": {result.message}" if result.message else ""))

    cli.emit(result, text)


def render_deploy(console: Console, result: DeployResult) -> None:
    """The deploy summary: one row per region (a table when it fits, else one line each). The endpoint
    (always ``<model>-<env>``) is left to ``--output json``, and a success's detail ("serving
    <release>") would only repeat the serving column."""
    rows = []
    for d in result.deployments:
        detail = "" if d.serving and d.detail == f"serving {d.serving}" else d.detail
        rows.append((d.environment, d.region, d.status, d.serving or "-", detail))
    table_or_lines(console, f"{result.model} {result.release}", ("env", "region", "status", "serving", "detail"),
                   rows, lambda r: f"{r[0]}/{r[1]}: {r[2]}, serving {r[3]}" + (f": {r[4]}" if r[4] else ""),
                   min_last=MIN_PROSE_COLUMN)


def render_status(console: Console, report: StatusReport) -> None:
    """``status``: a row per endpoint (a table when it fits, else one line each), then a line per
    endpoint with its health and the figures it rests on. The model is named in the title when there
    is one; the endpoint (always ``<model>-<env>``) is left to ``--output json``; the last step drops
    what its row already says."""
    from rich.text import Text

    if not report.endpoints:
        console.print("no endpoints deployed")
        return
    models = sorted({e.model for e in report.endpoints})
    several = len(models) > 1
    title = "modelops status" + ("" if several or not models else f": {models[0]}")
    header = (*(("model",) if several else ()), "env", "region", "release", "status", "weights", "health", "last step")
    rows = []
    for e in report.endpoints:
        weights = ", ".join(f"{w.fleet} {w.weight:g}" for w in e.weights) or "-"
        rows.append((*((e.model,) if several else ()), e.environment, e.region, e.release_text, e.status, weights,
                     e.health.state, _last_step(e.last_step, e.release)))

    def line(r: Sequence[str]) -> str:
        head = f"{r[0]} " if several else ""
        r = r[1:] if several else r
        return f"{head}{r[0]}/{r[1]}: {r[3]}, {r[5]}, release {r[2]}, weights {r[4]}, last step: {r[6]}"

    table_or_lines(console, title, header, rows, line)
    for e in report.endpoints:
        notes = [*e.health.reasons] if e.health.state not in ("healthy", "-") else []
        if e.health.state == "healthy":
            notes.append(e.health.summary)
        if e.release_tag and e.release_tag != e.release:
            notes.append(f"its tag says {e.release_tag}")
        if e.failure_reason:
            notes.append(f"last update: {e.failure_reason}")
        if notes:
            where = f"{e.model} {e.environment}/{e.region}" if several else f"{e.environment}/{e.region}"
            console.print(Text(f"  {where}: {e.health.state}: " + "; ".join(notes)))


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


def render_plan(console: Console, p: Plan, *, blocked: bool = True) -> None:
    """``plan``: per region a line with the action and what serves, then one line per drift (what
    changes), so nothing is folded or cut at any width; a blocked release's one-line refusal after
    it (``blocked``; sync prints it among its errors)."""
    from rich.text import Text

    console.print(Text(f"plan: {p.model} -> {p.environment} ({p.release})", style="bold"))
    for r in p.regions:
        serving = "nothing" if r.status == "absent" else (r.deployed_release or "unknown")
        action = "in sync" if r.action == "none" else r.action
        console.print(Text(f"{r.environment}/{r.region}: {action} (serving {serving}, {r.status}, {r.health.state})"))
        for change in r.changes:
            console.print(Text(f"  {change}"))
    if blocked and p.blocked:
        console.print(Text("refused: ", style="red") + Text(p.blocked))


def render_diff(console: Console, p: Plan) -> None:
    """``diff``: per region a heading, then one line per field that differs (``field: observed ->
    desired [repair]``), like ``argocd app diff``; lines, whatever the width, so nothing is cut."""
    from rich.text import Text

    for r in p.regions:
        console.print(Text(f"{p.model} {r.environment}/{r.region} ({r.endpoint}, {r.status}): {r.action}",
                           style="bold"))
        if not r.diff:
            console.print(Text("  no differences"))
        for d in r.diff:
            style = "dim" if not d.is_drift else ""
            console.print(Text(f"  {d.field}: ", style=style) + Text(d.observed if d.observed is not None else "(none)",
                                                                     style=style or "red")
                          + Text(" -> ", style=style)
                          + Text(d.desired if d.desired is not None else "(none)", style=style or "green")
                          + Text(f"  [{d.repair}]", style="dim"))
    if p.blocked:
        console.print(Text("refused: ", style="red") + Text(p.blocked))


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
    if kind == "block":
        verb = "blocked" if entry.get("blocked") else "unblocked"
        return f"{verb} by {entry.get('by', '')}" + (f": {entry['reason']}" if entry.get("reason") else "")
    if kind == "intent":
        return f"{entry.get('action', '')} asked by {entry.get('by', '')}" + (
            f": {entry['reason']}" if entry.get("reason") else "")
    return ""


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    for name, command in (("deploy", deploy), ("promote", promote), ("approve", approve), ("rollback", rollback),
                          ("status", status), ("history", history), ("plan", plan), ("diff", diff), ("sync", sync),
                          ("invoke", invoke), ("gc", gc)):
        app.command(name)(command)
