"""Pure builders of the SageMaker and CloudWatch request bodies a rollout sends.

Nothing here talks to a cloud: each function turns typed config into the exact dict boto3 receives, so
the shapes are unit-tested against botocore's service model and the spec (../shared/specs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from modelops import naming
from modelops.config import Environment, ModelConfig, RolloutPolicy, Security, rollout_for, security_for
from modelops.config import rollout as strategies
from modelops.errors import InputError

MAX_ALARMS = 10
ROLLOUT_HINT = "fix the rollout policy in pipelines/environments.yaml or the model's spec.rollout"


@dataclass(frozen=True)
class RegionTarget:
    """Everything that defines what one region of one environment should serve.

    ``image_uri`` and ``model_data_url`` come from the build of ``release`` for this region; the
    model config is read at the release's commit, so re-deploying an old release (rollback) asks for
    exactly what it asked for then."""

    model: ModelConfig
    environment: Environment
    region: str
    release: str
    commit: str
    config_digest: str
    image_uri: str
    model_data_url: str | None
    image_environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def endpoint_name(self) -> str:
        return naming.endpoint_name(self.model.name, self.environment.name)

    @property
    def model_name(self) -> str:
        return naming.model_name(self.model.name, self.environment.name, self.release)

    @property
    def endpoint_config_name(self) -> str:
        return naming.endpoint_config_name(self.model.name, self.environment.name, self.release)

    @property
    def security(self) -> Security:
        return security_for(self.model, self.environment, self.region)

    @property
    def policy(self) -> RolloutPolicy:
        return rollout_for(self.model, self.environment)

    @property
    def instance_count(self) -> int:
        return self.model.resources_for(self.environment.name).instance_count

    @property
    def instance_type(self) -> str:
        return self.model.resources_for(self.environment.name).instance_type


def tags(target: RegionTarget) -> list[dict[str, str]]:
    """The tags every resource of a release carries: release, model, commit, config digest, environment."""
    return [
        {"Key": naming.TAG_RELEASE, "Value": target.release},
        {"Key": naming.TAG_MODEL, "Value": target.model.name},
        {"Key": naming.TAG_COMMIT, "Value": target.commit},
        {"Key": naming.TAG_CONFIG_DIGEST, "Value": target.config_digest},
        {"Key": naming.TAG_ENVIRONMENT, "Value": target.environment.name},
    ]


def container_environment(target: RegionTarget) -> dict[str, str]:
    """The container's environment: what the image needs (e.g. ``SAGEMAKER_PROGRAM``), then the
    model's DJL serving options, then the model's own ``env`` (which wins)."""
    env: dict[str, str] = dict(target.image_environment)
    env.update(target.model.container.serving.environment())
    env.update(target.model.container.env)
    return env


def create_model_request(target: RegionTarget) -> dict[str, Any]:
    """CreateModel: the region's image, the artifacts, environment, role, VPC and network isolation."""
    sec = target.security
    container: dict[str, Any] = {"Image": target.image_uri, "Environment": container_environment(target)}
    if target.model_data_url:
        container["ModelDataUrl"] = target.model_data_url
    body: dict[str, Any] = {"ModelName": target.model_name, "PrimaryContainer": container, "Tags": tags(target)}
    if sec.execution_role:
        body["ExecutionRoleArn"] = sec.execution_role
    if sec.vpc is not None:
        body["VpcConfig"] = {"SecurityGroupIds": list(sec.vpc.security_groups), "Subnets": list(sec.vpc.subnets)}
    if sec.network_isolation is not None:
        body["EnableNetworkIsolation"] = sec.network_isolation
    return body


def create_endpoint_config_request(target: RegionTarget) -> dict[str, Any]:
    """CreateEndpointConfig: one variant (always ``naming.PRIMARY_VARIANT``, since a blue/green update
    must keep the variant names), instance type and count, KMS key and data capture."""
    sec = target.security
    body: dict[str, Any] = {
        "EndpointConfigName": target.endpoint_config_name,
        "ProductionVariants": [{
            "VariantName": naming.PRIMARY_VARIANT,
            "ModelName": target.model_name,
            "InitialInstanceCount": target.instance_count,
            "InstanceType": target.instance_type,
            "InitialVariantWeight": 1.0,
        }],
        "Tags": tags(target),
    }
    if sec.kms_key:
        body["KmsKeyId"] = sec.kms_key
    capture = sec.data_capture
    if capture is not None and capture.enabled:
        dc: dict[str, Any] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture.sampling_percentage or 100,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
        if capture.destination:
            dc["DestinationS3Uri"] = capture.destination
        if sec.kms_key:
            dc["KmsKeyId"] = sec.kms_key
        body["DataCaptureConfig"] = dc
    return body


# -- rollout policy -> DeploymentConfig ------------------------------------------------------------


def validate_policy(policy: RolloutPolicy, *, environment: str, instance_count: int) -> None:
    """Refuse a policy SageMaker would refuse (or that would roll back every update), before any call:
    the first of the rollout table's problems (``modelops.config.rollout.problems``, which validate
    reports as findings first)."""
    found = strategies.problems(policy, environment=environment, instance_count=instance_count)
    if found:
        raise InputError(found[0].message, hint=found[0].hint or ROLLOUT_HINT)


def deployment_config(policy: RolloutPolicy, *, alarm_names: tuple[str, ...], environment: str,
                      instance_count: int) -> dict[str, Any]:
    """The ``DeploymentConfig`` of CreateEndpoint/UpdateEndpoint: blue/green traffic shifting as the
    policy says, watched by ``alarm_names`` (AutoRollbackConfiguration)."""
    validate_policy(policy, environment=environment, instance_count=instance_count)
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": strategies.routing(policy),
            "TerminationWaitInSeconds": policy.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": policy.max_execution_timeout_seconds,
        },
    }
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names[:MAX_ALARMS]]}
    return config


# -- SLOs -> CloudWatch alarms ---------------------------------------------------------------------

LATENCY_ALARM = "p99-latency"
ERROR_ALARM = "5xx-rate"


@dataclass(frozen=True)
class SloThresholds:
    """What an endpoint is held to, between deployments (``status``, ``sync --check``) and while a
    rollout bakes: the environment's ``rollout.alarms`` where set, else the model's load-test SLOs
    (p99 and max error rate); None: no threshold for that signal."""

    p99_latency_ms: float | None
    error_rate_5xx: float | None
    period_seconds: int
    evaluation_periods: int


def slo_thresholds(model: ModelConfig, environment: Environment) -> SloThresholds:
    alarms = rollout_for(model, environment).alarms
    slo = model.tests.load.slo if model.tests.load else None
    return SloThresholds(
        p99_latency_ms=alarms.p99_latency_ms if alarms.p99_latency_ms is not None else (slo.p99_ms if slo else None),
        error_rate_5xx=alarms.error_rate_5xx if alarms.error_rate_5xx is not None else (
            slo.max_error_rate if slo else None),
        period_seconds=alarms.period_seconds, evaluation_periods=alarms.evaluation_periods)


def alarm_requests(target: RegionTarget) -> list[dict[str, Any]]:
    """PutMetricAlarm bodies for the SLO alarms of one endpoint (:func:`slo_thresholds`).

    They are part of the desired state: in place from the endpoint's first rollout on, between
    rollouts too, so a broken endpoint shows in ``status`` and ``sync --check`` with no deployment
    running; a rollout that bakes also names them as its rollback alarms (:func:`rollback_alarm_names`).
    p99 ModelLatency is in microseconds (ExtendedStatistic p99); the 5xx rate is metric math over
    the Sum of Invocation5XXErrors and Invocations (no invocations: no data, not breaching)."""
    slo = slo_thresholds(target.model, target.environment)
    endpoint = target.endpoint_name
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": naming.PRIMARY_VARIANT}]
    common: dict[str, Any] = {
        "EvaluationPeriods": slo.evaluation_periods,
        "DatapointsToAlarm": slo.evaluation_periods,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": False,
        "Tags": tags(target),
    }
    out: list[dict[str, Any]] = []
    if slo.p99_latency_ms is not None:
        out.append({
            "AlarmName": naming.alarm_name(target.model.name, target.environment.name, LATENCY_ALARM),
            "AlarmDescription": f"modelops: {endpoint} p99 model latency above {slo.p99_latency_ms:g} ms",
            "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Dimensions": dims,
            "ExtendedStatistic": "p99", "Period": slo.period_seconds,
            "Threshold": float(slo.p99_latency_ms) * 1000.0,  # ModelLatency is in microseconds
            **common,
        })
    if slo.error_rate_5xx is not None:
        def stat(metric_id: str, metric: str) -> dict[str, Any]:
            return {"Id": metric_id, "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims},
                "Period": slo.period_seconds, "Stat": "Sum"}}

        out.append({
            "AlarmName": naming.alarm_name(target.model.name, target.environment.name, ERROR_ALARM),
            "AlarmDescription": f"modelops: {endpoint} answers 5xx to more than {slo.error_rate_5xx:g} of invocations",
            "Metrics": [
                stat("errors", "Invocation5XXErrors"),
                stat("invocations", "Invocations"),
                {"Id": "rate", "Expression": "errors / invocations", "Label": "5xx rate", "ReturnData": True},
            ],
            "Threshold": float(slo.error_rate_5xx),
            **common,
        })
    return out


def rollback_alarm_names(policy: RolloutPolicy, requests: list[dict[str, Any]]) -> tuple[str, ...]:
    """The alarms a rollout under ``policy`` names in its DeploymentConfig: the SLO alarms when it bakes
    (SageMaker watches rollback alarms only while baking), none otherwise."""
    return alarm_names(requests) if policy.wait_interval_seconds > 0 else ()


def target_deployment_config(target: RegionTarget, policy: RolloutPolicy | None = None) -> dict[str, Any]:
    """The DeploymentConfig a rollout of ``target`` sends (under ``policy``, default the target's)."""
    policy = policy or target.policy
    return deployment_config(policy, alarm_names=rollback_alarm_names(policy, alarm_requests(target)),
                             environment=target.environment.name, instance_count=target.instance_count)


def instance_range(target: RegionTarget) -> tuple[int, int]:
    """The instance counts the serving variant may have: the declared count, or on aws with
    autoscaling the scalable target's min..max (Application Auto Scaling moves it in between; the
    local cloud has no autoscaling)."""
    scaling = target.model.resources_for(target.environment.name).autoscaling
    if scaling is None or target.environment.is_local:
        return target.instance_count, target.instance_count
    return scaling.min_instances, scaling.max_instances


def capacity_request(count: int) -> list[dict[str, Any]]:
    """UpdateEndpointWeightsAndCapacities' DesiredWeightsAndCapacities that bring the serving variant
    back to the declared weight (1: it is the endpoint's one variant) and ``count`` instances."""
    return [{"VariantName": naming.PRIMARY_VARIANT, "DesiredWeight": 1.0, "DesiredInstanceCount": count}]


def alarm_names(requests: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(r["AlarmName"] for r in requests)
