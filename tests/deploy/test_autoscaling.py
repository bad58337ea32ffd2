"""Application Auto Scaling on AWS, against moto (the local cloud does not serve it)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from modelops.config import Workspace, load_environments, load_model
from modelops.deploy import autoscaling, specs
from tests.helpers import PROJECT_ROOT


@pytest.fixture
def target() -> specs.RegionTarget:
    ws = Workspace.discover(PROJECT_ROOT)
    prod = replace(load_environments(ws).get("prod"), cloud="aws", account="123456789012")
    return specs.RegionTarget(model=load_model(ws, "iris"), environment=prod, region="eu-west-1",
                              release="iris-0123456789", commit="c" * 40, config_digest="sha256:0",
                              image_uri="img", model_data_url=None)


def test_registers_min_max_and_target_tracking_once(target: specs.RegionTarget) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("application-autoscaling", region_name="eu-west-1")
        cloud = SimpleNamespace(region="eu-west-1", clients=SimpleNamespace(client=lambda service, region: client))
        assert autoscaling.is_in_place(cloud, target) is False
        autoscaling.register(cloud, target)
        autoscaling.register(cloud, target)  # idempotent
        assert autoscaling.is_in_place(cloud, target) is True
        [found] = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert found["ResourceId"] == "endpoint/iris-prod/variant/primary"
        assert (found["MinCapacity"], found["MaxCapacity"]) == (2, 6)  # iris's prod override
        [policy] = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        assert config["TargetValue"] == 500.0
        assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
