"""Rollout strategies in one place: the table every reader of a rollout policy uses.

A **rollout** moves an endpoint from the release it serves to a new one by SageMaker's blue/green
traffic shifting. Which strategies exist, what SageMaker calls them, how a ``step_size`` turns into
instances, which sizes SageMaker accepts and how long an update waits are written here once, as
data (:data:`STRATEGIES`), and read by:

- the schemas (``modelops.config.schema`` fills the ``strategy`` enum from the table's names);
- validate (``modelops.policy.rollout``: :func:`problems` of each environment's policy, and of every
  model's effective policy with its effective instance count, as findings);
- deploy and plan (``modelops.deploy.specs``: the same :func:`problems` refuse a policy before any
  call, and :func:`routing` builds ``TrafficRoutingConfiguration`` of the ``DeploymentConfig``).

Size arithmetic (one, everywhere): a ``CAPACITY_PERCENT`` step activates
``floor(instance_count * percent / 100)`` instances but at least one (an instance cannot be split:
50% of 1 instance is that 1 instance, all of the fleet; 50% of 3 is 1), an ``INSTANCE_COUNT`` step
its value; the step's **share** is those instances over the instance count. Both the percent itself
and the share must be within the strategy's range; without an instance count (an environment's own
policy, before any model) only the percent can be checked.

Adding a strategy: add a :class:`Strategy` row. The schemas, validate, plan and the
``DeploymentConfig`` builder pick it up. A strategy that SageMaker does not run by itself (say, a
multi-step canary judged by modelops between ``UpdateEndpointWeightsAndCapacities`` calls on a
two-variant endpoint) is a row whose ``routing`` is None and whose ``steps`` are its traffic shares;
the deploy side then needs its driver (see :attr:`Strategy.routing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

INSTANCE_COUNT = "INSTANCE_COUNT"
CAPACITY_PERCENT = "CAPACITY_PERCENT"
SIZE_TYPES = (INSTANCE_COUNT, CAPACITY_PERCENT)

# SageMaker's limits on a blue/green DeploymentConfig (shared/specs, "Names and limits").
WAIT_MAX = 3600
TERMINATION_MAX = 3600
TIMEOUT_MIN, TIMEOUT_MAX = 600, 28800
#: CloudWatch accepts these alarm periods for standard resolution, besides multiples of 60.
ALARM_PERIODS = (10, 30)

# Rule ids of the problems (declared in modelops.policy.rules).
RULE_SIZE = "rollout.step-size"
RULE_TIMEOUT = "rollout.timeout"
RULE_LIMITS = "rollout.limits"
RULE_INCOMPLETE = "config.rollout"

#: The strategy modelops drives itself: two variants, weights shifted by step, each step judged
#: (modelops.deploy.judged). SageMaker's blue/green keeps the variant names, so this one is not blue/green.
JUDGED = "judged_canary"
#: A judged step needs a bake to measure in.
JUDGED_MIN_WAIT = 5
BAD_STEPS = ("{environment}: rollout.steps {steps} must rise and end at 100 (the candidate's percent of the "
             "traffic at each judged step)")
STEPS_HINT = "e.g. steps: [10, 50, 100]"
JUDGED_WAIT = ("{environment}: rollout.wait_interval_seconds {value} leaves a judged step no time to measure "
               "(at least {least} s)")

NO_SIZE = "{environment}: rollout.strategy {strategy} needs a step_size (the {words})"
NO_SIZE_HINT = "add step_size: {type: CAPACITY_PERCENT, value: ...} to the rollout, or use strategy all_at_once"
BAD_SIZE_VALUE = "{environment}: rollout.step_size {value} {type} is not a size (a value of at least 1, type {types})"
SIZE_OUTSIDE = "{environment}: the {words} {size} is {share:.0%} of the capacity; SageMaker allows {limit}"
SIZE_OF_FLEET = ("{environment}: the {words} {size} is {instances} of the {count} instance(s) ({share:.0%}); "
                 "SageMaker allows {limit} of them")
SIZE_HINT = "use a {words} of {limit} of the instances, or strategy all_at_once"
FLEET_HINT = "give {environment} at least {needed} instances (resources.instance_count), or another strategy or size"
BAD_WAIT = "{environment}: rollout.{field} {value} is outside SageMaker's 0..{limit} s"
BAD_TIMEOUT = "{environment}: rollout.max_execution_timeout_seconds {value} is outside SageMaker's 600..28800 s"
TIMEOUT_TOO_SHORT = ("{environment}: rollout.max_execution_timeout_seconds {value} does not exceed the {total} s "
                     "the rollout waits ({detail}); SageMaker would roll every update back")
TIMEOUT_HINT = "raise max_execution_timeout_seconds (600..28800) or shorten the waits"
BAD_PERIOD = "{environment}: rollout.alarms.period_seconds {value} is not 10, 30 or a multiple of 60"
LIMITS_HINT = "see `modelops schema environments` for the limits of each rollout value"


@dataclass(frozen=True)
class CapacitySize:
    """SageMaker's CapacitySize: ``INSTANCE_COUNT`` or ``CAPACITY_PERCENT``."""

    type: str
    value: int

    def instances(self, count: int) -> int:
        """The instances this size activates in a fleet of ``count``."""
        if self.type == INSTANCE_COUNT:
            return self.value
        return max(1, count * self.value // 100)

    def share(self, count: int | None) -> float | None:
        """The fraction of a fleet of ``count`` this size activates (None: it depends on a count not
        known); a percent's share without a count is the percent."""
        if count is None:
            return self.value / 100 if self.type == CAPACITY_PERCENT else None
        return self.instances(count) / count if count > 0 else None

    def __str__(self) -> str:
        return f"{self.value}%" if self.type == CAPACITY_PERCENT else f"{self.value} instance(s)"


@dataclass(frozen=True)
class Alarms:
    """Rollback alarms derived from SLOs: p99 ModelLatency and the 5xx rate."""

    p99_latency_ms: float | None = None
    error_rate_5xx: float | None = None
    period_seconds: int = 60
    evaluation_periods: int = 1


@dataclass(frozen=True)
class RolloutPolicy:
    """A complete rollout policy (blue/green traffic shifting). ``step_size`` is the canary size
    (canary) or the step (linear); None for all at once."""

    strategy: str = "all_at_once"
    step_size: CapacitySize | None = None
    wait_interval_seconds: int = 300
    termination_wait_seconds: int = 0
    max_execution_timeout_seconds: int = 3600
    alarms: Alarms = field(default_factory=Alarms)
    steps: tuple[int, ...] = ()  # judged_canary: the candidate's traffic percent at each judged step


@dataclass(frozen=True)
class RolloutOverride:
    """Rollout settings a model (or one of its environments) overrides; None: keep the policy's."""

    strategy: str | None = None
    step_size: CapacitySize | None = None
    wait_interval_seconds: int | None = None
    termination_wait_seconds: int | None = None
    max_execution_timeout_seconds: int | None = None
    alarms: Alarms | None = None
    steps: tuple[int, ...] | None = None

    def apply(self, policy: RolloutPolicy) -> RolloutPolicy:
        changes = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(policy, **changes)

    def sets(self, name: str) -> bool:
        return getattr(self, name) is not None


# -- the table ------------------------------------------------------------------------------------


def _one_bake(share: float) -> tuple[float, ...]:
    return (1.0,)


def _canary(share: float) -> tuple[float, ...]:
    return (share, 1.0)


def _linear(share: float) -> tuple[float, ...]:
    steps = math.ceil(1 / share - 1e-9)
    return tuple(min(1.0, share * k) for k in range(1, steps + 1))


@dataclass(frozen=True)
class Strategy:
    """One row of the table: a value of ``rollout.strategy`` and everything that follows from it.

    - ``routing``: ``TrafficRoutingConfiguration.Type`` of SageMaker's blue/green update (the
      ``DeploymentConfig`` builder sends it). None: a strategy SageMaker does not run by itself,
      driven by modelops (``judged_canary``: modelops.deploy.judged); its whole-fleet moves are
      all at once.
    - ``size_member``: the routing member holding ``step_size`` (``CanarySize``, ``LinearStepSize``);
      None: the strategy takes no size.
    - ``share_range``: the fraction of the fleet one step may activate (inclusive), as SageMaker
      allows it.
    - ``steps``: the traffic shares after each step, given the step's share; each step is followed by
      a bake of ``wait_interval_seconds``, so the update waits ``len(steps) * wait`` plus the
      termination wait. Its timeout must exceed that.
    """

    name: str
    routing: str | None
    summary: str
    steps: Callable[[float], tuple[float, ...]]
    size_member: str | None = None
    size_words: str = ""
    share_range: tuple[float, float] = (0.0, 1.0)
    limit_text: str = ""

    @property
    def takes_size(self) -> bool:
        return self.size_member is not None


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({s.name: s for s in (
    Strategy("all_at_once", "ALL_AT_ONCE", "all traffic moves to the new fleet at once, then one bake", _one_bake),
    Strategy("canary", "CANARY", "a canary share of the new fleet takes traffic and bakes, then the rest",
             _canary, size_member="CanarySize", size_words="canary size", share_range=(0.0, 0.5),
             limit_text="at most 50%"),
    Strategy("linear", "LINEAR", "equal steps of the new fleet take traffic, each followed by a bake",
             _linear, size_member="LinearStepSize", size_words="linear step", share_range=(0.1, 0.5),
             limit_text="10%..50%"),
    Strategy(JUDGED, None, "the new release joins the serving one as a second variant and takes the "
             "traffic percents of rollout.steps one after the other; modelops judges each step against the "
             "serving release (latency, errors, answers) and rolls back on a fail", _one_bake),
)})


def strategy(name: str) -> Strategy:
    """The row of ``name`` (the schemas admit only the table's names; anything else is a bug)."""
    return STRATEGIES[name]


# -- what SageMaker would refuse, or roll back ----------------------------------------------------


@dataclass(frozen=True)
class RolloutProblem:
    """One reason a rollout policy would be refused (or roll every update back). ``field`` is the
    rollout key at fault (``step_size``, ``max_execution_timeout_seconds``, ...), or
    ``instance_count`` when the size is fine but the fleet is too small for it."""

    rule: str
    field: str
    message: str
    hint: str = ""


def _share_ok(row: Strategy, share: float) -> bool:
    low, high = row.share_range
    return low - 1e-9 <= share <= high + 1e-9 and share > 0


def _fewest_instances(row: Strategy, size: CapacitySize) -> int | None:
    """The smallest fleet in which ``size`` is a valid step of ``row`` (None: none up to 1000)."""
    return next((n for n in range(1, 1001) if _share_ok(row, size.instances(n) / n)), None)


def fewest_instances(policy: RolloutPolicy) -> int:
    """The smallest instance count ``policy``'s steps fit in (1 for a strategy without a size, or a
    size that fits no fleet: :func:`problems` says what is wrong with it then)."""
    row = strategy(policy.strategy)
    if not row.takes_size or policy.step_size is None:
        return 1
    return _fewest_instances(row, policy.step_size) or 1


def total_wait(policy: RolloutPolicy, instance_count: int | None = None) -> tuple[int, str] | None:
    """The seconds an update under ``policy`` spends baking and waiting, and how that was counted
    (None when it depends on an instance count not known)."""
    row = strategy(policy.strategy)
    wait, term = policy.wait_interval_seconds, policy.termination_wait_seconds
    share = 1.0
    if row.takes_size:
        if policy.step_size is None:
            return None
        found = policy.step_size.share(instance_count)
        if found is None or not found > 0:
            return None
        share = min(1.0, found)
    bakes = len(row.steps(share))
    what = "a bake" if bakes == 1 else f"{bakes} bakes"
    return bakes * wait + term, f"{what} of {wait} s + {term} s termination wait"


def problems(policy: RolloutPolicy, *, environment: str, instance_count: int | None = None) -> list[RolloutProblem]:
    """Every reason SageMaker would refuse ``policy`` in a fleet of ``instance_count`` (None: only
    what holds whatever the count), or would roll every update back. Empty: the policy is fine."""
    out: list[RolloutProblem] = []
    for name, value, limit in (("wait_interval_seconds", policy.wait_interval_seconds, WAIT_MAX),
                               ("termination_wait_seconds", policy.termination_wait_seconds, TERMINATION_MAX)):
        if not 0 <= value <= limit:
            out.append(RolloutProblem(RULE_LIMITS, name, BAD_WAIT.format(
                environment=environment, field=name, value=value, limit=limit), LIMITS_HINT))
    timeout = policy.max_execution_timeout_seconds
    if not TIMEOUT_MIN <= timeout <= TIMEOUT_MAX:
        out.append(RolloutProblem(RULE_LIMITS, "max_execution_timeout_seconds",
                                  BAD_TIMEOUT.format(environment=environment, value=timeout), LIMITS_HINT))
    period = policy.alarms.period_seconds
    if period not in ALARM_PERIODS and (period <= 0 or period % 60):
        out.append(RolloutProblem(RULE_LIMITS, "alarms", BAD_PERIOD.format(environment=environment, value=period),
                                  LIMITS_HINT))
    row = strategy(policy.strategy)
    out.extend(_steps_problems(policy, environment))
    size = policy.step_size
    if row.takes_size:
        if size is None:
            out.append(RolloutProblem(RULE_INCOMPLETE, "strategy", NO_SIZE.format(
                environment=environment, strategy=row.name, words=row.size_words), NO_SIZE_HINT))
        elif size.value < 1 or size.type not in SIZE_TYPES:
            out.append(RolloutProblem(RULE_SIZE, "step_size", BAD_SIZE_VALUE.format(
                environment=environment, value=size.value, type=size.type, types=" or ".join(SIZE_TYPES))))
        else:
            out.extend(_size_problems(row, size, environment, instance_count))
    if not any(p.field == "max_execution_timeout_seconds" for p in out):
        counted = total_wait(policy, instance_count)
        if counted is not None and timeout <= counted[0]:
            out.append(RolloutProblem(RULE_TIMEOUT, "max_execution_timeout_seconds", TIMEOUT_TOO_SHORT.format(
                environment=environment, value=timeout, total=counted[0], detail=counted[1]), TIMEOUT_HINT))
    return out


def judged_steps(policy: RolloutPolicy) -> tuple[int, ...]:
    """The candidate's traffic percents of a judged canary, one per judged step (default 10, 50, 100)."""
    return policy.steps or (10, 50, 100)


def _steps_problems(policy: RolloutPolicy, environment: str) -> list[RolloutProblem]:
    if policy.strategy != JUDGED:
        # Other strategies ignore steps: a model that overrides the environment's judged canary with
        # another strategy inherits the environment's steps.
        return []
    out = []
    steps = judged_steps(policy)
    if list(steps) != sorted(set(steps)) or steps[-1] != 100 or steps[0] < 1:
        out.append(RolloutProblem(RULE_LIMITS, "steps", BAD_STEPS.format(environment=environment, steps=list(steps)),
                                  STEPS_HINT))
    if policy.wait_interval_seconds < JUDGED_MIN_WAIT:
        out.append(RolloutProblem(RULE_LIMITS, "wait_interval_seconds", JUDGED_WAIT.format(
            environment=environment, value=policy.wait_interval_seconds, least=JUDGED_MIN_WAIT), LIMITS_HINT))
    return out


def _size_problems(row: Strategy, size: CapacitySize, environment: str,
                   count: int | None) -> list[RolloutProblem]:
    if size.type == CAPACITY_PERCENT and not _share_ok(row, size.value / 100):  # whatever the fleet
        return [RolloutProblem(RULE_SIZE, "step_size", SIZE_OUTSIDE.format(
            environment=environment, words=row.size_words, size=size, share=size.value / 100, limit=row.limit_text),
            SIZE_HINT.format(words=row.size_words, limit=row.limit_text))]
    share = size.share(count)
    if count is None or share is None or _share_ok(row, share):
        return []
    message = SIZE_OF_FLEET.format(environment=environment, words=row.size_words, size=size,
                                   instances=size.instances(count), count=count, share=share, limit=row.limit_text)
    needed = _fewest_instances(row, size)
    if needed is not None and needed > count:
        # The size is fine for a bigger fleet: the instance count is what to change.
        return [RolloutProblem(RULE_SIZE, "instance_count", message,
                               FLEET_HINT.format(environment=environment, needed=needed))]
    return [RolloutProblem(RULE_SIZE, "step_size", message, SIZE_HINT.format(words=row.size_words,
                                                                             limit=row.limit_text))]


def routing(policy: RolloutPolicy) -> dict[str, Any]:
    """``TrafficRoutingConfiguration`` of a blue/green ``DeploymentConfig`` for ``policy`` (check it
    with :func:`problems` first)."""
    row = strategy(policy.strategy)
    # A strategy modelops drives (judged_canary) hands over to SageMaker only for moves of the whole
    # fleet (a first endpoint, a re-deploy onto the same variants): all at once, then a bake.
    out: dict[str, Any] = {"Type": row.routing or "ALL_AT_ONCE", "WaitIntervalInSeconds": policy.wait_interval_seconds}
    if row.size_member is not None and policy.step_size is not None:
        out[row.size_member] = {"Type": policy.step_size.type, "Value": policy.step_size.value}
    return out


# -- building from a schema-valid document --------------------------------------------------------


def _alarms(d: Mapping[str, Any] | None) -> Alarms | None:
    if d is None:
        return None
    return Alarms(
        p99_latency_ms=d.get("p99_latency_ms"),
        error_rate_5xx=d.get("error_rate_5xx"),
        period_seconds=d.get("period_seconds", 60),
        evaluation_periods=d.get("evaluation_periods", 1),
    )


def _size(d: Mapping[str, Any] | None) -> CapacitySize | None:
    return None if d is None else CapacitySize(d["type"], d["value"])


def rollout_override(d: Mapping[str, Any] | None) -> RolloutOverride:
    """The rollout keys a document sets (``rollout:`` of an environment, a model or a model's
    environment override)."""
    d = d or {}
    return RolloutOverride(
        strategy=d.get("strategy"),
        step_size=_size(d.get("step_size")),
        wait_interval_seconds=d.get("wait_interval_seconds"),
        termination_wait_seconds=d.get("termination_wait_seconds"),
        max_execution_timeout_seconds=d.get("max_execution_timeout_seconds"),
        alarms=_alarms(d.get("alarms")),
        steps=tuple(d["steps"]) if d.get("steps") is not None else None,
    )
