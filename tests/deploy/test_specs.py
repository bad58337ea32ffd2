"""Request bodies, DeploymentConfig and alarms, checked against botocore's own service models."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelops import naming
from modelops.config import CapacitySize, Environment, ModelConfig, Workspace, load_environments, load_model
from modelops.config.rollout import Alarms
from modelops.deploy import specs
from modelops.errors import InputError
from tests.helpers import PROJECT_ROOT


@pytest.fixture(scope="module")
def iris() -> ModelConfig:
    return load_model(Workspace.discover(PROJECT_ROOT), "iris")


@pytest.fixture(scope="module")
def prod() -> Environment:
    return load_environments(Workspace.discover(PROJECT_ROOT)).get("prod")


@pytest.fixture(scope="module")
def prod_canary(prod: Environment) -> Environment:
    """prod on SageMaker's 50% canary with 10 s bakes (the shipped prod judges its canary itself and
    hands SageMaker only moves of the whole fleet): what a DeploymentConfig of SageMaker's canary is."""
    return replace(prod, rollout=replace(prod.rollout, strategy="canary", step_size=CapacitySize("CAPACITY_PERCENT", 50),
                                         wait_interval_seconds=10))


def target(model: ModelConfig, env: Environment, region: str = "eu-west-1") -> specs.RegionTarget:
    return specs.RegionTarget(
        model=model, environment=env, region=region, release="iris-0123456789", commit="c" * 40,
        config_digest="sha256:" + "d" * 64,
        image_uri=f"000000000000.dkr.ecr.{region}.amazonaws.com/modelops/iris:0123456789",
        model_data_url="s3://modelops-artifacts/iris/0123456789/model.tar.gz",
        image_environment={"SAGEMAKER_PROGRAM": "inference.py"})


def validate_against_botocore(service: str, operation: str, body: dict) -> None:
    """botocore's own parameter validation: unknown keys, wrong types, missing required members."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(body, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_create_model_carries_region_image_artifacts_role_vpc_and_isolation(iris, prod) -> None:
    body = specs.create_model_request(target(iris, prod))
    validate_against_botocore("sagemaker", "CreateModel", body)
    assert body["ModelName"] == naming.model_name("iris", "prod", "iris-0123456789")
    assert body["PrimaryContainer"]["Image"].startswith("000000000000.dkr.ecr.eu-west-1.")
    assert body["PrimaryContainer"]["ModelDataUrl"].endswith("model.tar.gz")
    assert body["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert body["PrimaryContainer"]["Environment"]["SAGEMAKER_CONTAINER_LOG_LEVEL"] == "20"
    assert body["ExecutionRoleArn"] == "arn:aws:iam::000000000000:role/modelops-iris-prod"
    assert body["VpcConfig"]["Subnets"] == ["subnet-0a1b2c3d4e5f62001", "subnet-0a1b2c3d4e5f62002"]
    assert body["EnableNetworkIsolation"] is True
    tags = {t["Key"]: t["Value"] for t in body["Tags"]}
    assert tags[naming.TAG_RELEASE] == "iris-0123456789"
    assert tags[naming.TAG_COMMIT] == "c" * 40
    assert tags[naming.TAG_CONFIG_DIGEST].startswith("sha256:")


def test_endpoint_config_uses_the_primary_variant_prod_count_and_kms(iris, prod) -> None:
    body = specs.create_endpoint_config_request(target(iris, prod))
    validate_against_botocore("sagemaker", "CreateEndpointConfig", body)
    [variant] = body["ProductionVariants"]
    assert variant["VariantName"] == naming.PRIMARY_VARIANT
    assert variant["InitialInstanceCount"] == 2  # models/iris overrides prod's count
    assert variant["InstanceType"] == "ml.m5.large"
    assert body["KmsKeyId"] == "arn:aws:kms:eu-west-1:000000000000:alias/modelops-prod"
    assert "DataCaptureConfig" not in body  # iris turns capture off


def test_data_capture_when_enabled(iris, prod) -> None:
    from modelops.config.security import DataCapture, Security

    model = replace(iris, security=replace(iris.security, data_capture=DataCapture(True, 20, "s3://cap/{region}")))
    assert isinstance(model.security, Security)
    body = specs.create_endpoint_config_request(target(model, prod))
    validate_against_botocore("sagemaker", "CreateEndpointConfig", body)
    assert body["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert body["DataCaptureConfig"]["DestinationS3Uri"] == "s3://cap/eu-west-1"


def test_canary_deployment_config_with_alarms(iris, prod_canary) -> None:
    t = target(iris, prod_canary)
    alarms = specs.alarm_requests(t)
    config = specs.deployment_config(t.policy, alarm_names=specs.alarm_names(alarms), environment="prod",
                                     instance_count=2)
    validate_against_botocore("sagemaker", "UpdateEndpoint",
                              {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": config})
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": 10,
                       "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 600
    assert [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]] == [
        "modelops-iris-prod-p99-latency", "modelops-iris-prod-5xx-rate"]


def test_linear_and_all_at_once(prod_canary) -> None:
    linear = replace(prod_canary.rollout, strategy="linear", step_size=CapacitySize("CAPACITY_PERCENT", 25))
    config = specs.deployment_config(linear, alarm_names=(), environment="prod", instance_count=4)
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"] == {
        "Type": "CAPACITY_PERCENT", "Value": 25}
    assert "AutoRollbackConfiguration" not in config
    once = replace(prod_canary.rollout, strategy="all_at_once", step_size=None)
    assert specs.deployment_config(once, alarm_names=(), environment="prod", instance_count=1)[
        "BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 10}


@pytest.mark.parametrize(("change", "message"), [
    ({"wait_interval_seconds": 3601}, "wait_interval_seconds 3601 is outside"),
    ({"termination_wait_seconds": -1}, "termination_wait_seconds -1 is outside"),
    ({"max_execution_timeout_seconds": 599}, "outside SageMaker's 600..28800"),
    ({"max_execution_timeout_seconds": 28801}, "outside SageMaker's 600..28800"),
    ({"wait_interval_seconds": 300, "max_execution_timeout_seconds": 600}, "does not exceed the 600 s"),
    ({"step_size": CapacitySize("CAPACITY_PERCENT", 60)}, "canary size 60% is 60% of the capacity; SageMaker allows at most 50%"),
    ({"step_size": CapacitySize("INSTANCE_COUNT", 2)}, "is 2 of the 2 instance(s) (100%); SageMaker allows at most 50%"),
    ({"step_size": CapacitySize("INSTANCE_COUNT", 0)}, "at least 1"),
    ({"step_size": None}, "needs a step_size"),
    ({"strategy": "linear", "step_size": CapacitySize("CAPACITY_PERCENT", 60)}, "10%..50%"),
    ({"alarms": Alarms(period_seconds=45)}, "not 10, 30 or a multiple of 60"),
])
def test_policies_sagemaker_would_refuse_are_refused_first(prod_canary, change, message) -> None:
    with pytest.raises(InputError) as err:
        specs.deployment_config(replace(prod_canary.rollout, **change), alarm_names=(), environment="prod", instance_count=2)
    assert message in err.value.message


def test_alarms_from_environment_thresholds_in_microseconds(iris, prod) -> None:
    latency, errors = specs.alarm_requests(target(iris, prod))
    for body in (latency, errors):
        validate_against_botocore("cloudwatch", "PutMetricAlarm", body)
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["MetricName"] == "ModelLatency"
    assert latency["Threshold"] == 1_000_000.0  # 1000 ms in microseconds
    assert latency["Period"] == 10
    assert {"Name": "VariantName", "Value": naming.PRIMARY_VARIANT} in latency["Dimensions"]
    assert errors["Threshold"] == 0.05
    assert [m["Id"] for m in errors["Metrics"]] == ["errors", "invocations", "rate"]
    assert errors["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "Invocation5XXErrors"


def test_alarms_fall_back_to_the_model_slos_and_stay_without_a_bake_but_watch_no_rollout(iris, prod_canary) -> None:
    prod = prod_canary  # a rollout SageMaker watches with alarms
    no_env_alarms = replace(prod, rollout=replace(prod.rollout, alarms=Alarms(period_seconds=60)))
    latency, errors = specs.alarm_requests(target(iris, no_env_alarms))
    assert latency["Threshold"] == 300_000.0  # the load test's p99 SLO, 300 ms
    assert errors["Threshold"] == 0.01
    # The SLO alarms are the endpoint's between deployments too (status, sync --check read them) ...
    no_bake = target(iris, replace(prod, rollout=replace(prod.rollout, wait_interval_seconds=0)))
    assert specs.alarm_names(specs.alarm_requests(no_bake)) == ("modelops-iris-prod-p99-latency",
                                                                 "modelops-iris-prod-5xx-rate")
    # ... but a rollout that does not bake names none as rollback alarms: SageMaker would not watch them.
    assert "AutoRollbackConfiguration" not in specs.target_deployment_config(no_bake)
    baking = specs.target_deployment_config(target(iris, prod))
    assert [a["AlarmName"] for a in baking["AutoRollbackConfiguration"]["Alarms"]] == [
        "modelops-iris-prod-p99-latency", "modelops-iris-prod-5xx-rate"]


def test_prods_judged_canary_hands_sagemaker_only_moves_of_the_whole_fleet(iris, prod) -> None:
    """The shipped prod judges its canary (modelops.deploy.judged); a first endpoint or a re-deploy onto
    the same variants is all at once, then a bake, with the SLO alarms watching it."""
    assert (prod.rollout.strategy, prod.rollout.steps) == ("judged_canary", (10, 50, 100))
    config = specs.target_deployment_config(target(iris, prod))
    validate_against_botocore("sagemaker", "UpdateEndpoint",
                              {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": config})
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": prod.rollout.wait_interval_seconds}
    assert [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]] == [
        "modelops-iris-prod-p99-latency", "modelops-iris-prod-5xx-rate"]
