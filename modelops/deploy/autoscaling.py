"""Endpoint autoscaling through Application Auto Scaling (AWS only; the local cloud has no instances).

The variant keeps its name across releases (``naming.PRIMARY_VARIANT``), so the scalable target and
its target-tracking policy are registered once per endpoint and re-registered (idempotently) after
each rollout, when the new fleet is in service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.deploy.specs import RegionTarget

if TYPE_CHECKING:
    from modelops.deploy.cloud import RegionCloud

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{naming.PRIMARY_VARIANT}"


def policy_name(endpoint: str) -> str:
    return f"modelops-{endpoint}-invocations"


def scalable_target_request(target: RegionTarget) -> dict[str, Any] | None:
    scaling = target.model.resources_for(target.environment.name).autoscaling
    if scaling is None:
        return None
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(target.endpoint_name),
            "ScalableDimension": DIMENSION, "MinCapacity": scaling.min_instances,
            "MaxCapacity": scaling.max_instances}


def scaling_policy_request(target: RegionTarget) -> dict[str, Any] | None:
    scaling = target.model.resources_for(target.environment.name).autoscaling
    if scaling is None or scaling.target_invocations_per_instance is None:
        return None
    config: dict[str, Any] = {
        "TargetValue": float(scaling.target_invocations_per_instance),
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    if scaling.scale_in_cooldown_seconds is not None:
        config["ScaleInCooldown"] = scaling.scale_in_cooldown_seconds
    if scaling.scale_out_cooldown_seconds is not None:
        config["ScaleOutCooldown"] = scaling.scale_out_cooldown_seconds
    return {"PolicyName": policy_name(target.endpoint_name), "ServiceNamespace": NAMESPACE,
            "ResourceId": resource_id(target.endpoint_name), "ScalableDimension": DIMENSION,
            "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config}


def _client(cloud: Any) -> Any:
    return cloud.clients.client("application-autoscaling", cloud.region)


def is_in_place(cloud: RegionCloud, target: RegionTarget) -> bool:
    """Whether the scalable target (min/max) and the policy are registered as the config says."""
    from modelops.clients import translate

    want = scalable_target_request(target)
    if want is None:
        return True
    client = _client(cloud)
    try:
        found = client.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=[want["ResourceId"]],
                                                 ScalableDimension=DIMENSION).get("ScalableTargets", [])
        if not any(t["MinCapacity"] == want["MinCapacity"] and t["MaxCapacity"] == want["MaxCapacity"]
                   for t in found):
            return False
        policy = scaling_policy_request(target)
        if policy is None:
            return True
        policies = client.describe_scaling_policies(ServiceNamespace=NAMESPACE, ResourceId=want["ResourceId"],
                                                    ScalableDimension=DIMENSION).get("ScalingPolicies", [])
        return any(p["PolicyName"] == policy["PolicyName"] and p.get("TargetTrackingScalingPolicyConfiguration", {})
                   .get("TargetValue") == policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
                   for p in policies)
    except Exception as exc:
        raise translate(exc, resource=f"{target.environment.name}/{target.region}: autoscaling of "
                                      f"{target.endpoint_name}") from exc


def register(cloud: RegionCloud, target: RegionTarget) -> None:
    """Register the scalable target and put the target-tracking policy (both idempotent calls)."""
    from modelops.clients import translate

    want = scalable_target_request(target)
    if want is None:
        return
    client = _client(cloud)
    try:
        client.register_scalable_target(**want)
        policy = scaling_policy_request(target)
        if policy is not None:
            client.put_scaling_policy(**policy)
    except Exception as exc:
        raise translate(exc, resource=f"{target.environment.name}/{target.region}: autoscaling of "
                                      f"{target.endpoint_name}") from exc
