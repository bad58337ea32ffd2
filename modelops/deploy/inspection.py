"""Looking before (and instead of) changing: ``status`` (what serves where), ``history`` (what the
ledgers hold), ``verify_ledgers`` (whether their history was changed behind modelops' back), ``plan``
(what a deploy would change) and ``sync`` (deploy what drifted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig, load_model
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
from modelops.deploy.repo import (
    distinct_ledgers,
    ledger_key,
    loadable_models,
    models_named,
    open_repo,
    opened,
)
from modelops.deploy.service import deploy, desired_release
from modelops.errors import ExitStatus, InputError, ModelopsError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients


def status(request: StatusRequest, runtime: Runtime) -> StatusReport:
    """Every endpoint of a model (or of every model) per environment and region, as the cloud says."""
    repo = open_repo(runtime)
    models = models_named(repo, request.model)
    rows: list[EndpointState] = []
    for env in repo.envs.in_promotion_order() or tuple(repo.envs):
        candidates = [m for m in models if m.supports_cloud(env.cloud)]
        if not candidates:
            continue
        with opened(env, runtime) as (clients, ledger):
            for model in candidates:
                endpoint = naming.endpoint_name(model.name, env.name)
                for region in env.regions:
                    view = RegionCloud(clients, region).endpoint(endpoint)
                    state = ledger.current(model.name, env.name, region)
                    last = state.last_step if state else None
                    last_text = f"{last.release} {last.step} ({last.status})" if last else None
                    if view is None:
                        if request.model is not None:
                            rows.append(EndpointState(model.name, env.name, region, endpoint, None, "absent",
                                                      last_step=last_text))
                        continue
                    rows.append(EndpointState(
                        model.name, env.name, region, endpoint, view.release_tag, view.status,
                        tuple(Weight(w.fleet, w.config, w.variant, w.current_weight, w.desired_weight, w.instances)
                              for w in view.weights),
                        last_text, view.failure_reason))
    return StatusReport(tuple(rows))


def history(request: HistoryRequest, runtime: Runtime) -> HistoryReport:
    """Everything the ledger(s) hold about a model, oldest first."""
    repo = open_repo(runtime)
    model = load_model(repo.ws, request.model)
    entries: list[dict[str, Any]] = []
    for env in distinct_ledgers(repo):
        with opened(env, runtime) as (_, ledger):
            entries.extend(e.to_dict() for e in ledger.history(model.name))
    entries.sort(key=lambda e: e.get("at", 0.0))
    return HistoryReport(model.name, tuple(entries))


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
    """What deploying ``model`` at ``ref`` to ``environment`` would change, per region. Builds nothing
    that is not cached already beyond the release's digest; changes nothing in the cloud."""
    repo = open_repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model, ref=request.ref)
    env.check_runs(model)
    with opened(env, runtime) as (clients, _):
        release, commit = desired_release(model, env, request.ref, runtime)
        regions = tuple(_plan_region(model, env, region, release, clients) for region in env.regions)
    return Plan(model.name, env.name, release, commit, regions)


def _plan_region(model: ModelConfig, env: Environment, region: str, release: str, clients: Clients) -> RegionPlan:
    cloud = RegionCloud(clients, region)
    endpoint = naming.endpoint_name(model.name, env.name)
    view = cloud.endpoint(endpoint)
    resources = model.resources_for(env.name)
    if view is None:
        return RegionPlan(env.name, region, endpoint, None, release, "create",
                          (f"create endpoint {endpoint} serving {release} on {resources.instance_count} x "
                           f"{resources.instance_type}",))
    if view.status != "InService":
        return RegionPlan(env.name, region, endpoint, view.release_tag, release, "busy",
                          (f"endpoint is {view.status}; a rollout is under way",))
    changes = []
    if view.release_tag != release:
        changes.append(f"release {view.release_tag or '(untagged)'} -> {release}")
    config = cloud.endpoint_config(view.config_name) or {}
    variants = config.get("ProductionVariants") or [{}]
    v = variants[0]
    if v.get("InstanceType") and v["InstanceType"] != resources.instance_type:
        changes.append(f"instance type {v['InstanceType']} -> {resources.instance_type}")
    if v.get("InitialInstanceCount") and v["InitialInstanceCount"] != resources.instance_count:
        changes.append(f"instance count {v['InitialInstanceCount']} -> {resources.instance_count}")
    if view.config_name != naming.endpoint_config_name(model.name, env.name, release) and not changes:
        changes.append(f"endpoint config {view.config_name} -> {naming.endpoint_config_name(model.name, env.name, release)}")
    return RegionPlan(env.name, region, endpoint, view.release_tag, release, "update" if changes else "none",
                      tuple(changes))


def sync(request: SyncRequest, runtime: Runtime) -> SyncResult:
    """Reconcile every model at ``ref`` with what ``environment`` runs; report the drift."""
    repo = open_repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    plans: list[Plan] = []
    deployed: list[DeployResult] = []
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
        if p.has_changes and not request.dry_run:
            runtime.progress.step(f"{env.name}: {model.name} drifted ({'; '.join(c for r in p.regions for c in r.changes)})")
            try:
                deployed.append(deploy(DeployRequest(model.folder, environment=env.name, ref=request.ref), runtime))
            except ModelopsError as err:
                errors.append(f"{model.name}: {err.message}")
                worst = max(worst, err.exit_status)
    return SyncResult(env.name, commit, tuple(plans), tuple(deployed), tuple(errors), dry_run=request.dry_run,
                      error_status=worst)
