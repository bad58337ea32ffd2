"""Taking regions back to the release that served before: ``modelops rollback``, and the regions a
failed single-region deploy leaves serving a release that rolled back elsewhere."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from modelops import naming
from modelops.config import Environment, ModelConfig, Workspace, check_runs, load_model
from modelops.config.access import ROLLBACK
from modelops.deploy import gates
from modelops.deploy.api import DeployResult, RollbackRequest, why
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.repo import open_repo, opened, poll_seconds, target_for_release, watch_seconds
from modelops.deploy.rollout import (
    FAILED,
    ROLLED_BACK,
    SUCCEEDED,
    EnvironmentRollout,
    Journal,
    RegionOutcome,
    block_release,
    restore_region,
    restore_release,
)
from modelops.errors import InputError
from modelops.ledger.locks import region_locks
from modelops.ledger.records import LockHolder
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Ledger

ROLLBACK_LOCK_WAIT_SECONDS = 1800.0  # a region's rollout in progress finishes (or times out) first
NOTHING_TO_ROLL_BACK = "no release before {current} succeeded in {environment}/{region}"
NOTHING_TO_ROLL_BACK_HINT = "`modelops history {model}` lists what served where"
NOT_DEPLOYED = "{model} is not deployed in {environment}/{region}"
NOT_DEPLOYED_HINT = "deploy it first: modelops deploy {model} --env {environment}"


def rollback(request: RollbackRequest, runtime: Runtime) -> DeployResult:
    """Return regions of an environment to the release that served there before the current one."""
    repo = open_repo(runtime)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model)
    if request.region is not None:
        env.check_regions((request.region,))
    regions = [r for wave in env.waves for r in wave if request.region in (None, r)]
    outcomes: list[RegionOutcome] = []
    access = gates.access_rules(repo.ws)
    with opened(env, runtime) as (clients, ledger):
        identity = gates.acting_identity(runtime, repo.ws, clients)
        gates.check_permission(access, identity, ROLLBACK, env.name)
        gates.check_ledger(ledger, model.name)
        holder = LockHolder.current(identity.name)
        with ledger.lock(model.name, env.name, holder), region_locks(
                ledger, model.name, env.name, regions, holder, runtime, ROLLBACK_LOCK_WAIT_SECONDS,
                poll=poll_seconds(env)):
            for region in regions:
                outcomes.append(_rollback_region(model, env, region, clients, ledger, repo.ws, runtime,
                                                 by=str(identity), reason=request.reason))
    failed = [o for o in outcomes if o.status == FAILED]
    if outcomes and all(o.status == FAILED and o.previous_release is None for o in outcomes):
        # Nothing was tried anywhere (not deployed, or no earlier release): the request cannot be done,
        # which is bad input (exit 2), not a cloud failure (exit 3).
        first = outcomes[0]
        if not first.release:  # never deployed here: say why when it cannot be (its clouds)
            check_runs(model, env)
        hint = (NOT_DEPLOYED_HINT.format(model=model.name, environment=env.name) if not first.release
                else NOTHING_TO_ROLL_BACK_HINT.format(model=model.name))
        raise InputError(first.detail, hint=hint)
    result = FAILED if failed else SUCCEEDED
    release = outcomes[0].serving or "" if outcomes else ""
    return DeployResult(model.name, release, result, tuple(outcomes), why(tuple(failed)), (env.name,))


def _rollback_region(model: ModelConfig, env: Environment, region: str, clients: Clients, ledger: Ledger,
                     ws: Workspace, runtime: Runtime, *, by: str, reason: str) -> RegionOutcome:
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
    target = target_for_release(model, env, region, back, ledger, ws)
    note = f"rolled back to {back} by {by}" + (f": {reason}" if reason else "")
    failure = restore_release(target, cloud, journal, runtime, poll_seconds=poll_seconds(env),
                              watch_seconds=watch_seconds(env), note=note)
    if failure is not None:
        return RegionOutcome(env.name, region, endpoint, current, FAILED, failure, back, current)
    block_release(ledger, replace(target, release=current), by=by,
                  reason=f"rolled back by hand in {region}" + (f": {reason}" if reason else ""))
    runtime.progress.step(f"{env.name}/{region}: serving {back}")
    return RegionOutcome(env.name, region, endpoint, current, ROLLED_BACK, f"serving {back}", back, back)


def roll_back_other_regions(rollout: EnvironmentRollout, env: Environment, release: str, done: tuple[str, ...],
                            clients: Clients, ledger: Ledger, holder: LockHolder, runtime: Runtime, *, wait: float,
                            reason: str) -> tuple[RegionOutcome, ...]:
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
        with region_locks(ledger, model, env.name, (region,), holder, runtime, wait, poll=poll_seconds(env)):
            state = ledger.current(model, env.name, region)
            if state is None or state.release != release or state.in_progress:
                continue
            previous = ledger.last_good(model, env.name, region, before=release)
            moved = RegionOutcome(env.name, region, rollout.targets[region].endpoint_name, release, SUCCEEDED,
                                  f"serving {release}", previous, release)
            out.append(restore_region(rollout, region, moved, clients, ledger, runtime,
                                      poll_seconds=poll_seconds(env), watch_seconds=watch_seconds(env), why=reason))
    return tuple(out)
