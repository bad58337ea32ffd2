"""Rollouts as a reconcile loop: observe the cloud and the ledger, compute the next step, take it,
persist, repeat (../shared/STYLE.md #4). Any pass can crash; running it again converges.

``reconcile_region`` moves one region; ``reconcile_environment`` runs an environment's waves (regions
of a wave in parallel threads), stops before the next wave when a region did not succeed, and as
the environments config says rolls the regions already moved back to what they served before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from modelops import naming
from modelops.config import RolloutPolicy
from modelops.deploy import drift, specs
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.machine import (
    IN_SERVICE,
    ROLLING_BACK,
    UPDATING,
    Action,
    EndpointView,
    RegionObservation,
    Step,
    next_step,
)
from modelops.errors import CloudUnreachableError, ModelopsError
from modelops.ledger.records import (
    FAILED,
    IN_PROGRESS,
    ROLLED_BACK,
    STARTED,
    SUCCEEDED,
    TERMINAL_STATUSES,
    ReleaseBlock,
    RolloutControl,
)
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.deploy.judged import JudgedStep, JudgeSetup
    from modelops.ledger import Ledger

# Outcomes of a region (and of a deploy), the words of `deploy --output json`: SUCCEEDED, ROLLED_BACK and
# FAILED are the ledger's terminal step statuses (a region's outcome is recorded as its last step).
SKIPPED = "skipped"  # a later wave left untouched after a rollback (nothing is recorded)

# A restore (rolling a region back to what it served before) moves all traffic at once and watches
# no alarms: it returns to a release that was good, as fast as SageMaker allows.
RESTORE_POLICY = RolloutPolicy(strategy="all_at_once", wait_interval_seconds=0, termination_wait_seconds=0,
                               max_execution_timeout_seconds=600)
# The clients a region's rollout uses (synthetic traffic calls sagemaker-runtime).
ROLLOUT_SERVICES = ("sagemaker", "cloudwatch", "sagemaker-runtime")
TIMED_OUT = "timed out after {seconds:.0f} s waiting for endpoint {endpoint} ({phase})"
#: A rollout in progress rides out a cloud it cannot reach for this many polls (2 minutes on AWS,
#: a few seconds on the local cloud) before the region fails: SageMaker goes on with the deployment
#: meanwhile, and a network blip must not fail a region (and roll back those that moved).
OUTAGE_POLLS = 8
OUTAGE = "{label}: {reason}; trying again for up to {seconds:g} s"
NOT_TOUCHED = "not touched: {reason}"
#: How modelops' own SetAlarmState reasons begin (an abort forcing SageMaker's rollback): no figures.
FORCED_ALARM = "modelops rollout abort"
ALARM_FIGURES = "alarm {name}: {reason}"


class TrafficStopper(Protocol):
    def stop(self) -> object: ...


# (target, cloud) -> something to stop, or None when no synthetic traffic applies.
TrafficStarter = Callable[[specs.RegionTarget, RegionCloud], TrafficStopper | None]


@dataclass(frozen=True)
class RegionOutcome:
    """How one region ended: ``status`` is succeeded | rolled_back | failed | skipped."""

    environment: str
    region: str
    endpoint: str
    release: str
    status: str
    detail: str = ""
    previous_release: str | None = None
    serving: str | None = None  # the release serving there now, as far as modelops knows
    judgments: tuple[JudgedStep, ...] = ()  # a judged canary's steps, with their figures

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.environment, "region": self.region, "endpoint": self.endpoint,
                "status": self.status, "release": self.release, "serving": self.serving,
                "previous_release": self.previous_release, "detail": self.detail,
                "judgments": [j.to_dict() for j in self.judgments]}


class Journal:
    """The ledger's view of one attempt of a rollout in one region (see ``machine``'s words)."""

    def __init__(self, ledger: Ledger, *, model: str, environment: str, region: str, release: str, endpoint: str,
                 actor: str = ""):
        self.ledger = ledger
        self.actor = actor  # who runs this rollout (an identity with its source), for the "started" step
        self.model, self.environment, self.region, self.release, self.endpoint = (
            model, environment, region, release, endpoint)
        self.attempt = ledger.rollout_attempt(model, environment, region, release)
        steps = list(ledger.steps(model, environment, region, release=release))
        last_terminal = max((i for i, s in enumerate(steps) if s.status in TERMINAL_STATUSES), default=-1)
        self._steps = steps[last_terminal + 1:]
        self._lock = threading.Lock()

    @property
    def previous_release(self) -> str | None:
        started = next((s for s in self._steps if s.step == "started"), None)
        return started.previous_release if started else None

    @property
    def started(self) -> bool:
        return any(s.step == "started" for s in self._steps)

    def sent_at(self, step: str) -> float | None:
        """When this attempt recorded ``step`` (recorded just before the call it names)."""
        times = [s.at for s in self._steps if s.step == step]
        return max(times) if times else None

    def seen(self, step: str) -> bool:
        return any(s.step == step for s in self._steps)

    def control(self) -> RolloutControl:
        """What people asked of this attempt (``modelops rollout pause|resume|abort|promote``)."""
        return self.ledger.rollout_control(self.model, self.environment, self.region, self.release)

    def record(self, step: str, status: str, detail: str = "", *, previous_release: str | None = None,
               key: str | None = None) -> bool:
        from modelops.ledger.base import idempotency_key
        from modelops.ledger.records import DeploymentStep

        record = DeploymentStep(model=self.model, environment=self.environment, region=self.region,
                                release=self.release, step=step, status=status, detail=detail,
                                endpoint=self.endpoint,
                                previous_release=previous_release or self.previous_release)
        k = idempotency_key("deploy", self.model, self.environment, self.region, self.release, self.attempt,
                            key or step)
        with self._lock:
            appended = self.ledger.record_step(record, idempotency_key=k)
            # Keep the in-memory view in step with the ledger (the ledger stamps ``at``).
            self._steps = [*self._steps, replace(record, at=self.ledger.clock.now())]
        return appended


@dataclass
class _Run:
    """Per-pass state of ``reconcile_region`` that is not persisted (re-derived on a re-run)."""

    last_phase: str = ""
    traffic: TrafficStopper | None = None
    paused_since: float | None = None
    alarm_figures: str | None = None  # the firing rollback alarms' figures, read as the rollback began


def observe(target: specs.RegionTarget, cloud: RegionCloud, journal: Journal, *,
            alarm_requests: Sequence[dict[str, Any]], policy: RolloutPolicy,
            autoscaling: Callable[[], bool | None] | None = None, prefix: str = "",
            control: bool = True) -> RegionObservation:
    """What the cloud and the ledger say about ``target`` in its region now (``control``: and what
    people asked of this attempt)."""
    endpoint = cloud.endpoint(target.endpoint_name)
    alarms = cloud.alarms(tuple(a["AlarmName"] for a in alarm_requests))
    rollback_alarms = specs.rollback_alarm_names(policy, list(alarm_requests))
    serving = endpoint is not None and endpoint.status == IN_SERVICE
    return RegionObservation(
        target_config=target.endpoint_config_name,
        target_release=target.release,
        model_exists=cloud.model_exists(target.model_name),
        config_exists=cloud.endpoint_config(target.endpoint_config_name) is not None,
        alarms_in_place=drift.alarms_in_place(alarm_requests, alarms),
        endpoint=endpoint,
        create_sent_at=journal.sent_at(prefix + Action.CREATE_ENDPOINT.value),
        update_sent_at=journal.sent_at(prefix + Action.UPDATE_ENDPOINT.value),
        delete_sent_at=journal.sent_at(prefix + Action.DELETE_ENDPOINT.value),
        rolling_back_seen=journal.seen("rolling-back"),
        alarms_firing=tuple(n for n in rollback_alarms if n in alarms and alarms[n].state == "ALARM"),
        autoscaling_in_place=autoscaling() if autoscaling and serving else None,
        capacity_in_place=not (serving and endpoint is not None and drift.capacity_diffs(target, endpoint)),
        rollback_alarms=rollback_alarms,
        control=journal.control() if control else RolloutControl(),
    )


def _take(step: Step, target: specs.RegionTarget, cloud: RegionCloud, obs: RegionObservation, *,
          policy: RolloutPolicy, alarm_requests: Sequence[dict[str, Any]],
          register_autoscaling: Callable[[], None] | None) -> None:
    if step.action == Action.CREATE_MODEL:
        cloud.create_model(specs.create_model_request(target))
    elif step.action == Action.CREATE_CONFIG:
        cloud.create_endpoint_config(specs.create_endpoint_config_request(target))
    elif step.action == Action.PUT_ALARMS:
        for body in alarm_requests:
            cloud.put_alarm(body)
    elif step.action == Action.CREATE_ENDPOINT:
        cloud.create_endpoint(target.endpoint_name, target.endpoint_config_name,
                              specs.target_deployment_config(target, policy), specs.tags(target))
    elif step.action == Action.UPDATE_ENDPOINT:
        # A blue/green DeploymentConfig needs the variants kept (the spec); leaving a judged canary's
        # two variants is a plain update, all at once.
        same_variants = obs.endpoint is None or all(w.variant == naming.PRIMARY_VARIANT for w in obs.endpoint.weights)
        cloud.update_endpoint(target.endpoint_name, target.endpoint_config_name,
                              specs.target_deployment_config(target, policy) if same_variants else None)
    elif step.action == Action.DELETE_ENDPOINT:
        cloud.delete_endpoint(target.endpoint_name)
    elif step.action == Action.TAG_ENDPOINT:
        arn = cloud.endpoint_arn(target.endpoint_name)
        if arn:
            cloud.add_tags(arn, specs.tags(target))
    elif step.action == Action.SET_CAPACITY and obs.endpoint is not None:
        cloud.update_weights_and_capacities(target.endpoint_name,
                                            specs.capacity_request(drift.repair_count(target, obs.endpoint)))
    elif step.action == Action.FORCE_ROLLBACK:
        for name in obs.rollback_alarms:
            cloud.set_alarm_state(name, "ALARM", f"{FORCED_ALARM}: {step.reason}")
    elif step.action == Action.SCALE and register_autoscaling is not None:
        register_autoscaling()


def _start(target: specs.RegionTarget, journal: Journal, runtime: Runtime, previous: str | None, how: str = "") -> None:
    """Record the start of this attempt (and what served before: the release to go back to) and say it."""
    journal.record("started", STARTED, f"{target.release} to {target.endpoint_name}"
                   + (f" by {journal.actor}" if journal.actor else ""), previous_release=previous)
    runtime.progress.step(f"{target.environment.name}/{target.region}: rolling out {target.release}" + (
        f" (replacing {previous})" if previous and previous != target.release else "") + how)


def time_limit(policy: RolloutPolicy) -> float:
    """The longest a region's rollout under ``policy`` may take: the update is bounded by SageMaker's
    own timeout; provisioning comes on top."""
    return policy.max_execution_timeout_seconds * 2 + 600


class Stopped(Exception):
    """The rollout was asked to stop (Ctrl-C in another thread of the same deploy)."""


def reconcile_region(
    target: specs.RegionTarget,
    cloud: RegionCloud,
    journal: Journal,
    runtime: Runtime,
    *,
    restore: bool = False,
    traffic: TrafficStarter | None = None,
    poll_seconds: float = 1.0,
    watch_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> Step:
    """Move ``target.region`` to serve ``target.release``; returns the terminal step.

    Each pass observes, decides one step (:func:`machine.next_step`), records it in the ledger (just
    before taking it, so a crash leaves the intent and the re-run repeats an idempotent step) and
    takes it. ``restore`` moves back to a known-good release all at once without alarms (and, being
    the way back, heeds no pause or abort). Time spent paused does not count against the time limit.
    ``stop`` set (Ctrl-C) ends the loop with :class:`Stopped` at the next pass.

    While it waits on the cloud, a pass comes every ``poll_seconds``; with ``watch_seconds``, in between,
    DescribeEndpoint alone every ``watch_seconds`` brings the next pass as soon as the endpoint changes
    (:func:`wait_for_change`)."""
    policy = RESTORE_POLICY if restore else target.policy
    alarm_requests = [] if restore else specs.alarm_requests(target)
    prefix = "restore-" if restore else ""
    label = f"{target.environment.name}/{target.region}"
    autoscale_check, autoscale_apply = _autoscaling_hooks(target, cloud)
    limit = time_limit(policy)
    started = runtime.clock.monotonic()
    run = _Run()
    outage: _Outage | None = None
    try:
        while True:
            if stop is not None and stop.is_set():
                raise Stopped
            try:
                obs = observe(target, cloud, journal, alarm_requests=alarm_requests, policy=policy,
                              autoscaling=autoscale_check, prefix=prefix, control=not restore)
                if not journal.started and not restore:
                    _start(target, journal, runtime, obs.endpoint.serving_release if obs.endpoint else None)
                if (not restore and run.alarm_figures is None and obs.endpoint is not None
                        and obs.endpoint.status == ROLLING_BACK):
                    run.alarm_figures = alarm_figures(cloud, obs.rollback_alarms)
                _note_phase(obs.endpoint, journal, runtime, label, run, prefix)
                if obs.endpoint is not None and obs.endpoint.status == UPDATING and traffic and run.traffic is None:
                    run.traffic = traffic(target, cloud)
                step = next_step(obs)
                if step.is_terminal:
                    if step.action == Action.ROLLED_BACK and run.alarm_figures:
                        return Step(step.action, f"{step.reason}: {run.alarm_figures}")
                    return step
                if step.action == Action.WAIT:
                    paused = obs.control.paused is not None and not run.paused_since
                    if obs.control.paused is not None:
                        run.paused_since = run.paused_since or runtime.clock.monotonic()
                        if paused:
                            runtime.progress.step(f"{label}: {step.reason}")
                    elif run.paused_since:
                        started += runtime.clock.monotonic() - run.paused_since
                        run.paused_since = None
                        runtime.progress.step(f"{label}: resumed")
                    if run.paused_since is None and runtime.clock.monotonic() - started > limit:
                        phase = obs.endpoint.phase if obs.endpoint else "absent"
                        return Step(Action.FAILED, TIMED_OUT.format(seconds=limit, endpoint=target.endpoint_name,
                                                                    phase=phase))
                else:
                    if journal.record(prefix + step.action.value, IN_PROGRESS, step.reason):
                        runtime.progress.step(f"{label}: {prefix}{step.action.value}"
                                              + (f" ({step.reason})" if step.reason else ""))
                    _take(step, target, cloud, obs, policy=policy, alarm_requests=alarm_requests,
                          register_autoscaling=autoscale_apply)
            except CloudUnreachableError as err:
                # The cloud (or the ledger) could not be reached in this pass: the next pass observes
                # again and repeats what was not done (every step is idempotent).
                outage = _Outage.go_on(outage, err, runtime, label, poll_seconds)
                continue
            outage = None  # a whole pass went through
            if step.action in (Action.WAIT, Action.FORCE_ROLLBACK):
                wait_for_change(cloud, target.endpoint_name, obs.endpoint, runtime, poll_seconds=poll_seconds,
                                watch_seconds=watch_seconds, stop=stop)
    finally:
        if run.traffic is not None:
            run.traffic.stop()


@dataclass(frozen=True)
class _Outage:
    """Since when a region's rollout has not reached the cloud."""

    since: float

    @classmethod
    def go_on(cls, outage: _Outage | None, err: CloudUnreachableError, runtime: Runtime, label: str,
              poll_seconds: float) -> _Outage:
        """Wait one poll and return the outage, or raise ``err`` once it has lasted OUTAGE_POLLS polls."""
        now = runtime.clock.monotonic()
        tolerance = OUTAGE_POLLS * poll_seconds
        if outage is None:
            runtime.progress.step(OUTAGE.format(label=label, reason=err.message.removeprefix(f"{label}: "),
                                                seconds=tolerance))
            outage = cls(now)
        elif now - outage.since >= tolerance:
            raise err
        runtime.clock.sleep(poll_seconds)
        return outage


def wait_for_change(cloud: RegionCloud, endpoint: str, seen: EndpointView | None, runtime: Runtime, *,
                    poll_seconds: float, watch_seconds: float | None = None,
                    stop: threading.Event | None = None) -> None:
    """Wait until the next pass of a rollout: ``poll_seconds``, or less when, asked every
    ``watch_seconds``, DescribeEndpoint answers other than ``seen`` (its status, config, phases,
    weights or LastModifiedTime moved) or ``stop`` is set. Only the endpoint is watched: the pass
    reads everything else (model, config, alarms, pause/abort) at least every ``poll_seconds``. A
    call that fails ends the wait: the pass that follows meets the error and rides out an outage."""
    if watch_seconds is None or watch_seconds >= poll_seconds:
        runtime.clock.sleep(poll_seconds)
        return
    before = _comparable(seen)
    until = runtime.clock.monotonic() + poll_seconds
    while (left := until - runtime.clock.monotonic()) > 0:
        runtime.clock.sleep(min(watch_seconds, left))
        if stop is not None and stop.is_set():
            return
        try:
            now = cloud.endpoint(endpoint, with_tags=False)
        except ModelopsError:
            return
        if _comparable(now) != before:
            return


def alarm_figures(cloud: RegionCloud, names: Sequence[str]) -> str:
    """Why the rollback alarms in ALARM went there, as CloudWatch says it (the datapoints against the
    threshold: "Threshold Crossed: 1 out of the last 1 datapoints [0.42] were greater than the
    threshold (0.05) ..."); "" when none is (or only modelops forced one, for an abort)."""
    try:
        alarms = cloud.alarms(tuple(names))
    except ModelopsError:  # figures are evidence, not a precondition: the rollback goes on without them
        return ""
    return "; ".join(ALARM_FIGURES.format(name=a.name, reason=a.reason) for a in alarms.values()
                     if a.state == "ALARM" and a.reason and not a.reason.startswith(FORCED_ALARM))


def _comparable(view: EndpointView | None) -> EndpointView | None:
    """What DescribeEndpoint alone says (the release tag is read with ListTags, by the pass)."""
    return replace(view, release_tag=None) if view is not None else None


def _note_phase(endpoint: EndpointView | None, journal: Journal, runtime: Runtime, label: str, run: _Run,
                prefix: str) -> None:
    """Record what the endpoint is doing when it changes (canary baking, rolling back...)."""
    if endpoint is None:
        return
    phase = endpoint.phase
    if phase == run.last_phase:
        return
    run.last_phase = phase
    if endpoint.status == ROLLING_BACK and not journal.seen("rolling-back"):
        journal.record("rolling-back", IN_PROGRESS, endpoint.failure_reason or "")
        runtime.progress.step(f"{label}: rolling back ({endpoint.failure_reason or 'alarm'})")
        return
    if endpoint.status != IN_SERVICE:
        journal.record(prefix + "observed", IN_PROGRESS, phase, key=f"{prefix}observed:{phase}")
        runtime.progress.step(f"{label}: {phase}")


def _autoscaling_hooks(target: specs.RegionTarget, cloud: RegionCloud
                       ) -> tuple[Callable[[], bool | None] | None, Callable[[], None] | None]:
    """Application Auto Scaling applies on AWS only (the local cloud has no instances to scale)."""
    resources = target.model.resources_for(target.environment.name)
    if target.environment.is_local or resources.autoscaling is None:
        return None, None
    from modelops.deploy import autoscaling

    return (lambda: autoscaling.is_in_place(cloud, target)), (lambda: autoscaling.register(cloud, target))


# -- environments and waves ------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentRollout:
    """One environment's rollout of one release: a target per region and the context to run it.
    ``actor`` is who runs it (recorded as who blocked a release that rolled back)."""

    targets: dict[str, specs.RegionTarget]
    previous_targets: Callable[[str, str], specs.RegionTarget | None]  # (region, release) -> target
    roll_back_completed_regions: bool
    actor: str = ""  # who runs it ("tester@example.com ($MODELOPS_USER, unauthenticated)"), as the ledger says
    judge: JudgeSetup | None = None  # a judged canary's inputs and margins (strategy judged_canary)


def reconcile_environment(
    rollout: EnvironmentRollout,
    *,
    clients: Clients,
    ledger: Ledger,
    runtime: Runtime,
    traffic: TrafficStarter | None = None,
    poll_seconds: float = 1.0,
    watch_seconds: float | None = None,
    regions: Sequence[str] | None = None,
) -> tuple[RegionOutcome, ...]:
    """Roll the release out wave by wave; see the module docstring."""
    any_target = next(iter(rollout.targets.values()))
    env = any_target.environment
    wanted = set(regions or env.regions)
    outcomes: dict[str, RegionOutcome] = {}
    moved: list[str] = []  # regions that now serve the new release
    halted: str | None = None
    # Make every region's clients before the first wave: the factory makes them one at a time under a
    # lock, which would otherwise stall the hand-over between waves by a few hundred ms per client.
    for region in (r for r in env.regions if r in wanted):
        for service in ROLLOUT_SERVICES:
            clients.client(service, region)
    for wave in env.waves:
        wave_regions = [r for r in wave if r in wanted]
        if not wave_regions:
            continue
        if halted is not None:
            for region in wave_regions:
                t = rollout.targets[region]
                outcomes[region] = RegionOutcome(env.name, region, t.endpoint_name, t.release, SKIPPED,
                                                 NOT_TOUCHED.format(reason=halted))
            continue
        results = _run_parallel(wave_regions, lambda region, stop: _region(
            rollout, region, clients, ledger, runtime, traffic=traffic, poll_seconds=poll_seconds,
            watch_seconds=watch_seconds, stop=stop))
        for region in wave_regions:
            outcomes[region] = results[region]
            if results[region].status == SUCCEEDED:
                moved.append(region)
        halted = halt_reason([results[r] for r in wave_regions])
    if halted is not None and rollout.roll_back_completed_regions and moved:
        why = halted
        restored = _run_parallel(moved, lambda region, stop: restore_region(
            rollout, region, outcomes[region], clients, ledger, runtime, poll_seconds=poll_seconds,
            watch_seconds=watch_seconds, why=why))
        outcomes.update(restored)
    return tuple(outcomes[r] for r in env.regions if r in outcomes)


def halt_reason(outcomes: Sequence[RegionOutcome]) -> str | None:
    """Why a rollout stopped (the first region that did not succeed), or None when none failed."""
    for outcome in outcomes:
        if outcome.status in (FAILED, ROLLED_BACK):
            return f"{outcome.status.replace('_', ' ')} in {outcome.region}: {outcome.detail}"
    return None


def _run_parallel(regions: Sequence[str], work: Callable[[str, threading.Event], RegionOutcome]
                  ) -> dict[str, RegionOutcome]:
    """``work`` for each region, in parallel threads. On Ctrl-C (in the main thread) the other
    threads are told to stop at their next pass (``work``'s event) and waited for, so the process
    ends instead of waiting for every region's rollout to finish."""
    stop = threading.Event()
    if len(regions) == 1:
        return {regions[0]: work(regions[0], stop)}
    pool = ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="modelops-region")
    try:
        futures = {r: pool.submit(work, r, stop) for r in regions}
        return {r: f.result() for r, f in futures.items()}
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _region(rollout: EnvironmentRollout, region: str, clients: Clients, ledger: Ledger, runtime: Runtime, *,
            traffic: TrafficStarter | None, poll_seconds: float, watch_seconds: float | None = None,
            stop: threading.Event | None = None) -> RegionOutcome:
    target = rollout.targets[region]
    env = target.environment.name
    cloud = RegionCloud(clients, target.region)
    if is_converged(target, cloud, ledger, runtime):
        runtime.progress.step(f"{env}/{target.region}: serving {target.release} already")
        return RegionOutcome(env, target.region, target.endpoint_name, target.release, SUCCEEDED,
                             f"serving {target.release} already", None, target.release)
    return run_region(rollout, region, cloud, ledger, runtime, traffic=traffic, poll_seconds=poll_seconds,
                      watch_seconds=watch_seconds, stop=stop)


def run_region(rollout: EnvironmentRollout, region: str, cloud: RegionCloud, ledger: Ledger, runtime: Runtime, *,
               traffic: TrafficStarter | None = None, poll_seconds: float, watch_seconds: float | None = None,
               stop: threading.Event | None = None) -> RegionOutcome:
    """Reconcile one region to the rollout's target and record how it ended: its terminal step, and
    a block of the release in the environment when it rolled back (a rollback by SageMaker, or an
    abort, which takes back a region the update went through in)."""
    target = rollout.targets[region]
    env = target.environment.name
    journal = Journal(ledger, model=target.model.name, environment=env, region=region,
                      release=target.release, endpoint=target.endpoint_name, actor=rollout.actor)
    judged: tuple[JudgedStep, ...] = ()
    try:
        step, judged = _judged_canary(rollout, region, cloud, journal, runtime, poll_seconds=poll_seconds,
                                      watch_seconds=watch_seconds, stop=stop)
        if step is None:
            step = reconcile_region(target, cloud, journal, runtime, traffic=traffic, poll_seconds=poll_seconds,
                                    watch_seconds=watch_seconds, stop=stop)
    except ModelopsError as err:
        # Cloud errors name their env/region; every line that shows the reason names it already.
        step = Step(Action.FAILED, err.message.removeprefix(f"{env}/{target.region}: "))
    previous = journal.previous_release
    abort = journal.control().abort
    by = abort.by if abort is not None else (rollout.actor or "unknown")
    if step.action == Action.ABORTED:
        return _take_back(rollout, region, cloud, journal, runtime, step.reason, previous, by, poll_seconds,
                          watch_seconds)
    status = {Action.SUCCEEDED: SUCCEEDED, Action.ROLLED_BACK: ROLLED_BACK}.get(step.action, FAILED)
    detail = step.reason if status != SUCCEEDED else f"serving {target.release}"
    journal.record(status, status, step.reason, previous_release=previous)
    runtime.progress.step(f"{env}/{target.region}: {status.replace('_', ' ')}" + (f": {step.reason}" if step.reason else ""))
    if status == ROLLED_BACK:
        block_release(ledger, target, by=by, reason=f"rolled back in {region}: {step.reason}")
    serving = target.release if status == SUCCEEDED else previous
    return RegionOutcome(env, target.region, target.endpoint_name, target.release, status, detail, previous, serving,
                         judged)


def _judged_canary(rollout: EnvironmentRollout, region: str, cloud: RegionCloud, journal: Journal, runtime: Runtime, *,
                   poll_seconds: float, watch_seconds: float | None = None,
                   stop: threading.Event | None) -> tuple[Step | None, tuple[JudgedStep, ...]]:
    """Judge the candidate against the serving release step by step when the strategy is judged_canary
    and something serves (``modelops.deploy.judged``); (None, steps) when the reconcile loop goes on."""
    from modelops.deploy import judged

    target = rollout.targets[region]
    if rollout.judge is None:
        return None, ()
    endpoint = cloud.endpoint(target.endpoint_name)
    if not judged.applies(target, endpoint):
        return None, ()
    previous = journal.previous_release or (endpoint.serving_release if endpoint else None)
    reference = rollout.previous_targets(region, previous) if previous else None
    label = f"{target.environment.name}/{region}"
    if reference is None:
        runtime.progress.step(f"{label}: no known release serves {target.endpoint_name}: nothing to judge against")
        return None, ()
    if not journal.started:
        _start(target, journal, runtime, previous, how=", judged step by step")
    return judged.run(target, reference, cloud, journal, runtime, rollout.judge, poll_seconds=poll_seconds,
                      watch_seconds=watch_seconds, stop=stop)


def _take_back(rollout: EnvironmentRollout, region: str, cloud: RegionCloud, journal: Journal, runtime: Runtime,
               why: str, previous: str | None, by: str, poll_seconds: float,
               watch_seconds: float | None = None) -> RegionOutcome:
    """An aborted rollout that SageMaker did not roll back: take the region back to what it served
    before when the update went through (else nothing moved), and block the release."""
    target = rollout.targets[region]
    env = target.environment.name
    label = f"{env}/{region}"
    ep = cloud.endpoint(target.endpoint_name)
    moved = ep is not None and ep.config_name == target.endpoint_config_name
    block_release(journal.ledger, target, by=by, reason=f"{why} (in {region})")
    back = rollout.previous_targets(region, previous) if moved and previous else None
    if moved and back is None:
        detail = f"{why}; nothing served {target.endpoint_name} before {target.release}, so it stays"
        journal.record(FAILED, FAILED, detail, previous_release=previous)
        runtime.progress.step(f"{label}: {detail}")
        return RegionOutcome(env, region, target.endpoint_name, target.release, FAILED, detail, previous,
                             target.release)
    if back is not None:
        runtime.progress.step(f"{label}: {why}: rolling back to {previous}")
        failure = restore_release(back, cloud, journal, runtime, poll_seconds=poll_seconds,
                                  watch_seconds=watch_seconds, note=f"{why}; rolled back to {previous}")
        if failure is not None:
            return RegionOutcome(env, region, target.endpoint_name, target.release, FAILED,
                                 f"rolling back to {previous} failed: {failure}", previous, target.release)
        runtime.progress.step(f"{label}: rolled back to {previous}")
        return RegionOutcome(env, region, target.endpoint_name, target.release, ROLLED_BACK,
                             f"{why}; rolled back to {previous}", previous, previous)
    journal.record(ROLLED_BACK, ROLLED_BACK, f"{why} before the update", previous_release=previous)
    runtime.progress.step(f"{label}: {why} before the update: nothing moved")
    return RegionOutcome(env, region, target.endpoint_name, target.release, ROLLED_BACK,
                         f"{why} before the update", previous, previous)


def block_release(ledger: Ledger, target: specs.RegionTarget, *, by: str, reason: str) -> None:
    """Refuse ``target.release`` in its environment from now on (it was rolled back in ``target.region``):
    deploy, promote, plan and sync will not roll it out there again until it is unblocked. Once per block."""
    ledger.record_block(ReleaseBlock(target.model.name, target.release, target.environment.name, True, by, reason,
                                     region=target.region))


def is_converged(target: specs.RegionTarget, cloud: RegionCloud, ledger: Ledger, runtime: Runtime) -> bool:
    """The region serves ``target`` as declared (no drift, :mod:`~modelops.deploy.drift`) and its last
    rollout there finished: nothing to do, nothing to record."""
    from modelops.deploy.observed import observe_region

    state = ledger.current(target.model.name, target.environment.name, target.region)
    if state is None or state.release != target.release or state.in_progress:
        return False
    observed = observe_region(cloud, target.model, target.environment, releases=(target.release,),
                              now=runtime.clock.now(), with_metrics=False)
    return observed.status == IN_SERVICE and not drift.is_drifted(drift.region_diff(target, observed))


def restore_region(rollout: EnvironmentRollout, region: str, outcome: RegionOutcome, clients: Clients, ledger: Ledger,
                   runtime: Runtime, *, poll_seconds: float, watch_seconds: float | None = None,
                   why: str) -> RegionOutcome:
    """Take a region that moved back to the release it served before (``roll_back_completed_regions``):
    one this rollout moved, or one another run moved (a single-region deploy whose region rolled back)."""
    previous = outcome.previous_release
    target = rollout.targets[region]
    env = target.environment.name
    journal = Journal(ledger, model=target.model.name, environment=env, region=region, release=target.release,
                      endpoint=target.endpoint_name)
    back = rollout.previous_targets(region, previous) if previous else None
    if back is None:
        detail = f"cannot roll back: no release served {target.endpoint_name} before {target.release}"
        return replace(outcome, detail=detail)
    runtime.progress.step(f"{env}/{region}: rolling back to {previous} ({why})")
    detail = f"rolled back to {previous} because the rollout {why}"
    failure = restore_release(back, RegionCloud(clients, region), journal, runtime, poll_seconds=poll_seconds,
                              watch_seconds=watch_seconds, note=detail)
    block_release(ledger, target, by=rollout.actor or "unknown", reason=detail)
    if failure is not None:
        return replace(outcome, status=FAILED, detail=f"rolling back to {previous} failed: {failure}")
    runtime.progress.step(f"{env}/{region}: rolled back to {previous}")
    return replace(outcome, status=ROLLED_BACK, detail=detail, serving=previous)


def restore_release(back: specs.RegionTarget, cloud: RegionCloud, journal: Journal, runtime: Runtime, *,
                    poll_seconds: float, watch_seconds: float | None = None, note: str) -> str | None:
    """Converge a region back to ``back``, a release that served there before (all at once, no alarms),
    and record the end in ``journal``: rolled back with ``note``, or failed. None once the region
    serves ``back``, else why it does not. The one way both rollback paths (``modelops rollback`` and
    :func:`restore_region`) take a region back."""
    try:
        step = reconcile_region(back, cloud, journal, runtime, restore=True, poll_seconds=poll_seconds,
                                watch_seconds=watch_seconds)
    except ModelopsError as err:
        step = Step(Action.FAILED, err.message)
    if step.action != Action.SUCCEEDED:
        journal.record(FAILED, FAILED, f"rolling back to {back.release} failed: {step.reason}",
                       previous_release=back.release)
        return step.reason
    journal.record(ROLLED_BACK, ROLLED_BACK, note, previous_release=back.release)
    return None
