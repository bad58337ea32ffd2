"""The deploy service: one function per command (deploy, promote, approve, rollback, status, history,
plan, sync, invoke). Each takes a frozen request and the :class:`~modelops.runtime.Runtime`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from modelops import naming
from modelops.config import Environment, Environments, ModelConfig, Workspace, load_environments, load_model
from modelops.config.access import DEPLOY, ROLLBACK
from modelops.deploy import gates, specs
from modelops.deploy.api import (
    ApprovalResult,
    ApproveRequest,
    DeployRequest,
    DeployResult,
    EndpointState,
    HistoryReport,
    HistoryRequest,
    InvokeRequest,
    InvokeResult,
    Plan,
    PlanRequest,
    PromoteRequest,
    RegionPlan,
    RollbackRequest,
    StatusReport,
    StatusRequest,
    SyncRequest,
    SyncResult,
    Weight,
    overall,
)
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.rollout import (
    FAILED,
    ROLLED_BACK,
    SKIPPED,
    SUCCEEDED,
    EnvironmentRollout,
    Journal,
    RegionOutcome,
    halt_reason,
    reconcile_environment,
    restore_region,
    restore_release,
    time_limit,
)
from modelops.errors import ExitStatus, GateError, InputError, ModelopsError
from modelops.runtime import NullProgress, Runtime

BOTH_ENV_AND_THROUGH = "give --env or --through, not both"
REGION_WITH_THROUGH = "--region deploys regions of one environment: give --env, not --through"
LOCK_WAIT = "{key}: waiting for the lock ({reason})"
ROLLBACK_LOCK_WAIT_SECONDS = 1800.0  # a region's rollout in progress finishes (or times out) first
NOT_IN_PROMOTION = "environment {environment} is not in the promotion order ({order})"
NO_IMAGE = "the build of {release} has no image for {environment}/{region}"
TESTS_FAILED = "tests of {release} failed in {environment}; not promoting to {next}"
TESTS_FAILED_HINT = "see `modelops test {model} --env {environment}` for the failing cases"
RELEASE_MISMATCH = "release {release} was built from commit {commit}, but that commit now builds {rebuilt}"
RELEASE_MISMATCH_HINT = "the build is not reproducible; deploy the model with --ref {commit} instead"
COMMIT_MISSING = "release {release} was built from commit {commit}, which this clone does not have"
COMMIT_MISSING_HINT = "fetch it (git fetch origin), or promote from a clone that has it"
NOTHING_TO_ROLL_BACK = "no release before {current} succeeded in {environment}/{region}"
NOT_DEPLOYED = "{model} is not deployed in {environment}/{region}"
NOT_DEPLOYED_HINT = "deploy it first: modelops deploy {model} --env {environment}"
NOTHING_TO_ROLL_BACK_HINT = "`modelops history {model}` lists what served where"


@dataclass(frozen=True)
class _Repo:
    ws: Workspace
    envs: Environments


def _repo(runtime: Runtime, ref: str | None = None) -> _Repo:
    ws = Workspace.discover(runtime.cwd)
    return _Repo(ws, load_environments(ws, ref=ref))


def _poll_seconds(env: Environment) -> float:
    return 0.5 if env.is_local else 15.0


@contextmanager
def _opened(env: Environment, runtime: Runtime) -> Iterator[tuple[Any, Any]]:
    from modelops.clients import clients_for
    from modelops.ledger import open_ledger

    clients = clients_for(env, runtime)
    ledger = open_ledger(clients, runtime)
    try:
        yield clients, ledger
    finally:
        ledger.close()


def _chain(envs: Environments, request: DeployRequest) -> tuple[Environment, ...]:
    if request.environment and request.through:
        raise InputError(BOTH_ENV_AND_THROUGH)
    if request.regions and request.through:
        raise InputError(REGION_WITH_THROUGH)
    if request.through is None:
        return (envs.get(request.environment or (envs.promotion[0] if envs.promotion else "dev")),)
    last = envs.get(request.through)
    if last.name not in envs.promotion:
        raise InputError(NOT_IN_PROMOTION.format(environment=last.name, order=", ".join(envs.promotion)))
    return envs.in_promotion_order()[: envs.promotion.index(last.name) + 1]


# -- deploy ---------------------------------------------------------------------------------------


def deploy(request: DeployRequest, runtime: Runtime) -> DeployResult:
    """Deploy a model to one environment, or through the promotion order; gates before each."""
    repo = _repo(runtime, request.ref)
    model = load_model(repo.ws, request.model, ref=request.ref)
    chain = _chain(repo.envs, request)
    for env in chain:
        env.check_runs(model)
        env.check_regions(request.regions)
    gates.check_policy(repo.ws, model, request.ref, runtime)
    outcomes: list[RegionOutcome] = []
    release = ""
    for i, env in enumerate(chain):
        runtime.progress.step(f"{env.name}: deploying {model.name}")
        result = deploy_environment(model, env, repo, request.ref, runtime, regions=request.regions)
        outcomes.extend(result.deployments)
        release = result.release
        if result.result != SUCCEEDED:
            return DeployResult(model.name, release, result.result, tuple(outcomes), result.message,
                                tuple(e.name for e in chain[: i + 1]))
        if i + 1 < len(chain):
            _tests_gate(model, env, chain[i + 1], request.ref, release, runtime)
    return DeployResult(model.name, release, SUCCEEDED, tuple(outcomes), "", tuple(e.name for e in chain))


def deploy_environment(model: ModelConfig, env: Environment, repo: _Repo, ref: str | None,
                       runtime: Runtime, *, regions: tuple[str, ...] = ()) -> DeployResult:
    """Build (cache hit when built before), pass the gates, and roll out to every region in waves
    (or only ``regions``: the same gates; see :func:`_roll_back_other_regions` for a rollback).

    Locks: an environment-wide deploy holds the (model, environment) lock, so two never run at once,
    and then every region's lock; a ``regions`` deploy holds only its regions' locks, so the regions
    of a wave deploy in parallel from separate processes (CI). Region locks are waited for (with a
    progress line) up to the longest a region's rollout may take; the environment lock is not."""
    from modelops.build import BuildRequest, build, verify_artifacts

    gates.check_clean_tree(repo.ws, model, env, repo.envs, ref)
    access = gates.access_rules(repo.ws)
    with _opened(env, runtime) as (clients, ledger):
        identity = gates.acting_identity(runtime, repo.ws, clients)
        gates.check_permission(access, identity, DEPLOY, env.name)
        built = build(BuildRequest(model=model.folder or model.name, environment=env.name, ref=ref), runtime,
                      clients=clients)
        release = built.release
        gates.check_ledger(ledger, model.name, (release,))
        verify_artifacts(model, repo.ws.at(ref), environment=env, runtime=runtime)
        previous = repo.envs.previous(env.name) if env.name in repo.envs.promotion else None
        _check_tests_in(previous, release, model, env, runtime, ledger)
        gates.check_approval(ledger, release, env, gates.release_author(ledger.release(release) or built, repo.ws),
                             access)
        images = {img.region: img for img in built.images}
        targets: dict[str, specs.RegionTarget] = {}
        for region in env.regions:
            img = images.get(region)
            if img is None:
                raise InputError(NO_IMAGE.format(release=release, environment=env.name, region=region))
            targets[region] = specs.RegionTarget(
                model=model, environment=env, region=region, release=release, commit=built.commit,
                config_digest=built.config_digest, image_uri=img.image_uri, model_data_url=img.model_data_url)
        # Refuse a policy SageMaker would refuse before anything is created.
        any_target = next(iter(targets.values()))
        specs.validate_policy(any_target.policy, environment=env.name, instance_count=any_target.instance_count)
        rollout = EnvironmentRollout(
            targets=targets,
            previous_targets=lambda region, rel: _target_for_release(model, env, region, rel, ledger, repo.ws),
            roll_back_completed_regions=repo.envs.roll_back_completed_regions,
        )
        from modelops.deploy.traffic import traffic_starter
        from modelops.ledger.records import LockHolder

        holder = LockHolder.current(identity.name)
        wanted = tuple(r for r in env.regions if r in regions) if regions else env.regions
        wait = time_limit(any_target.policy)
        with ExitStack() as locks:
            if not regions:
                locks.enter_context(ledger.lock(model.name, env.name, holder))
            locks.enter_context(_region_locks(ledger, model.name, env, wanted, holder, runtime, wait))
            outcomes = reconcile_environment(rollout, clients=clients, ledger=ledger, runtime=runtime,
                                             traffic=traffic_starter(model, env, repo.ws, ref, runtime),
                                             poll_seconds=_poll_seconds(env), regions=wanted)
        why = halt_reason(outcomes)
        if regions and why is not None and rollout.roll_back_completed_regions:
            outcomes += _roll_back_other_regions(rollout, env, release, wanted, clients, ledger, holder, runtime,
                                                 wait=wait, why=why)
    result = overall(outcomes)
    return DeployResult(model.name, release, result, outcomes, _why(outcomes), (env.name,))


def _roll_back_other_regions(rollout: EnvironmentRollout, env: Environment, release: str, done: tuple[str, ...],
                             clients: Any, ledger: Any, holder: Any, runtime: Runtime, *, wait: float,
                             why: str) -> tuple[RegionOutcome, ...]:
    """A single-region deploy rolled back: take the environment's other regions that serve ``release``
    (moved by earlier or parallel single-region deploys) back to what they served before. Each
    region's lock is taken alone, after this run let go of its own, so parallel runs cannot deadlock;
    waiting for it lets a parallel rollout of that region finish first."""
    any_target = next(iter(rollout.targets.values()))
    model = any_target.model.name
    out: list[RegionOutcome] = []
    for region in env.regions:
        if region in done:
            continue
        with _region_locks(ledger, model, env, (region,), holder, runtime, wait):
            state = ledger.current(model, env.name, region)
            if state is None or state.release != release or state.in_progress:
                continue
            previous = ledger.last_good(model, env.name, region, before=release)
            moved = RegionOutcome(env.name, region, rollout.targets[region].endpoint_name, release, SUCCEEDED,
                                  f"serving {release}", previous, release)
            out.append(restore_region(rollout, region, moved, clients, ledger, runtime,
                                      poll_seconds=_poll_seconds(env), why=why))
    return tuple(out)


@contextmanager
def _region_locks(ledger: Any, model: str, env: Environment, regions: tuple[str, ...], holder: Any,
                  runtime: Runtime, wait: float) -> Iterator[None]:
    """Hold the lock of each region (key ``ENV/REGION``), taken in sorted order, each waited for."""
    with ExitStack() as stack:
        for region in sorted(regions):
            stack.enter_context(_waiting_lock(ledger, model, f"{env.name}/{region}", holder, runtime, wait,
                                              poll=_poll_seconds(env)))
        yield


@contextmanager
def _waiting_lock(ledger: Any, model: str, key: str, holder: Any, runtime: Runtime, wait: float, *,
                  poll: float) -> Iterator[Any]:
    from modelops.ledger import LockHeldError

    deadline = runtime.clock.monotonic() + wait
    told: str | None = None
    while True:
        try:
            held = ledger.acquire_lock(model, key, holder)
            break
        except LockHeldError as err:
            if runtime.clock.monotonic() >= deadline:
                raise
            if told != err.info.token:  # once per holder
                told = err.info.token
                runtime.progress.step(LOCK_WAIT.format(key=key, reason=err.message))
            runtime.clock.sleep(poll)
    try:
        yield held
    finally:
        held.release()


def _why(outcomes: tuple[RegionOutcome, ...]) -> str:
    """One line: where it went wrong first, what that did to the rest."""
    bad = [o for o in outcomes if o.status in (FAILED, ROLLED_BACK) and "because the rollout" not in o.detail]
    if not bad:
        bad = [o for o in outcomes if o.status in (FAILED, ROLLED_BACK)]
    if not bad:
        return ""
    first = bad[0]
    parts = [f"{first.release} {first.status.replace('_', ' ')} in {first.environment}/{first.region}: {first.detail}"]
    also = [o.region for o in outcomes if o is not first and o.status == ROLLED_BACK]
    if also:
        parts.append(f"also rolled back in {', '.join(also)}")
    skipped = [o.region for o in outcomes if o.status == SKIPPED]
    if skipped:
        parts.append(f"{', '.join(skipped)} not touched")
    return "; ".join(parts)


def _check_tests_in(previous: Environment | None, release: str, model: ModelConfig, env: Environment,
                    runtime: Runtime, ledger: Any) -> None:
    if previous is None:
        return
    if _ledger_key(previous) == _ledger_key(env):
        gates.check_tests(ledger, release, model.name, env, previous)
        return
    with _opened(previous, runtime) as (_, prev_ledger):
        gates.check_ledger(prev_ledger, model.name, (release,))
        gates.check_tests(prev_ledger, release, model.name, env, previous)


def _ledger_key(env: Environment) -> tuple[str, str]:
    """Which ledger an environment writes to: local environments share one; an aws one is its
    account's, in its first region (what ``open_ledger`` picks unless $MODELOPS_LEDGER_REGION says)."""
    return ("local", "") if env.is_local else (env.account, env.regions[0])


def _tests_gate(model: ModelConfig, env: Environment, nxt: Environment, ref: str | None, release: str,
                runtime: Runtime) -> None:
    """Between stages of ``--through``: the release's tests in ``env`` (run unless they passed already)."""
    with _opened(env, runtime) as (clients, ledger):
        if ledger.tests_passed(release, env.name, regions=env.regions):
            runtime.progress.step(f"{env.name}: tests of {release} passed before")
            return
        from modelops.verify import TestRequest, run_tests

        runtime.progress.step(f"{env.name}: testing {release}")
        report = run_tests(TestRequest(model=model.folder or model.name, environment=env.name, ref=ref), runtime,
                           clients=clients)
    if not report.passed:
        raise GateError(TESTS_FAILED.format(release=release, environment=env.name, next=nxt.name),
                        hint=TESTS_FAILED_HINT.format(model=model.name, environment=env.name))


def _target_for_release(model: ModelConfig, env: Environment, region: str, release: str, ledger: Any,
                        ws: Workspace) -> specs.RegionTarget:
    """The target of an earlier release (a rollback): its build and its config at its commit. Its
    model and endpoint config normally still exist, so only UpdateEndpoint is needed."""
    record = ledger.release(release)
    builds = {b.region: b for b in ledger.builds(release, env.name)}
    at = model
    if record is not None:
        try:
            at = load_model(ws, model.folder or model.name, ref=record.commit)
        except ModelopsError:
            at = model  # the commit is gone (a dev build of a dirty tree): its resources still exist
    b = builds.get(region)
    return specs.RegionTarget(
        model=at, environment=env, region=region, release=release,
        commit=record.commit if record else "", config_digest=record.config_digest if record else "",
        image_uri=b.image_uri if b else "", model_data_url=b.model_data_url if b else None)


def promote(request: PromoteRequest, runtime: Runtime) -> DeployResult:
    """Deploy an existing release (built before, tests passed before) to the next environment."""
    repo = _repo(runtime)
    env = repo.envs.get(request.to)
    record = _find_release(request.release, repo, runtime)
    try:
        repo.ws.at(record.commit)
    except InputError as err:
        raise InputError(COMMIT_MISSING.format(release=request.release, commit=record.commit[:12]),
                         hint=COMMIT_MISSING_HINT) from err
    # The release this commit builds now, before anything is deployed: a promotion that rolled out
    # something else and only then said so would have changed the environment it refused.
    model = load_model(repo.ws, record.model, ref=record.commit)
    rebuilt, _ = _desired_release(model, env, record.commit, runtime)
    if rebuilt != request.release:
        raise InputError(RELEASE_MISMATCH.format(release=request.release, commit=record.commit[:12], rebuilt=rebuilt),
                         hint=RELEASE_MISMATCH_HINT.format(commit=record.commit[:12]))
    return deploy(DeployRequest(model=record.model, environment=env.name, ref=record.commit), runtime)


def _find_release(release: str, repo: _Repo, runtime: Runtime) -> Any:
    for env in _ledgers(repo):
        with _opened(env, runtime) as (_, ledger):
            record = ledger.release(release)
        if record is not None:
            return record
    raise gates.unknown_release(release)


# -- approve --------------------------------------------------------------------------------------


def approve(request: ApproveRequest, runtime: Runtime) -> ApprovalResult:
    """Record who approves a release for an environment (four-eyes: not its commit's author)."""
    from modelops.ledger.records import Approval

    repo = _repo(runtime)
    env = repo.envs.get(request.environment)
    record = _find_release(request.release, repo, runtime)
    access = gates.access_rules(repo.ws)
    with _opened(env, runtime) as (clients, ledger):
        who = gates.acting_identity(runtime, repo.ws, clients)
        decision = gates.check_approver(who, gates.release_author(record, repo.ws), access, release=request.release,
                                        commit=record.commit, environment=env)
        recorded = ledger.record_approval(Approval(
            model=record.model, release=request.release, environment=env.name, by=who.name, comment=request.comment,
            source=who.source, authenticated=who.authenticated, principal=who.principal or ""))
    return ApprovalResult(record.model, request.release, env.name, who.name, recorded, who.source, who.authenticated,
                          decision.rule.where if decision.rule.file else "")


# -- rollback -------------------------------------------------------------------------------------


def rollback(request: RollbackRequest, runtime: Runtime) -> DeployResult:
    """Return regions of an environment to the release that served there before the current one."""
    repo = _repo(runtime)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model)
    if request.region is not None:
        env.check_regions((request.region,))
    regions = [r for wave in env.waves for r in wave if request.region in (None, r)]
    outcomes: list[RegionOutcome] = []
    access = gates.access_rules(repo.ws)
    with _opened(env, runtime) as (clients, ledger):
        from modelops.ledger.records import LockHolder

        identity = gates.acting_identity(runtime, repo.ws, clients)
        gates.check_permission(access, identity, ROLLBACK, env.name)
        gates.check_ledger(ledger, model.name)
        holder = LockHolder.current(identity.name)
        with ledger.lock(model.name, env.name, holder), _region_locks(ledger, model.name, env, tuple(regions), holder,
                                                                      runtime, ROLLBACK_LOCK_WAIT_SECONDS):
            for region in regions:
                outcomes.append(_rollback_region(model, env, region, clients, ledger, repo.ws, runtime, identity.name))
    failed = [o for o in outcomes if o.status == FAILED]
    if outcomes and all(o.status == FAILED and o.previous_release is None for o in outcomes):
        # Nothing was tried anywhere (not deployed, or no earlier release): the request cannot be done,
        # which is bad input (exit 2), not a cloud failure (exit 3).
        first = outcomes[0]
        if not first.release:  # never deployed here: say why when it cannot be (its clouds)
            env.check_runs(model)
        hint = (NOT_DEPLOYED_HINT.format(model=model.name, environment=env.name) if not first.release
                else NOTHING_TO_ROLL_BACK_HINT.format(model=model.name))
        raise InputError(first.detail, hint=hint)
    result = FAILED if failed else SUCCEEDED
    release = outcomes[0].serving or "" if outcomes else ""
    return DeployResult(model.name, release, result, tuple(outcomes), _why(tuple(failed)), (env.name,))


def _rollback_region(model: ModelConfig, env: Environment, region: str, clients: Any, ledger: Any, ws: Workspace,
                     runtime: Runtime, by: str) -> RegionOutcome:
    cloud = RegionCloud(clients, region)
    endpoint = naming.endpoint_name(model.name, env.name)
    view = cloud.endpoint(endpoint)
    state = ledger.current(model.name, env.name, region)
    current = (view.release_tag if view else None) or (state.release if state else None)
    if view is None or current is None:
        return RegionOutcome(env.name, region, endpoint, "", FAILED,
                             NOT_DEPLOYED.format(model=model.name, environment=env.name, region=region))
    back = ledger.last_good(model.name, env.name, region, before=current)
    if back is None:
        return RegionOutcome(env.name, region, endpoint, current, FAILED,
                             NOTHING_TO_ROLL_BACK.format(current=current, environment=env.name, region=region),
                             serving=current)
    journal = Journal(ledger, model=model.name, environment=env.name, region=region, release=current,
                      endpoint=endpoint)
    runtime.progress.step(f"{env.name}/{region}: rolling back {current} to {back}")
    target = _target_for_release(model, env, region, back, ledger, ws)
    failure = restore_release(target, cloud, journal, runtime, poll_seconds=_poll_seconds(env),
                              note=f"rolled back to {back} by {by}")
    if failure is not None:
        return RegionOutcome(env.name, region, endpoint, current, FAILED, failure, back, current)
    runtime.progress.step(f"{env.name}/{region}: serving {back}")
    return RegionOutcome(env.name, region, endpoint, current, ROLLED_BACK, f"serving {back}", back, back)


# -- status and history ---------------------------------------------------------------------------


def _models(repo: _Repo, name: str | None, ref: str | None = None) -> list[ModelConfig]:
    if name is not None:
        return [load_model(repo.ws, name, ref=ref)]
    return _loadable_models(repo, ref)[0]  # validate reports broken models; status shows the ones that load


def _loadable_models(repo: _Repo, ref: str | None) -> tuple[list[ModelConfig], list[str]]:
    """Every model at ``ref`` that loads, and one error line per model folder that does not."""
    models, broken = [], []
    for folder in repo.ws.at(ref).model_folders():
        try:
            models.append(load_model(repo.ws, folder, ref=ref))
        except ModelopsError as err:
            broken.append(err.message if err.message.startswith(f"{folder}/") else f"{folder}: {err.message}")
    return models, broken


def status(request: StatusRequest, runtime: Runtime) -> StatusReport:
    """Every endpoint of a model (or of every model) per environment and region, as the cloud says."""
    repo = _repo(runtime)
    models = _models(repo, request.model)
    rows: list[EndpointState] = []
    for env in repo.envs.in_promotion_order() or tuple(repo.envs):
        candidates = [m for m in models if m.supports_cloud(env.cloud)]
        if not candidates:
            continue
        with _opened(env, runtime) as (clients, ledger):
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


def _ledgers(repo: _Repo) -> list[Environment]:
    """One environment per distinct ledger (local environments share one)."""
    first: dict[tuple[str, str], Environment] = {}
    for env in repo.envs.in_promotion_order() or tuple(repo.envs):
        first.setdefault(_ledger_key(env), env)
    return list(first.values())


def history(request: HistoryRequest, runtime: Runtime) -> HistoryReport:
    """Everything the ledger(s) hold about a model, oldest first."""
    repo = _repo(runtime)
    model = load_model(repo.ws, request.model)
    entries: list[dict[str, Any]] = []
    for env in _ledgers(repo):
        with _opened(env, runtime) as (_, ledger):
            entries.extend(e.to_dict() for e in ledger.history(model.name))
    entries.sort(key=lambda e: e.get("at", 0.0))
    return HistoryReport(model.name, tuple(entries))


# -- plan and sync --------------------------------------------------------------------------------


def plan(request: PlanRequest, runtime: Runtime) -> Plan:
    """What deploying ``model`` at ``ref`` to ``environment`` would change, per region. Builds nothing
    that is not cached already beyond the release's digest; changes nothing in the cloud."""
    repo = _repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model, ref=request.ref)
    env.check_runs(model)
    with _opened(env, runtime) as (clients, _):
        release, commit = _desired_release(model, env, request.ref, runtime)
        regions = tuple(_plan_region(model, env, region, release, clients) for region in env.regions)
    return Plan(model.name, env.name, release, commit, regions)


def _desired_release(model: ModelConfig, env: Environment, ref: str | None, runtime: Runtime) -> tuple[str, str | None]:
    """The release a deploy would roll out: the build's digests, from its rendered context only
    (nothing is built, pushed or recorded)."""
    import tempfile
    from pathlib import Path

    from modelops.build import BuildRequest, build

    # Quietly: build's "wrote the build context to /tmp/modelops-plan-..." named a folder that is gone
    # by the time the user reads it, from a command that says it changes nothing.
    quiet = replace(runtime, progress=NullProgress())
    with tempfile.TemporaryDirectory(prefix="modelops-plan-") as tmp:
        found = build(BuildRequest(model=model.folder or model.name, environment=env.name, ref=ref,
                                   context_only=Path(tmp) / "context"), quiet)
    return found.release, found.commit


def _plan_region(model: ModelConfig, env: Environment, region: str, release: str, clients: Any) -> RegionPlan:
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
    repo = _repo(runtime, request.ref)
    env = repo.envs.get(request.environment)
    plans: list[Plan] = []
    deployed: list[DeployResult] = []
    commit = repo.ws.at(request.ref).head_commit
    # A model whose config does not load is an error, not left out: a drift check that skipped it
    # would report the environment in sync while nobody can reconcile that model.
    models, errors = _loadable_models(repo, request.ref)
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


# -- invoke ---------------------------------------------------------------------------------------


def invoke(request: InvokeRequest, runtime: Runtime) -> InvokeResult:
    """Send one request to a model's endpoint in an environment (first region unless given); a
    ModelError is an answer with the container's status, any other service error raises."""
    from modelops.config.cases import CaseRequest
    from modelops.verify.invoke import invoke as send
    from modelops.verify.service import ENDPOINT_MISSING

    repo = _repo(runtime)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model)
    region = request.region or env.regions[0]
    env.check_regions((region,))
    endpoint = naming.endpoint_name(model.name, env.name)
    with _opened(env, runtime) as (clients, _):
        try:
            answer = send(clients.client("sagemaker-runtime", region), endpoint,
                          CaseRequest(content_type=request.content_type, accept=request.accept, body=request.body),
                          runtime.clock, resource=f"{env.name}/{region}: endpoint {endpoint}", raise_service_errors=True)
        except InputError as err:
            if RegionCloud(clients, region).endpoint(endpoint) is None:  # say so, and why when there can be none
                env.check_runs(model)
                raise InputError(ENDPOINT_MISSING.format(endpoint=endpoint, region=region, env=env.name),
                                 hint=NOT_DEPLOYED_HINT.format(model=model.name, environment=env.name)) from err
            raise
    if answer.ok:
        return InvokeResult(endpoint, region, answer.status, answer.content_type or "", answer.body)
    return InvokeResult(endpoint, region, answer.original_status or answer.status, "text/plain", answer.body)
