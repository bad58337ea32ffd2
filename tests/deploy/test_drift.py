"""Drift and health, pure: the desired state of a region (a RegionTarget) against an observed one, field
by field, and health from figures and alarm states. The local cloud tests (test_live_state.py) read
real observed states; these pin the rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelops import naming
from modelops.config import Environment, ModelConfig, Workspace, load_environments, load_model
from modelops.deploy import drift, specs
from modelops.deploy.cloud import AlarmView, VariantMetrics
from modelops.deploy.health import DEGRADED, HEALTHY, UNHEALTHY, UNKNOWN, health_of
from modelops.deploy.machine import EndpointView, VariantWeight
from modelops.deploy.observed import ObservedRegion, ObservedVariant
from tests.helpers import PROJECT_ROOT

RELEASE = "iris-0123456789"


@pytest.fixture(scope="module")
def iris() -> ModelConfig:
    return load_model(Workspace.discover(PROJECT_ROOT), "iris")


@pytest.fixture(scope="module")
def prod() -> Environment:
    return load_environments(Workspace.discover(PROJECT_ROOT)).get("prod")


def target(model: ModelConfig, env: Environment) -> specs.RegionTarget:
    return specs.RegionTarget(model=model, environment=env, region="eu-west-1", release=RELEASE, commit="c" * 40,
                              config_digest="sha256:0", image_uri="acct.dkr.ecr.eu-west-1.amazonaws.com/modelops/iris:1",
                              model_data_url="s3://bucket/iris/model.tar.gz")


def as_deployed(t: specs.RegionTarget, *, count: int | None = None, weight: float = 1.0,
                env: dict[str, str] | None = None) -> ObservedRegion:
    """The region serving ``t`` exactly as its requests asked (what DescribeEndpoint & co. would say)."""
    count = t.instance_count if count is None else count
    model = specs.create_model_request(t)
    ep = EndpointView(t.endpoint_name, "InService", t.endpoint_config_name, 1.0, weights=(
        VariantWeight("blue", t.endpoint_config_name, naming.PRIMARY_VARIANT, weight, weight, count,
                      desired_instances=count),), release_tag=t.release,
        deployment_config=specs.target_deployment_config(t))
    variant = ObservedVariant("blue", t.endpoint_config_name, naming.PRIMARY_VARIANT, t.model_name, t.instance_type,
                              count, count, weight, weight, model["PrimaryContainer"]["Image"],
                              model["PrimaryContainer"]["ModelDataUrl"],
                              env if env is not None else model["PrimaryContainer"]["Environment"])
    alarms = {a["AlarmName"]: AlarmView(a["AlarmName"], "OK", a["Threshold"], a.get("Period"), "", a)
              for a in specs.alarm_requests(t)}
    return ObservedRegion(t.model.name, t.environment.name, t.region, t.endpoint_name, ep, t.release, (variant,),
                          alarms)


def fields(diffs: tuple[drift.FieldDiff, ...]) -> dict[str, tuple[str | None, str | None, str]]:
    return {d.field: (d.observed, d.desired, d.repair) for d in diffs}


def test_a_region_serving_the_target_as_asked_has_no_difference(iris, prod) -> None:
    t = target(iris, prod)
    assert drift.region_diff(t, as_deployed(t)) == ()


def test_counts_and_weights_are_repaired_in_place_and_autoscaling_widens_the_count_on_aws(iris, prod) -> None:
    t = target(iris, prod)  # prod: 2 instances declared; local cloud: no autoscaling
    diffs = fields(drift.region_diff(t, as_deployed(t, count=1, weight=0.5)))
    assert diffs == {"variants.primary.desired_instance_count": ("1", "2", drift.CAPACITY),
                     "variants.primary.weight": ("0.5", "1", drift.CAPACITY)}
    aws = target(iris, replace(prod, cloud="aws", account="123456789012"))  # autoscaling 2..6 applies
    assert "variants.primary.desired_instance_count" not in fields(drift.region_diff(aws, as_deployed(aws, count=5)))
    assert fields(drift.region_diff(aws, as_deployed(aws, count=7)))["variants.primary.desired_instance_count"] == (
        "7", "2..6", drift.CAPACITY)
    assert drift.repair_count(aws, as_deployed(aws, count=7).endpoint) == 6  # clamped into the range


def test_container_environment_differences_are_a_rollout_and_secret_values_stay_masked(iris, prod) -> None:
    t = target(iris, prod)
    env = {**specs.container_environment(t), "HF_TOKEN": "hunter2", "SAGEMAKER_CONTAINER_LOG_LEVEL": "10"}
    diffs = fields(drift.region_diff(t, as_deployed(t, env=env)))
    assert diffs["variants.primary.environment.HF_TOKEN"] == ("***", None, drift.ROLLOUT)
    assert diffs["variants.primary.environment.SAGEMAKER_CONTAINER_LOG_LEVEL"] == ("10", "20", drift.ROLLOUT)
    assert "hunter2" not in repr(diffs)


def test_a_missing_or_changed_alarm_is_put_back_and_a_stale_deployment_config_is_only_shown(iris, prod) -> None:
    t = target(iris, prod)
    observed = as_deployed(t)
    error_alarm = naming.alarm_name("iris", "prod", specs.ERROR_ALARM)
    latency_alarm = naming.alarm_name("iris", "prod", specs.LATENCY_ALARM)
    changed = {**observed.alarms[latency_alarm].definition, "Threshold": 9e9}  # type: ignore[dict-item]
    alarms = {latency_alarm: replace(observed.alarms[latency_alarm], definition=changed)}
    old_policy = replace(t.policy, wait_interval_seconds=200)
    ep = replace(observed.endpoint, deployment_config=specs.target_deployment_config(t, old_policy))  # type: ignore[arg-type]
    diffs = drift.region_diff(t, replace(observed, alarms=alarms, endpoint=ep))
    by_field = fields(diffs)
    assert by_field["alarms.5xx-rate"] == (None, "5xx rate > 0.05 over 10 s x 1", drift.ALARMS)
    assert by_field["alarms.p99-latency.Threshold"] == ("9000000000", "1000000", drift.ALARMS)
    wait = "deployment_config.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.WaitIntervalInSeconds"
    assert by_field[wait] == ("200", str(prod.rollout.wait_interval_seconds), drift.NEXT_ROLLOUT)
    assert not next(d for d in diffs if d.field == wait).is_drift
    assert error_alarm not in alarms


def test_tags_are_hints_the_release_is_the_serving_config(iris, prod) -> None:
    t = target(iris, prod)
    observed = as_deployed(t)
    hotfix = replace(observed, release=None, endpoint=replace(observed.endpoint, config_name="iris-prod-hotfix-ec"))  # type: ignore[arg-type]
    by_field = fields(drift.region_diff(t, hotfix))
    assert by_field["release"] == ("unknown (config iris-prod-hotfix-ec)", RELEASE, drift.ROLLOUT)
    assert by_field["endpoint_config"] == ("iris-prod-hotfix-ec", t.endpoint_config_name, drift.ROLLOUT)
    untagged = replace(observed, endpoint=replace(observed.endpoint, release_tag="iris-9999999999"))  # type: ignore[arg-type]
    assert fields(drift.region_diff(t, untagged)) == {
        f"tags.{naming.TAG_RELEASE}": ("iris-9999999999", RELEASE, drift.TAGS)}


SLO = specs.SloThresholds(p99_latency_ms=300, error_rate_5xx=0.01, period_seconds=10, evaluation_periods=1)


def metrics(invocations: float, errors: float, p99_ms: float | None) -> dict[str, VariantMetrics]:
    return {"primary": VariantMetrics("primary", 20, invocations, errors, p99_ms)}


@pytest.mark.parametrize(("status", "figures", "alarm", "state", "says"), [
    ("InService", metrics(31, 0, 12), "OK", HEALTHY, ""),
    ("InService", metrics(31, 31, 4), "OK", DEGRADED, "5xx rate 100.0% above 0.01 (31 of 31 invocations in the last 20 s)"),
    ("InService", metrics(10, 0, 950), "OK", DEGRADED, "p99 latency 950 ms above 300 ms in the last 20 s"),
    ("InService", {}, "ALARM", DEGRADED, "alarm modelops-iris-dev-5xx-rate in ALARM: Threshold Crossed"),
    ("InService", {}, "OK", UNKNOWN, "no invocations in the last 20 s"),
    ("Updating", metrics(5, 0, 10), "OK", HEALTHY, ""),
    ("RollingBack", metrics(5, 0, 10), "OK", DEGRADED, "an update is rolling back"),
    ("Failed", {}, "OK", UNHEALTHY, "endpoint is Failed"),
])
def test_health_from_figures_against_the_thresholds_and_alarm_states(status, figures, alarm, state, says) -> None:
    alarms = {"modelops-iris-dev-5xx-rate": AlarmView("modelops-iris-dev-5xx-rate", alarm, 0.01, 10,
                                                      "Threshold Crossed" if alarm == "ALARM" else "")}
    health = health_of(status, figures, alarms, SLO, 20)
    assert health.state == state
    assert (health.reasons[0] if health.reasons else "") == says
