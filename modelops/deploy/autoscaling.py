"""Endpoint autoscaling through Application Auto Scaling (AWS only; the local cloud has no instances).

The variant keeps its name across releases (``naming.PRIMARY_VARIANT``), so the scalable target and
its target-tracking policy are registered once per endpoint and re-registered (idempotently) after
each rollout, when the new fleet is in service.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _client(cloud: RegionCloud) -> Any:
    return cloud.clients.client("application-autoscaling", cloud.region)


@dataclass(frozen=True)
class ScalingView:
    """An endpoint variant's autoscaling: the scalable target's min/max and the target value of
    modelops' target-tracking policy (None: no such policy)."""

    min_instances: int
    max_instances: int
    target_invocations: float | None

    def text(self) -> str:
        per = f", target {self.target_invocations:g} invocations/instance" if self.target_invocations is not None else ""
        return f"{self.min_instances}..{self.max_instances} instances{per}"


def desired(target: RegionTarget) -> ScalingView | None:
    """What the config asks for (None: no autoscaling)."""
    want = scalable_target_request(target)
    if want is None:
        return None
    policy = scaling_policy_request(target)
    value = policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] if policy else None
    return ScalingView(int(want["MinCapacity"]), int(want["MaxCapacity"]), value)


def observe(cloud: RegionCloud, endpoint: str) -> ScalingView | None:
    """What Application Auto Scaling has registered for the endpoint's variant (None: nothing)."""
    from modelops.clients import translate

    client = _client(cloud)
    rid = resource_id(endpoint)
    try:
        found = client.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=[rid],
                                                 ScalableDimension=DIMENSION).get("ScalableTargets", [])
        if not found:
            return None
        policies = client.describe_scaling_policies(ServiceNamespace=NAMESPACE, ResourceId=rid,
                                                    ScalableDimension=DIMENSION).get("ScalingPolicies", [])
    except Exception as exc:
        raise translate(exc, resource=f"{cloud.environment}/{cloud.region}: autoscaling of {endpoint}") from exc
    ours = next((p for p in policies if p["PolicyName"] == policy_name(endpoint)), None)
    value = (ours or {}).get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue")
    return ScalingView(int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"]),
                       float(value) if value is not None else None)


def is_in_place(cloud: RegionCloud, target: RegionTarget) -> bool:
    """Whether the scalable target (min/max) and the policy are registered as the config says."""
    want = desired(target)
    if want is None:
        return True
    found = observe(cloud, target.endpoint_name)
    return found is not None and matches(want, found)


def matches(want: ScalingView, found: ScalingView) -> bool:
    return (want.min_instances, want.max_instances) == (found.min_instances, found.max_instances) and (
        want.target_invocations is None or want.target_invocations == found.target_invocations)


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
