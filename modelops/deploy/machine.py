"""The rollout step machine of one region: what was observed -> the one next step. Pure.

Words (defined once, here):

- **target**: the release a region should serve, as endpoint config ``target_config``;
- **attempt**: one run of a rollout of a target in a region, from its first step to its terminal one
  (succeeded, rolled_back, failed). A crashed run has no terminal step, so the re-run continues the
  same attempt; its steps are found in the ledger by the attempt number;
- **observation**: what the cloud says now (model, config, alarms, endpoint) plus what the ledger says
  this attempt already asked for (when CreateEndpoint/UpdateEndpoint were sent, whether a
  RollingBack was seen) and what people asked of it (``control``: pause, resume, abort, promote,
  recorded by ``modelops rollout ...``).

Control is consulted at every pass, before every step: an abort rolls back now (forcing a rollback
alarm while SageMaker bakes, or taking the region back once the update is through); a pause holds
before the next step that moves traffic (SageMaker cannot pause an update of its own once sent);
promote means nothing more to a SageMaker-managed update, which has no API to end a bake early.
A modelops-managed canary (weights shifted step by step) consults the same ``control`` at each step.

A rolled-back update ends with the endpoint InService on the OLD config; waiting for InService alone
would call that a success (the spec). So an endpoint InService on another config after this attempt
sent its UpdateEndpoint, or a RollingBack seen on the way, is a rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modelops.ledger.records import RolloutControl

# EndpointStatus values (the spec).
IN_SERVICE = "InService"
CREATING = "Creating"
UPDATING = "Updating"
SYSTEM_UPDATING = "SystemUpdating"
ROLLING_BACK = "RollingBack"
DELETING = "Deleting"
FAILED = "Failed"
OUT_OF_SERVICE = "OutOfService"
UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
BUSY = frozenset({CREATING, UPDATING, SYSTEM_UPDATING, ROLLING_BACK, DELETING})

# The update call and the endpoint's LastModifiedTime come from two clocks (this machine's and the
# service's); an update counts as having happened when the endpoint changed after we asked, give or
# take this much skew.
CLOCK_SKEW_SECONDS = 2.0


class Action(StrEnum):
    CREATE_MODEL = "create-model"
    CREATE_CONFIG = "create-endpoint-config"
    PUT_ALARMS = "put-alarms"
    CREATE_ENDPOINT = "create-endpoint"
    UPDATE_ENDPOINT = "update-endpoint"
    DELETE_ENDPOINT = "delete-endpoint"
    TAG_ENDPOINT = "tag-endpoint"
    SCALE = "register-autoscaling"
    SET_CAPACITY = "set-capacity"
    FORCE_ROLLBACK = "force-rollback-alarm"
    WAIT = "wait"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    ABORTED = "aborted"  # abort asked and nothing more to wait for: the caller takes the region back if it moved


TERMINAL = frozenset({Action.SUCCEEDED, Action.ROLLED_BACK, Action.FAILED, Action.ABORTED})
#: Steps that change what serves: a pause holds before them.
MOVES_TRAFFIC = frozenset({Action.CREATE_ENDPOINT, Action.UPDATE_ENDPOINT, Action.DELETE_ENDPOINT,
                           Action.SET_CAPACITY})


@dataclass(frozen=True)
class VariantWeight:
    """Traffic of one fleet: ``fleet`` is ``blue`` (serving) or ``green`` (pending deployment)."""

    fleet: str
    config: str
    variant: str
    current_weight: float
    desired_weight: float
    instances: int
    statuses: tuple[str, ...] = ()
    desired_instances: int | None = None
    messages: tuple[str, ...] = ()  # the VariantStatus messages ("Baking for 600 seconds ...")


@dataclass(frozen=True)
class EndpointView:
    """The parts of DescribeEndpoint a rollout decides on."""

    name: str
    status: str
    config_name: str
    last_modified: float
    failure_reason: str | None = None
    pending_config: str | None = None
    weights: tuple[VariantWeight, ...] = ()
    release_tag: str | None = None
    deployment_config: Mapping[str, Any] | None = None  # LastDeploymentConfig

    @property
    def serving_release(self) -> str | None:
        """The release this endpoint serves: its tag, once it has been up. A Creating, Failed or
        OutOfService endpoint's tag names the release it was created for, which never served (so a
        later rollout must not record it as the release to go back to)."""
        up = self.status in (IN_SERVICE, UPDATING, SYSTEM_UPDATING, ROLLING_BACK, UPDATE_ROLLBACK_FAILED)
        return self.release_tag if up else None

    @property
    def phase(self) -> str:
        """A short text of where an update is: status plus the green fleet's variant statuses."""
        green = [w for w in self.weights if w.fleet == "green"]
        if not green:
            return self.status
        g = green[0]
        detail = "/".join(g.statuses) or "pending"
        return f"{self.status}: green {detail}, weight {g.current_weight:g} of {g.desired_weight:g}"


@dataclass(frozen=True)
class RegionObservation:
    target_config: str
    target_release: str
    model_exists: bool
    config_exists: bool
    alarms_in_place: bool
    endpoint: EndpointView | None
    create_sent_at: float | None = None
    update_sent_at: float | None = None
    delete_sent_at: float | None = None
    rolling_back_seen: bool = False
    alarms_firing: tuple[str, ...] = ()  # rollback alarms in ALARM (only when the rollout bakes)
    autoscaling_in_place: bool | None = None  # None: not applicable (the local cloud)
    capacity_in_place: bool = True  # the serving variant's count and weight as declared
    rollback_alarms: tuple[str, ...] = ()  # the alarms this rollout's DeploymentConfig names
    control: RolloutControl = field(default_factory=RolloutControl)


@dataclass(frozen=True)
class Step:
    action: Action
    reason: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.action in TERMINAL


def _changed_since(endpoint: EndpointView, sent_at: float | None) -> bool:
    return sent_at is not None and endpoint.last_modified >= sent_at - CLOCK_SKEW_SECONDS


def next_step(obs: RegionObservation) -> Step:
    """The one next step of the rollout of ``obs.target_config`` (argo-rollouts' GetCurrentCanaryStep),
    as ``obs.control`` allows."""
    control = obs.control
    if control.abort is not None:
        return _aborting(obs, _said("aborted", control.abort.by, control.abort.reason))
    step = _next(obs)
    if control.paused is not None and step.action in MOVES_TRAFFIC:
        return Step(Action.WAIT, _said("paused", control.paused.by, control.paused.reason)
                    + f"; holding before {step.action.value}")
    return step


def _said(what: str, by: str, reason: str) -> str:
    return f"{what} by {by}" + (f": {reason}" if reason else "")


def _aborting(obs: RegionObservation, why: str) -> Step:
    ep = obs.endpoint
    if ep is None:
        return Step(Action.ABORTED, why)
    if ep.status in BUSY:
        if ep.status == UPDATING and ep.pending_config == obs.target_config and obs.rollback_alarms:
            # SageMaker has no call to stop an update; a rollback alarm in ALARM while it bakes makes
            # it roll back. Forced again each pass: the alarm is re-evaluated every period.
            return Step(Action.FORCE_ROLLBACK, why)
        return Step(Action.WAIT, f"{why}; waiting for the endpoint to leave {ep.status}")
    if ep.config_name != obs.target_config and (obs.rolling_back_seen or _changed_since(ep, obs.update_sent_at)):
        return Step(Action.ROLLED_BACK, why)
    return Step(Action.ABORTED, why)


def _next(obs: RegionObservation) -> Step:
    if not obs.model_exists:
        return Step(Action.CREATE_MODEL)
    if not obs.config_exists:
        return Step(Action.CREATE_CONFIG)
    if not obs.alarms_in_place:
        return Step(Action.PUT_ALARMS)
    ep = obs.endpoint
    if ep is None:
        return Step(Action.CREATE_ENDPOINT)
    if ep.status in BUSY:
        return Step(Action.WAIT, ep.phase)
    if ep.status == UPDATE_ROLLBACK_FAILED:
        return Step(Action.FAILED, f"the rollback itself failed: {ep.failure_reason or 'no reason given'}")
    if ep.status in (FAILED, OUT_OF_SERVICE):
        if ep.config_name == obs.target_config and _changed_since(ep, obs.create_sent_at):
            return Step(Action.FAILED, ep.failure_reason or f"endpoint {ep.name} is {ep.status}")
        # A Failed endpoint can only be deleted (the spec); this attempt then creates it afresh.
        return Step(Action.DELETE_ENDPOINT, f"endpoint {ep.name} is {ep.status}: {ep.failure_reason or ''}".strip())
    # InService
    if ep.config_name == obs.target_config:
        if ep.release_tag != obs.target_release:
            return Step(Action.TAG_ENDPOINT)
        if not obs.capacity_in_place:
            if obs.rolling_back_seen:  # SageMaker refused the change of counts or weights
                return Step(Action.FAILED, f"the change of instance counts and weights was rolled back: "
                                           f"{ep.failure_reason or 'no reason given'}")
            return Step(Action.SET_CAPACITY)
        if obs.autoscaling_in_place is False:
            return Step(Action.SCALE)
        return Step(Action.SUCCEEDED)
    if obs.rolling_back_seen or _changed_since(ep, obs.update_sent_at):
        return Step(Action.ROLLED_BACK, ep.failure_reason or "the update was rolled back")
    if obs.alarms_firing:
        # An alarm already in ALARM would roll the update back the moment it starts baking; the
        # alarm is re-evaluated every period, so wait for it to settle first.
        return Step(Action.WAIT, f"alarm {', '.join(obs.alarms_firing)} in ALARM before the update")
    return Step(Action.UPDATE_ENDPOINT)
