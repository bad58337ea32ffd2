"""Looking before (and instead of) changing: ``status`` (what serves where, and how it is doing),
``history`` (what the ledgers hold), ``verify_ledgers`` (whether their history was changed behind
modelops' back), ``plan``/``diff`` (what a deploy would change, field by field) and ``sync`` (repair
what drifted). status, plan and sync read the observed state (:mod:`~modelops.deploy.observed`) and
compare it with the desired state (:mod:`~modelops.deploy.drift`); none trusts tags or the ledger's
view of what serves."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelops.config import Environment, ModelConfig, check_runs, effective, load_model
from modelops.deploy import drift, gates, specs
from modelops.deploy.api import (
    DeployRequest,
    DeployResult,
    EndpointState,
    HistoryReport,
    HistoryRequest,
    LedgerCheck,
    LedgerVerifyReport,
    LedgerVerifyRequest,
    Plan,
    PlanRequest,
    RegionPlan,
    StatusReport,
    StatusRequest,
    SyncRequest,
    SyncResult,
    Weight,
)
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.health import DEGRADED, UNHEALTHY
from modelops.deploy.machine import BUSY
from modelops.deploy.observed import ObservedRegion, observe_region
from modelops.deploy.repo import (
    distinct_ledgers,
    ledger_key,
    loadable_models,
    models_named,
    open_repo,
    opened,
)
from modelops.deploy.review import awaiting_approval
from modelops.deploy.service import deploy, desired_release
from modelops.errors import ExitStatus, InputError, ModelopsError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.ledger import Ledger

BAD_SINCE = "--since {value}: not a duration (45s, 30m, 2h, 7d, 2w) or a UTC date or time (2024-05-01, 2024-05-01T12:00)"
BAD_KIND = "--kind {value}: not a kind of ledger entry ({kinds})"
BAD_LIMIT = "--limit {value}: give a number of entries above 0"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def status(request: StatusRequest, runtime: Runtime) -> StatusReport:
    """Every endpoint of a model (or of every model) per environment and region, as the cloud says,
    with its health from live signals; and the releases awaiting an approval, with their answer diff."""
    repo = open_repo(runtime)
    models = models_named(repo, request.model)
    rows: list[EndpointState] = []
    for env in repo.envs.in_promotion_order() or tuple(repo.envs):
        candidates = [m for m in models if m.supports_cloud(env.cloud)]
        if not candidates:
            continue
        with opened(env, runtime) as (clients, ledger):
            for model in candidates:
                releases = [r.release for r in ledger.releases(model.name)]
                for region in env.regions:
                    state = ledger.current(model.name, env.name, region)
                    observed = observe_region(RegionCloud(clients, region), model, env,
                                              releases=[*releases, *([state.release] if state and state.release else [])],
                                              now=runtime.clock.now())
                    if observed.endpoint is None and request.model is None:
                        continue
                    last = state.last_step if state else None
                    rows.append(endpoint_state(observed, f"{last.release} {last.step} ({last.status})" if last else None))
    return StatusReport(tuple(rows), awaiting_approval(repo, models, runtime))


def endpoint_state(observed: ObservedRegion, last_step: str | None) -> EndpointState:
    ep = observed.endpoint
    weights = tuple(Weight(v.fleet, v.config, v.name, v.current_weight, v.desired_weight, v.current_instances,
                           v.desired_instances) for v in observed.variants)
    return EndpointState(observed.model, observed.environment, observed.region, observed.endpoint_name,
                         observed.release, observed.status, weights, last_step, ep.failure_reason if ep else None,
                         observed.health, observed.release_tag, observed.config_name)


def history(request: HistoryRequest, runtime: Runtime) -> HistoryReport:
    """What the ledger(s) hold about a model, oldest first, as ``request`` filters it."""
    from modelops.ledger.records import ENTRY_KINDS

    for kind in request.kinds:
        if kind not in ENTRY_KINDS:
            raise InputError(BAD_KIND.format(value=kind, kinds=", ".join(ENTRY_KINDS)))
    if request.limit is not None and request.limit < 1:
        raise InputError(BAD_LIMIT.format(value=request.limit))
    since = parse_since(request.since, runtime.clock.now()) if request.since else None
    repo = open_repo(runtime)
    if request.environment is not None:
        repo.envs.get(request.environment)  # an unknown environment is an error, not an empty history
    model = load_model(repo.ws, request.model)
    entries: list[dict[str, Any]] = []
    for env in distinct_ledgers(repo):
        with opened(env, runtime) as (_, ledger):
            entries.extend(e.to_dict() for e in ledger.history(model.name, environment=request.environment,
                                                               region=request.region, release=request.release)
                           if (not request.kinds or e.KIND in request.kinds) and (since is None or e.at >= since))
    entries.sort(key=lambda e: e.get("at", 0.0))
    if request.limit is not None:
        entries = entries[-request.limit:]
    return HistoryReport(model.name, tuple(entries))


def parse_since(value: str, now: float) -> float:
    """``--since``: a duration back from ``now`` (``30m``) or a UTC date/time; seconds since the epoch."""
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(BAD_SINCE.format(value=value)) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def verify_ledgers(request: LedgerVerifyRequest, runtime: Runtime) -> LedgerVerifyReport:
    """Check the hash chains of the ledgers (see :mod:`modelops.ledger.chain`): every distinct ledger
    of the environments, or ``request.environment``'s; every model in them, or ``request.model``'s
    (a model whose folder is gone is named as its history names it)."""
    repo = open_repo(runtime)
    model = request.model
    if model is not None:
        try:
            model = load_model(repo.ws, model).name
        except InputError:
            if "/" in model:  # a folder that does not hold a model: say so, as other commands do
                raise
    envs = (repo.envs.get(request.environment),) if request.environment else tuple(distinct_ledgers(repo))
    checks = []
    for env in envs:
        sharing = tuple(e.name for e in repo.envs.in_promotion_order() or tuple(repo.envs)
                        if ledger_key(e) == ledger_key(env))
        runtime.progress.step(f"verifying the ledger of {', '.join(sharing)}")
        with opened(env, runtime) as (_, ledger):
            checks.append(LedgerCheck(sharing, ledger.verify(model)))
    return LedgerVerifyReport(tuple(checks))


def plan(request: PlanRequest, runtime: Runtime) -> Plan:
    """What deploying ``model`` at ``ref`` to ``environment`` would change, per region and field.
    Builds nothing that is not cached already beyond the release's digest; changes nothing. A release
    blocked in the environment is planned, with ``blocked`` saying why nothing will roll it out."""
    repo = open_repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model, ref=request.ref)
    check_runs(model, env)
    # What deploy would refuse of the effective rollout (validate reports it as findings first).
    config = effective(model, env)
    specs.validate_policy(config.rollout, environment=env.name, instance_count=config.resources.instance_count)
    with opened(env, runtime) as (clients, ledger):
        release, commit = desired_release(model, env, request.ref, runtime)
        block = ledger.block(release, env.name)
        releases = [release, *(r.release for r in ledger.releases(model.name))]
        regions = tuple(plan_region(desired_target(model, env, region, release, commit, ledger),
                                    observe_region(RegionCloud(clients, region), model, env, releases=releases,
                                                   now=runtime.clock.now()))
                        for region in env.regions)
    return Plan(model.name, env.name, release, commit, regions, gates.blocked_message(block) if block else None)


def desired_target(model: ModelConfig, env: Environment, region: str, release: str, commit: str | None,
                   ledger: Ledger) -> specs.RegionTarget:
    """The desired state of one region: the release a build of the model at the ref would be, with its
    image and model data where that release was built before (else a deploy builds them)."""
    build = next((b for b in ledger.builds(release, env.name) if b.region == region), None)
    record = ledger.release(release)
    return specs.RegionTarget(model=model, environment=env, region=region, release=release, commit=commit or "",
                              config_digest=record.config_digest if record else "",
                              image_uri=build.image_uri if build else "",
                              model_data_url=build.model_data_url if build else None)


def plan_region(target: specs.RegionTarget, observed: ObservedRegion) -> RegionPlan:
    """The plan of one region: its differences and the action a deploy (or sync) takes for them."""
    diffs = drift.region_diff(target, observed)
    changes = tuple(d.text for d in diffs if d.is_drift)
    if observed.endpoint is None:
        action = "create"
        changes = (f"create endpoint {target.endpoint_name} serving {target.release} on {target.instance_count} x "
                   f"{target.instance_type}", *changes[1:])
    elif observed.status in BUSY:
        action = "busy"
        changes = (f"endpoint is {observed.status}; a rollout is under way", *changes)
    elif any(d.repair == drift.ROLLOUT for d in diffs):
        action = "update"
    elif drift.is_drifted(diffs):
        action = "repair"
    else:
        action = "none"
    return RegionPlan(target.environment.name, target.region, target.endpoint_name, observed.release,
                      target.release, action, changes, diffs, observed.health, observed.status)


def sync(request: SyncRequest, runtime: Runtime) -> SyncResult:
    """Reconcile every model at ``ref`` with what ``environment`` runs: repair every drift (a rollout
    for another endpoint config, in place for counts, weights, alarms, autoscaling); report degraded
    endpoints and refuse blocked releases."""
    repo = open_repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    plans: list[Plan] = []
    deployed: list[DeployResult] = []
    degraded: list[str] = []
    commit = repo.ws.at(request.ref).head_commit
    # A model whose config does not load is an error, not left out: a drift check that skipped it
    # would report the environment in sync while nobody can reconcile that model.
    models, errors = loadable_models(repo, request.ref)
    worst = ExitStatus.BAD_INPUT if errors else ExitStatus.GATE_FAILED
    for model in models:
        if not model.supports_cloud(env.cloud):
            continue
        try:
            p = plan(PlanRequest(model.folder, env.name, request.ref), runtime)
        except ModelopsError as err:
            errors.append(f"{model.name}: {err.message}")
            worst = max(worst, err.exit_status)
            continue
        plans.append(p)
        degraded.extend(f"{p.model} {r.environment}/{r.region}: {r.health.state}: {'; '.join(r.health.reasons)}"
                        for r in p.regions if r.health.state in (DEGRADED, UNHEALTHY))
        if p.blocked is not None:
            errors.append(f"{model.name}: {p.blocked}")
            continue
        if p.has_changes and not request.dry_run:
            runtime.progress.step(f"{env.name}: {model.name} drifted ({'; '.join(c for r in p.regions for c in r.changes)})")
            try:
                deployed.append(deploy(DeployRequest(model.folder, environment=env.name, ref=request.ref), runtime))
            except ModelopsError as err:
                errors.append(f"{model.name}: {err.message}")
                worst = max(worst, err.exit_status)
    return SyncResult(env.name, commit, tuple(plans), tuple(deployed), tuple(errors), dry_run=request.dry_run,
                      error_status=worst, degraded=tuple(degraded))
