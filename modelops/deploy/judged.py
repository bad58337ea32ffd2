"""The judged canary (strategy ``judged_canary``): the candidate joins the serving release as a second
variant of the same endpoint, takes the traffic percents of ``rollout.steps`` one after the other, and
at each step is judged against the serving release in the same window on the same inputs
(:mod:`modelops.verify.judge`): mirrored requests go to both variants with ``TargetVariant``, and each
variant's ``AWS/SageMaker`` figures are read from CloudWatch. A fail takes the traffic back from the
candidate at once and the endpoint back to the serving release's own config; a pass moves on; when
the last step (100%) passes, the reconcile loop moves the endpoint to the candidate's own config.

Why modelops drives it (and not SageMaker's blue/green canary): a blue/green update keeps the variant
names (the spec), so blue and green answer under the same variant, and neither ``TargetVariant`` nor
per-variant metrics can tell them apart; two variants can be compared, but changing the variants is
an update SageMaker does not watch with alarms. So modelops rolls back itself, and it also watches
the SLO alarms' figures while it judges.

Each step is a pass of a loop that can crash and be re-run: a re-run finds the endpoint on the
judging config and judges from the first step again (a judgment is measured, not remembered).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig, Workspace
from modelops.config import rollout as strategies
from modelops.config.cases import CaseRequest
from modelops.deploy import specs
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.machine import BUSY, IN_SERVICE, Action, EndpointView, Step
from modelops.errors import InputError
from modelops.ledger.records import FAILED, IN_PROGRESS, SUCCEEDED
from modelops.runtime import Runtime
from modelops.verify.judge import Judgment, JudgmentPolicy, Outcome, Verdict, judgment_policy, newcombe

if TYPE_CHECKING:
    from modelops.deploy.rollout import Journal
    from modelops.verify.mirror import Compare

CANDIDATE_VARIANT = "candidate"
#: The longest a change of variants or weights may take before the region fails.
CHANGE_LIMIT_SECONDS = 900.0
ROLLED_BACK_TEXT = "{summary}; traffic taken back from the candidate at once"
NO_INPUTS = ("{model}: no case expecting success: the judged canary in {environment} mirrors them to both "
             "releases, and has no request to mirror")
NO_INPUTS_HINT = "add a regression case expecting status 200 (tests/cases.yaml) or a replay file (spec.tests.replay)"


@dataclass(frozen=True)
class JudgeSetup:
    """What a judged canary compares with: the inputs mirrored to both variants (regression requests
    and the model's replay file), how two answers are compared, and the policy's margins."""

    inputs: tuple[CaseRequest, ...]
    compare: Compare
    policy: JudgmentPolicy


@dataclass(frozen=True)
class JudgedStep:
    percent: int
    judgment: Judgment

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, **self.judgment.to_dict()}


def judging_config_name(target: specs.RegionTarget) -> str:
    return naming.judging_config_name(target.model.name, target.environment.name, target.release)


def judging_config_request(target: specs.RegionTarget, reference: specs.RegionTarget) -> dict[str, Any]:
    """CreateEndpointConfig of the judging fleet: the serving release as the primary variant (all the
    traffic), the candidate beside it with none yet; security and data capture as the candidate's."""
    body = specs.create_endpoint_config_request(target)
    body["EndpointConfigName"] = judging_config_name(target)
    body["ProductionVariants"] = [
        {"VariantName": naming.PRIMARY_VARIANT, "ModelName": reference.model_name,
         "InitialInstanceCount": reference.instance_count, "InstanceType": reference.instance_type,
         "InitialVariantWeight": 1.0},
        {"VariantName": CANDIDATE_VARIANT, "ModelName": target.model_name,
         "InitialInstanceCount": target.instance_count, "InstanceType": target.instance_type,
         "InitialVariantWeight": 0.0},
    ]
    return body


def weights(percent: float) -> list[dict[str, Any]]:
    """DesiredWeightsAndCapacities giving the candidate ``percent`` of the traffic."""
    share = percent / 100
    return [{"VariantName": naming.PRIMARY_VARIANT, "DesiredWeight": round(1 - share, 6)},
            {"VariantName": CANDIDATE_VARIANT, "DesiredWeight": round(share, 6)}]


def _candidate_weight(ep: EndpointView) -> float | None:
    found = [w for w in ep.weights if w.variant == CANDIDATE_VARIANT]
    return found[0].current_weight if found else None


class _Stop(Exception):
    pass


@dataclass
class _Context:
    target: specs.RegionTarget
    reference: specs.RegionTarget
    cloud: RegionCloud
    journal: Journal
    runtime: Runtime
    setup: JudgeSetup
    poll: float
    stop: threading.Event | None
    label: str
    watch: float | None = None  # how often to ask DescribeEndpoint alone while the endpoint moves (repo.watch_seconds)

    def say(self, text: str) -> None:
        self.runtime.progress.step(f"{self.label}: {text}")

    def sleep(self, seconds: float) -> None:
        end = self.runtime.clock.monotonic() + seconds
        while (left := end - self.runtime.clock.monotonic()) > 0:
            if self.stop is not None and self.stop.is_set():
                raise _Stop
            self.runtime.clock.sleep(min(self.poll, left))

    def settle(self) -> EndpointView:
        """Wait for the endpoint to leave Creating/Updating/RollingBack."""
        started = self.runtime.clock.monotonic()
        while True:
            ep = self.cloud.endpoint(self.target.endpoint_name, with_tags=False)
            if ep is None:
                raise RuntimeError(f"endpoint {self.target.endpoint_name} is gone")
            if ep.status not in BUSY:
                return ep
            if self.runtime.clock.monotonic() - started > CHANGE_LIMIT_SECONDS:
                raise TimeoutError(f"endpoint {ep.name} still {ep.phase} after {CHANGE_LIMIT_SECONDS:.0f} s")
            self.sleep(min(self.poll, self.watch or self.poll))


def applies(target: specs.RegionTarget, endpoint: EndpointView | None) -> bool:
    """A judged canary runs when the policy says so and the endpoint serves another release (InService,
    or on its way to or on the judging fleet)."""
    if target.policy.strategy != strategies.JUDGED or endpoint is None:
        return False
    if endpoint.config_name == judging_config_name(target) or endpoint.pending_config == judging_config_name(target):
        return True
    return (endpoint.status == IN_SERVICE and endpoint.config_name != target.endpoint_config_name
            and endpoint.release_tag not in (None, target.release))


def run(target: specs.RegionTarget, reference: specs.RegionTarget, cloud: RegionCloud, journal: Journal,
        runtime: Runtime, setup: JudgeSetup, *, poll_seconds: float, watch_seconds: float | None = None,
        stop: threading.Event | None = None) -> tuple[Step | None, tuple[JudgedStep, ...]]:
    """Judge ``target`` against ``reference`` step by step. Returns (None, steps) when every step
    passed (the caller then moves the endpoint to the candidate's own config), or the terminal step
    (rolled back, failed, aborted) and the steps judged."""
    ctx = _Context(target, reference, cloud, journal, runtime, setup, poll_seconds, stop,
                   f"{target.environment.name}/{target.region}", watch_seconds)
    judged: list[JudgedStep] = []
    try:
        _join(ctx)
        for percent in strategies.judged_steps(target.policy):
            held = _held(ctx)
            if held is not None:
                return held, tuple(judged)
            if journal.control().promote is not None:
                ctx.say("promoted: no more judged steps")
                break
            _shift(ctx, percent)
            judgment = _bake(ctx, percent)
            judged.append(JudgedStep(percent, judgment))
            if judgment.outcome == Outcome.FAIL:
                return _take_back(ctx, ROLLED_BACK_TEXT.format(summary=judgment.summary()), Action.ROLLED_BACK), \
                    tuple(judged)
        return None, tuple(judged)
    except _Stop:
        from modelops.deploy.rollout import Stopped

        raise Stopped from None
    except (RuntimeError, TimeoutError) as err:
        return Step(Action.FAILED, str(err)), tuple(judged)


def _join(ctx: _Context) -> None:
    """Put the candidate beside the serving release: its model, the judging config, the update."""
    t = ctx.target
    ep = ctx.settle()
    name = judging_config_name(t)
    if ep.config_name == name:
        return
    ctx.cloud.create_model(specs.create_model_request(t))
    ctx.cloud.create_endpoint_config(judging_config_request(t, ctx.reference))
    if ctx.journal.record("judge-join", IN_PROGRESS, f"{t.release} beside {ctx.reference.release}"):
        ctx.say(f"judged canary: {t.release} joins {ctx.reference.release} as variant {CANDIDATE_VARIANT}")
    # The variants change, so no DeploymentConfig (SageMaker's blue/green keeps variant names).
    ctx.cloud.update_endpoint(t.endpoint_name, name, None)
    ep = ctx.settle()
    if ep.config_name != name:
        raise RuntimeError(f"the candidate could not join {t.endpoint_name}: {ep.failure_reason or 'no reason given'}")


def _held(ctx: _Context) -> Step | None:
    """Honour ``modelops rollout pause|abort``: an abort takes the traffic back; a pause holds here."""
    announced = False
    while True:
        control = ctx.journal.control()
        if control.abort is not None:
            why = f"aborted by {control.abort.by}" + (f": {control.abort.reason}" if control.abort.reason else "")
            return _take_back(ctx, why, Action.ROLLED_BACK)
        if control.paused is None:
            if announced:
                ctx.say("resumed")
            return None
        if not announced:
            ctx.say(f"paused by {control.paused.by}; holding the traffic where it is")
            announced = True
        ctx.sleep(ctx.poll)


def _shift(ctx: _Context, percent: int) -> None:
    weight = _candidate_weight(ctx.settle())
    if weight is not None and abs(weight - percent / 100) < 1e-6:
        return
    ctx.journal.record(f"judge-shift-{percent}", IN_PROGRESS, f"candidate at {percent}% of the traffic")
    ctx.say(f"candidate {ctx.target.release} takes {percent}% of the traffic")
    ctx.cloud.update_weights_and_capacities(ctx.target.endpoint_name, weights(percent))
    ctx.settle()


def _bake(ctx: _Context, percent: int) -> Judgment:
    """Mirror requests to both variants for a bake (more while inconclusive, up to the policy's
    rounds) and judge; the judgment is recorded and said with its figures."""
    from modelops.verify.judge import judge
    from modelops.verify.mirror import Mirror, MirrorTarget

    t, policy = ctx.target, ctx.setup.policy
    wait = t.policy.wait_interval_seconds
    client = ctx.cloud.clients.client("sagemaker-runtime", t.region)
    mirror = Mirror(MirrorTarget(client, t.endpoint_name, naming.PRIMARY_VARIANT, CANDIDATE_VARIANT,
                                 f"{ctx.label}: endpoint {t.endpoint_name}"),
                    ctx.setup.inputs, ctx.setup.compare, ctx.runtime.clock)
    started = ctx.runtime.clock.now()
    ctx.say(f"judging {percent}%: mirroring requests to both variants for {wait} s")
    try:
        for bake in range(1, policy.max_rounds + 1):
            ctx.sleep(wait)
            rounds = mirror.rounds()
            judgment = judge(rounds, policy, reference=ctx.reference.release, candidate=t.release,
                             final=bake == policy.max_rounds)
            if judgment.outcome != Outcome.INCONCLUSIVE:
                break
            ctx.say(f"judging {percent}%: inconclusive after {bake} bake(s), baking {wait} s more")
    finally:
        rounds = mirror.stop()
    judgment = _with_cloudwatch(ctx, judgment, started)
    status = {Outcome.PASS: SUCCEEDED, Outcome.FAIL: FAILED}.get(judgment.outcome, IN_PROGRESS)
    ctx.journal.record(f"judge-{percent}", status, judgment.summary())
    ctx.say(f"{percent}%: {judgment.summary()}")
    for v in judgment.verdicts:
        ctx.say(f"  {v.outcome.value:<12} {v.figures()}" + ("" if v.gated else " (reported, not gated)"))
    for d in judgment.worst[:3]:
        ctx.say(f"  differs: {d.detail}; input {d.request}")
    return judgment


def _with_cloudwatch(ctx: _Context, judgment: Judgment, started: float) -> Judgment:
    """Add each variant's 5xx rate as CloudWatch counted it over the bake (organic traffic included):
    a confident fail there fails the judgment; otherwise it is reported."""
    t, policy = ctx.target, ctx.setup.policy
    try:
        found = ctx.cloud.variant_metrics(t.endpoint_name, (naming.PRIMARY_VARIANT, CANDIDATE_VARIANT),
                                          start=started, end=ctx.runtime.clock.now() + 1)
    except Exception:  # metrics are evidence, not a precondition: a judgment stands without them
        return judgment
    ref, cand = found.get(naming.PRIMARY_VARIANT), found.get(CANDIDATE_VARIANT)
    if ref is None or cand is None or not ref.invocations or not cand.invocations:
        return judgment
    from statistics import NormalDist

    z = NormalDist().inv_cdf(policy.confidence)
    n_ref, n_cand = int(ref.invocations), int(cand.invocations)
    e_ref, e_cand = int(ref.errors_5xx or 0), int(cand.errors_5xx or 0)
    d, low, high = newcombe(e_cand, n_cand, e_ref, n_ref, z)
    outcome = Outcome.FAIL if low > policy.error_margin else Outcome.PASS if high <= policy.error_margin \
        else Outcome.INCONCLUSIVE
    verdict = Verdict("5xx rate (CloudWatch)", "%", e_ref / n_ref, e_cand / n_cand, d, low, high, policy.error_margin,
                      policy.confidence, (n_ref, n_cand), outcome, gated=outcome == Outcome.FAIL)
    result = replace(judgment, verdicts=(*judgment.verdicts, verdict))
    if outcome == Outcome.FAIL and judgment.outcome != Outcome.FAIL:
        result = replace(result, outcome=Outcome.FAIL)
    return result


def _take_back(ctx: _Context, why: str, action: Action) -> Step:
    """Take all traffic back from the candidate at once, then the endpoint back to the serving
    release's own config (all at once, no bake: it was serving a moment ago)."""
    from modelops.deploy.rollout import reconcile_region

    t = ctx.target
    ctx.say(f"taking the traffic back to {ctx.reference.release}: {why}")
    ep = ctx.settle()
    if ep.config_name == judging_config_name(t) and (_candidate_weight(ep) or 0) > 0:
        ctx.journal.record("judge-take-back", IN_PROGRESS, why)
        ctx.cloud.update_weights_and_capacities(t.endpoint_name, weights(0))
        ctx.settle()
    step = reconcile_region(ctx.reference, ctx.cloud, ctx.journal, ctx.runtime, restore=True, poll_seconds=ctx.poll,
                            watch_seconds=ctx.watch, stop=ctx.stop)
    if step.action != Action.SUCCEEDED:
        return Step(Action.FAILED, f"{why}; going back to {ctx.reference.release} failed: {step.reason}")
    return Step(action, f"{why}; back on {ctx.reference.release}")


def mirror_inputs(cases: Sequence[Any], replay: Sequence[CaseRequest]) -> tuple[CaseRequest, ...]:
    """The inputs a judgment mirrors: the requests of the regression cases that expect an answer, then
    the model's replay file."""
    return tuple(c.request for c in cases if c.expects_success) + tuple(replay)




def setup(model: ModelConfig, env: Environment, ws: Workspace, ref: str | None, *,
          captured: Sequence[CaseRequest] = ()) -> JudgeSetup | None:
    """The judged canary's inputs and margins for ``model`` in ``env`` (None unless its strategy is
    judged_canary): regression requests and replay file at ``ref`` and ``captured`` requests
    (``deploy --replay``), the model's answer rules, the policy's judgment with the environment's
    minimum agreement."""
    from modelops.config import load_policy, rollout_for

    if rollout_for(model, env).strategy != strategies.JUDGED:
        return None
    from modelops.config.cases import load_cases, load_replay
    from modelops.verify.answers import compare

    rules = model.answers
    policy = judgment_policy(load_policy(ws, ref).judgment, env.name, expect_change=rules.expect_change)
    inputs = mirror_inputs(load_cases(ws, model, ref).cases, load_replay(ws, model, ref) + tuple(captured))
    if not inputs:
        raise InputError(NO_INPUTS.format(model=model.name, environment=env.name), hint=NO_INPUTS_HINT)
    return JudgeSetup(inputs, lambda a, b, content_type: compare(a, b, content_type, rules), policy)
