"""Acting on a rollout in flight (``modelops rollout pause|resume|abort|promote``) and letting a blocked
release out again (``modelops release unblock``).

Each control records an intent in the ledger (STYLE.md #4: promote and abort record intent); the
rollout loop of the deploy that runs it reads the intents at every pass, before every step
(:func:`modelops.deploy.machine.next_step`), so the deploy process honours them wherever it runs.
What each can do depends on what SageMaker allows:

- **abort** (roll back now): while SageMaker bakes a blue/green update, forcing one of its rollback
  alarms to ALARM makes SageMaker roll the update back (there is no call to stop an update); once an
  update is through, the region is taken back to the release before, all at once. The release is then
  blocked in the environment. ``rollout abort`` forces the alarm at once, and when no deploy process
  runs the region (Ctrl-C'd, crashed) it runs the same reconcile loop itself until the region is back.
- **pause** holds the rollout before its next step that moves traffic: a region not updated yet, a
  later wave. SageMaker has no API to pause a blue/green update it is making: that one goes on.
- **resume** lifts a pause.
- **promote** (finish without further bake) lifts a pause; SageMaker has no API to end a bake early, so
  an update it is making finishes on its own schedule. A modelops-managed canary (weights shifted step
  by step) would skip its remaining bakes at its next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig, load_model
from modelops.config.access import DEPLOY, ROLLBACK, UNBLOCK
from modelops.deploy import gates, specs
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.machine import BUSY, CREATING, UPDATING, EndpointView
from modelops.deploy.repo import Repo, open_repo, opened, poll_seconds, target_for_release, watch_seconds
from modelops.deploy.rollout import (
    FAILED,
    SUCCEEDED,
    EnvironmentRollout,
    RegionOutcome,
    restore_region,
    run_region,
    time_limit,
)
from modelops.errors import ExitStatus, InputError
from modelops.ledger.locks import region_locks
from modelops.ledger.records import (
    ABORT,
    INTENT_ACTIONS,
    PAUSE,
    PROMOTE,
    RESUME,
    LockHolder,
    ReleaseBlock,
    RolloutIntent,
)
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.identity import Identity
    from modelops.ledger import Ledger

NO_ROLLOUT = "no rollout of {model} is in flight in {where}"
NO_ROLLOUT_HINT = "`modelops status {model}` shows what serves; `modelops history {model} --env {environment} --limit 20` what happened"
BAD_ACTION = "rollout {action}: not one of {actions}"
NO_REASON = "give --reason TEXT: why the release may roll out again is kept in the ledger"
NOT_BLOCKED = "release {release} is not blocked in {environment}"
NOT_BLOCKED_HINT = "`modelops history MODEL --kind block` lists blocks and unblocks"

# What a control does in one region (one line each, in the command's answer).
SAGEMAKER_CANNOT_PAUSE = ("SageMaker has no API to pause the blue/green update it is making: it goes on to 100% "
                          "unless an alarm fires (roll it back: modelops rollout abort {model} --env {environment})")
SAGEMAKER_CREATES = "SageMaker goes on creating the endpoint; the pause holds what comes after"
HELD = "held before its next step that moves traffic"
RESUMES = "resumes at its next step"
NOT_PAUSED = "was not paused"
SAGEMAKER_CANNOT_PROMOTE = ("SageMaker has no API to end a bake early: the update finishes on its own schedule "
                            "({remaining})")
NOTHING_TO_PROMOTE = "nothing to finish early: no bake of SageMaker's under way and not paused"


@dataclass(frozen=True)
class RolloutRequest:
    """``action`` (pause | resume | abort | promote) on the rollout of ``model`` in ``environment``
    (only ``region``: None for every region of the rollout), with ``reason``."""

    model: str
    environment: str
    action: str
    region: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RegionControl:
    """What a control did in one region: ``effect`` says it in one line; ``effective`` whether it
    took effect (a pause that holds; SageMaker's own update cannot be held)."""

    region: str
    release: str
    status: str
    effect: str
    effective: bool

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "release": self.release, "status": self.status, "effect": self.effect,
                "effective": self.effective}


@dataclass(frozen=True)
class RolloutResult:
    """The answer of ``modelops rollout ACTION``: the intents recorded (one per region), what each did,
    and for an abort how each region ended."""

    model: str
    environment: str
    action: str
    by: str
    regions: tuple[RegionControl, ...]
    outcomes: tuple[RegionOutcome, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        """An abort: 0 once every region is back, 3 when one could not be taken back. The others: 0
        when the control took effect somewhere, 1 when it could not (SageMaker cannot pause its update)."""
        if self.action == ABORT:
            return ExitStatus.ENVIRONMENT if any(o.status == FAILED for o in self.outcomes) else ExitStatus.OK
        return ExitStatus.OK if any(r.effective for r in self.regions) else ExitStatus.GATE_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "action": self.action, "by": self.by,
                "regions": [r.to_dict() for r in self.regions], "outcomes": [o.to_dict() for o in self.outcomes]}


@dataclass(frozen=True)
class UnblockRequest:
    release: str
    environment: str
    reason: str


@dataclass(frozen=True)
class UnblockResult:
    model: str
    release: str
    environment: str
    by: str
    reason: str
    block: ReleaseBlock  # the block lifted

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "release": self.release, "env": self.environment, "by": self.by,
                "reason": self.reason, "lifted": self.block.to_dict()}


@dataclass(frozen=True)
class _InFlight:
    region: str
    release: str
    endpoint: EndpointView | None


def control_rollout(request: RolloutRequest, runtime: Runtime) -> RolloutResult:
    """Record ``request.action`` for the rollout in flight and do what SageMaker allows now (see the
    module docstring); an abort also waits until each region is back."""
    if request.action not in INTENT_ACTIONS:
        raise InputError(BAD_ACTION.format(action=request.action, actions=", ".join(INTENT_ACTIONS)))
    repo = open_repo(runtime)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model)
    if request.region is not None:
        env.check_regions((request.region,))
    with opened(env, runtime) as (clients, ledger):
        identity = gates.acting_identity(runtime, repo.ws, clients)
        # An abort rolls back; pause, resume and promote steer a deploy: each needs that permission.
        gates.check_permission(gates.access_rules(repo.ws), identity,
                               ROLLBACK if request.action == ABORT else DEPLOY, env.name)
        user = str(identity)
        flights = in_flight(model, env, clients, ledger, only=request.region)
        if not flights:
            where = f"{env.name}/{request.region}" if request.region else env.name
            raise InputError(NO_ROLLOUT.format(model=model.name, where=where),
                             hint=NO_ROLLOUT_HINT.format(model=model.name, environment=env.name))
        paused = {f.region: ledger.rollout_control(model.name, env.name, f.region, f.release).paused is not None
                  for f in flights}
        for f in flights:
            ledger.record_intent(RolloutIntent(model.name, env.name, f.region, f.release, request.action, user,
                                               request.reason))
            runtime.progress.step(f"{env.name}/{f.region}: {request.action} of {f.release} recorded")
        if request.action == ABORT:
            regions, outcomes = _abort(model, env, repo, flights, clients, ledger, identity, runtime)
            return RolloutResult(model.name, env.name, ABORT, user, regions, outcomes)
        answer = {PAUSE: _pause, RESUME: _resume, PROMOTE: _promote}[request.action]
        regions = tuple(answer(f, model, env, paused[f.region]) for f in flights)
    return RolloutResult(model.name, env.name, request.action, user, regions)


def in_flight(model: ModelConfig, env: Environment, clients: Clients, ledger: Ledger, *,
              only: str | None = None) -> list[_InFlight]:
    """The regions where a rollout of ``model`` is under way, with its release: the ledger's
    unfinished rollout, or an update SageMaker is making. A region of a later wave that has not started
    the one release in flight elsewhere counts too (a pause holds it before it starts)."""
    endpoint = naming.endpoint_name(model.name, env.name)
    releases = [r.release for r in ledger.releases(model.name)]
    found: dict[str, _InFlight] = {}
    views: dict[str, EndpointView | None] = {}
    for region in env.regions:
        view = RegionCloud(clients, region).endpoint(endpoint, with_tags=False)
        views[region] = view
        state = ledger.current(model.name, env.name, region)
        if state is not None and state.in_progress and state.last_step is not None:
            found[region] = _InFlight(region, state.last_step.release, view)
        elif view is not None and view.status in BUSY and view.pending_config:
            from modelops.deploy.observed import release_of_config

            release = release_of_config(view.pending_config, model.name, env.name, releases)
            if release is not None:
                found[region] = _InFlight(region, release, view)
    flying = {f.release for f in found.values()}
    if len(flying) == 1:
        (release,) = flying
        for region in env.regions:
            state = ledger.current(model.name, env.name, region)
            if region not in found and (state is None or state.release != release):
                found[region] = _InFlight(region, release, views[region])
    return [found[r] for r in env.regions if r in found and only in (None, r)]


def _sagemaker_updating(f: _InFlight, model: ModelConfig, env: Environment) -> bool:
    ep = f.endpoint
    return ep is not None and ep.status == UPDATING and ep.pending_config == naming.endpoint_config_name(
        model.name, env.name, f.release)


def _pause(f: _InFlight, model: ModelConfig, env: Environment, paused: bool) -> RegionControl:
    status = f.endpoint.status if f.endpoint else "absent"
    if _sagemaker_updating(f, model, env):
        return RegionControl(f.region, f.release, status,
                             SAGEMAKER_CANNOT_PAUSE.format(model=model.name, environment=env.name), False)
    if f.endpoint is not None and f.endpoint.status == CREATING:
        return RegionControl(f.region, f.release, status, SAGEMAKER_CREATES, False)
    return RegionControl(f.region, f.release, status, HELD, True)


def _resume(f: _InFlight, model: ModelConfig, env: Environment, paused: bool) -> RegionControl:
    status = f.endpoint.status if f.endpoint else "absent"
    return RegionControl(f.region, f.release, status, RESUMES if paused else NOT_PAUSED, paused)


def _promote(f: _InFlight, model: ModelConfig, env: Environment, paused: bool) -> RegionControl:
    status = f.endpoint.status if f.endpoint else "absent"
    if _sagemaker_updating(f, model, env) and f.endpoint is not None:
        where = "; ".join(m for w in f.endpoint.weights if w.fleet == "green" for m in w.messages)
        return RegionControl(f.region, f.release, status,
                             SAGEMAKER_CANNOT_PROMOTE.format(remaining=where or "see modelops watch"), False)
    if paused:
        return RegionControl(f.region, f.release, status, RESUMES, True)
    return RegionControl(f.region, f.release, status, NOTHING_TO_PROMOTE, False)


def _abort(model: ModelConfig, env: Environment, repo: Repo, flights: Sequence[_InFlight], clients: Clients,
           ledger: Ledger, identity: Identity, runtime: Runtime) -> tuple[tuple[RegionControl, ...], tuple[RegionOutcome, ...]]:
    """Force the rollback alarm where SageMaker bakes; then per region, once no other run holds it (a
    deploy process honours the abort itself and lets go when done), finish what is left: the region's
    reconcile loop under the abort, which takes it back and blocks the release."""
    user = str(identity)
    targets = {f.region: target_for_release(model, env, f.region, f.release, ledger, repo.ws) for f in flights}
    regions = []
    for f in flights:
        target = targets[f.region]
        status = f.endpoint.status if f.endpoint else "absent"
        alarms = specs.rollback_alarm_names(target.policy, specs.alarm_requests(target))
        if _sagemaker_updating(f, model, env) and alarms:
            cloud = RegionCloud(clients, f.region)
            for name in alarms:
                cloud.set_alarm_state(name, "ALARM", f"modelops rollout abort by {user}")
            regions.append(RegionControl(f.region, f.release, status,
                                         f"forced {', '.join(alarms)} to ALARM: SageMaker rolls the update back", True))
        elif _sagemaker_updating(f, model, env):
            regions.append(RegionControl(f.region, f.release, status,
                                         "the update watches no alarm (no bake): it is taken back once through", True))
        else:
            regions.append(RegionControl(f.region, f.release, status, "rolled back from where it is", True))
    rollouts = {f.release: EnvironmentRollout(
        targets={r: t for r, t in targets.items() if t.release == f.release},
        previous_targets=lambda region, rel: target_for_release(model, env, region, rel, ledger, repo.ws),
        roll_back_completed_regions=repo.envs.roll_back_completed_regions, actor=user) for f in flights}
    holder = LockHolder.current(identity.name)
    wait = max(time_limit(t.policy) for t in targets.values())
    outcomes = []
    with region_locks(ledger, model.name, env.name, [f.region for f in flights], holder, runtime, wait,
                      poll=poll_seconds(env)):
        for f in flights:
            state = ledger.current(model.name, env.name, f.region)
            target = targets[f.region]
            if state is not None and state.last_step is not None and state.last_step.release == f.release and (
                    not state.in_progress):
                # A deploy process honoured the abort (or the rollout ended) while this waited.
                last = state.last_step
                outcomes.append(RegionOutcome(env.name, f.region, target.endpoint_name, f.release, last.status,
                                              last.detail, last.previous_release, state.release))
                continue
            outcomes.append(run_region(rollouts[f.release], f.region, RegionCloud(clients, f.region), ledger, runtime,
                                       poll_seconds=poll_seconds(env), watch_seconds=watch_seconds(env)))
    outcomes += _restore_moved(model, env, repo, rollouts, [f.region for f in flights], clients, ledger, holder,
                               runtime, wait=wait)
    return tuple(regions), tuple(outcomes)


def _restore_moved(model: ModelConfig, env: Environment, repo: Repo, rollouts: dict[str, EnvironmentRollout],
                   aborted: Sequence[str], clients: Clients, ledger: Ledger, holder: LockHolder, runtime: Runtime, *,
                   wait: float) -> list[RegionOutcome]:
    """Regions the aborted release already moved (an earlier wave) go back too, as the environments
    config says (``roll_back_completed_regions``), as a deploy does when a later wave rolls back. A
    deploy process that honoured the abort did so already: those regions no longer serve it."""
    out: list[RegionOutcome] = []
    for release, rollout in rollouts.items():
        if not rollout.roll_back_completed_regions:
            continue
        for region in env.regions:
            if region in aborted:
                continue
            with region_locks(ledger, model.name, env.name, (region,), holder, runtime, wait, poll=poll_seconds(env)):
                state = ledger.current(model.name, env.name, region)
                if state is None or state.release != release or state.in_progress:
                    continue
                target = target_for_release(model, env, region, release, ledger, repo.ws)
                previous = ledger.last_good(model.name, env.name, region, before=release)
                moved = RegionOutcome(env.name, region, target.endpoint_name, release, SUCCEEDED, f"serving {release}",
                                      previous, release)
                with_target = replace(rollout, targets={**rollout.targets, region: target})
                out.append(restore_region(with_target, region, moved, clients, ledger, runtime,
                                          poll_seconds=poll_seconds(env), watch_seconds=watch_seconds(env),
                                          why=f"the rollout was aborted by {rollout.actor}"))
    return out


def unblock(request: UnblockRequest, runtime: Runtime) -> UnblockResult:
    """Let a release blocked in an environment (it was rolled back there) roll out there again,
    recorded with who and why."""
    if not request.reason.strip():
        raise InputError(NO_REASON)
    repo = open_repo(runtime)
    env = repo.envs.get(request.environment)
    with opened(env, runtime) as (clients, ledger):
        identity = gates.acting_identity(runtime, repo.ws, clients)
        gates.check_permission(gates.access_rules(repo.ws), identity, UNBLOCK, env.name)
        user = str(identity)
        block = ledger.block(request.release, env.name)
        if block is None:
            if ledger.release(request.release) is None:
                raise gates.unknown_release(request.release)
            raise InputError(NOT_BLOCKED.format(release=request.release, environment=env.name), hint=NOT_BLOCKED_HINT)
        ledger.record_block(ReleaseBlock(block.model, request.release, env.name, False, user, request.reason))
    return UnblockResult(block.model, request.release, env.name, user, request.reason, block)
