"""The seam between rollouts and SageMaker/CloudWatch in one region: boto3 calls in, typed views out.

Clients come from :mod:`modelops.clients` (local cloud or AWS: nothing here knows which), botocore
errors are translated here, and "already exists" on a create counts as done, so every step is
idempotent and a crashed rollout can repeat its last step safely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.deploy.machine import EndpointView, VariantWeight

if TYPE_CHECKING:
    from modelops.clients import Clients


def _timestamp(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def _is_already_exists(exc: BaseException) -> bool:
    from modelops.clients import error_code, error_message

    message = error_message(exc).lower()
    return error_code(exc) in {"ValidationException", "ResourceInUse"} and (
        "already exist" in message or "existing" in message)


@dataclass(frozen=True)
class AlarmView:
    name: str
    state: str
    threshold: float | None
    period: int | None


class RegionCloud:
    """SageMaker, CloudWatch (and on AWS Application Auto Scaling) of one environment in one region."""

    def __init__(self, clients: Clients, region: str):
        self.clients = clients
        self.region = region
        self.environment = clients.environment.name

    # -- plumbing -------------------------------------------------------------------------------

    def _call(self, service: str, operation: str, resource: str, **kwargs: Any) -> Any:
        from modelops.clients import translate

        client = self.clients.client(service, self.region)
        try:
            return getattr(client, operation)(**kwargs)
        except Exception as exc:
            raise translate(exc, resource=f"{self.environment}/{self.region}: {resource}") from exc

    def _create(self, operation: str, resource: str, **kwargs: Any) -> bool:
        """Call a create; False when the resource was already there (idempotent re-run)."""
        from modelops.clients import translate

        client = self.clients.client("sagemaker", self.region)
        try:
            getattr(client, operation)(**kwargs)
            return True
        except Exception as exc:
            if _is_already_exists(exc):
                return False
            raise translate(exc, resource=f"{self.environment}/{self.region}: {resource}") from exc

    def _exists(self, operation: str, resource: str, **kwargs: Any) -> dict[str, Any] | None:
        from modelops.clients import is_not_found, translate

        client = self.clients.client("sagemaker", self.region)
        try:
            return dict(getattr(client, operation)(**kwargs))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise translate(exc, resource=f"{self.environment}/{self.region}: {resource}") from exc

    # -- observe --------------------------------------------------------------------------------

    def model_exists(self, name: str) -> bool:
        return self._exists("describe_model", f"model {name}", ModelName=name) is not None

    def endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._exists("describe_endpoint_config", f"endpoint config {name}", EndpointConfigName=name)

    def endpoint(self, name: str, *, with_tags: bool = True) -> EndpointView | None:
        raw = self._exists("describe_endpoint", f"endpoint {name}", EndpointName=name)
        if raw is None:
            return None
        release = self.tags(raw["EndpointArn"]).get(naming.TAG_RELEASE) if with_tags else None
        return endpoint_view(raw, release)

    def tags(self, arn: str) -> dict[str, str]:
        out = self._call("sagemaker", "list_tags", arn, ResourceArn=arn)
        return {t["Key"]: t["Value"] for t in out.get("Tags", [])}

    def alarms(self, names: Sequence[str]) -> dict[str, AlarmView]:
        if not names:
            return {}
        out = self._call("cloudwatch", "describe_alarms", "alarms", AlarmNames=list(names))
        views = {}
        for a in [*out.get("MetricAlarms", []), *out.get("CompositeAlarms", [])]:
            views[a["AlarmName"]] = AlarmView(a["AlarmName"], a.get("StateValue", "INSUFFICIENT_DATA"),
                                              a.get("Threshold"), a.get("Period"))
        return views

    # -- act ------------------------------------------------------------------------------------

    def create_model(self, body: Mapping[str, Any]) -> bool:
        return self._create("create_model", f"model {body['ModelName']}", **body)

    def create_endpoint_config(self, body: Mapping[str, Any]) -> bool:
        return self._create("create_endpoint_config", f"endpoint config {body['EndpointConfigName']}", **body)

    def put_alarm(self, body: Mapping[str, Any]) -> None:
        self._call("cloudwatch", "put_metric_alarm", f"alarm {body['AlarmName']}", **body)

    def create_endpoint(self, name: str, config: str, deployment: Mapping[str, Any] | None,
                        tags: Sequence[Mapping[str, str]]) -> bool:
        kwargs: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config, "Tags": list(tags)}
        if deployment:
            kwargs["DeploymentConfig"] = dict(deployment)
        return self._create("create_endpoint", f"endpoint {name}", **kwargs)

    def update_endpoint(self, name: str, config: str, deployment: Mapping[str, Any] | None) -> None:
        kwargs: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
        if deployment:
            kwargs["DeploymentConfig"] = dict(deployment)
        self._call("sagemaker", "update_endpoint", f"endpoint {name}", **kwargs)

    def delete_endpoint(self, name: str) -> None:
        self._delete("delete_endpoint", f"endpoint {name}", EndpointName=name)

    def delete_model(self, name: str) -> None:
        self._delete("delete_model", f"model {name}", ModelName=name)

    def delete_endpoint_config(self, name: str) -> None:
        self._delete("delete_endpoint_config", f"endpoint config {name}", EndpointConfigName=name)

    def _delete(self, operation: str, resource: str, **kwargs: Any) -> None:
        """A delete; one already gone counts as done."""
        from modelops.clients import is_not_found, translate

        client = self.clients.client("sagemaker", self.region)
        try:
            getattr(client, operation)(**kwargs)
        except Exception as exc:
            if not is_not_found(exc):
                raise translate(exc, resource=f"{self.environment}/{self.region}: {resource}") from exc

    def model_containers(self) -> dict[str, dict[str, Any]]:
        """Every model of this region: its name -> its primary container (Image, ModelDataUrl)."""
        names: list[str] = []
        token: str | None = None
        while True:
            page = self._call("sagemaker", "list_models", "models", MaxResults=100,
                              **({"NextToken": token} if token else {}))
            names += [m["ModelName"] for m in page.get("Models", [])]
            token = page.get("NextToken")
            if not token:
                break
        described = {n: self._exists("describe_model", f"model {n}", ModelName=n) for n in names}
        return {n: dict(d.get("PrimaryContainer") or {}) for n, d in described.items() if d is not None}

    def add_tags(self, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
        self._call("sagemaker", "add_tags", arn, ResourceArn=arn, Tags=list(tags))

    def endpoint_arn(self, name: str) -> str | None:
        raw = self._exists("describe_endpoint", f"endpoint {name}", EndpointName=name)
        return None if raw is None else str(raw["EndpointArn"])


def endpoint_view(raw: Mapping[str, Any], release_tag: str | None) -> EndpointView:
    """DescribeEndpoint's answer as an :class:`EndpointView` (blue = ProductionVariants, green = pending)."""
    weights: list[VariantWeight] = []
    for v in raw.get("ProductionVariants", []) or []:
        weights.append(VariantWeight(
            fleet="blue", config=str(raw.get("EndpointConfigName", "")), variant=v["VariantName"],
            current_weight=float(v.get("CurrentWeight", 0.0)), desired_weight=float(v.get("DesiredWeight", 0.0)),
            instances=int(v.get("CurrentInstanceCount", 0) or 0),
            statuses=tuple(s.get("Status", "") for s in v.get("VariantStatus", []) or [])))
    pending = raw.get("PendingDeploymentSummary") or {}
    for v in pending.get("ProductionVariants", []) or []:
        weights.append(VariantWeight(
            fleet="green", config=str(pending.get("EndpointConfigName", "")), variant=v["VariantName"],
            current_weight=float(v.get("CurrentWeight", 0.0)), desired_weight=float(v.get("DesiredWeight", 0.0)),
            instances=int(v.get("CurrentInstanceCount", 0) or 0),
            statuses=tuple(s.get("Status", "") for s in v.get("VariantStatus", []) or [])))
    return EndpointView(
        name=str(raw["EndpointName"]),
        status=str(raw["EndpointStatus"]),
        config_name=str(raw.get("EndpointConfigName", "")),
        last_modified=_timestamp(raw.get("LastModifiedTime") or raw.get("CreationTime")),
        failure_reason=raw.get("FailureReason") or None,
        pending_config=pending.get("EndpointConfigName") or None,
        weights=tuple(weights),
        release_tag=release_tag,
    )
