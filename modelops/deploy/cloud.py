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
    """A CloudWatch alarm as DescribeAlarms answers: its state (and why) and its whole definition."""

    name: str
    state: str
    threshold: float | None
    period: int | None
    reason: str = ""
    definition: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class VariantMetrics:
    """One variant's ``AWS/SageMaker`` figures over a window: invocations, 5xx errors (sums) and the
    p99 of ModelLatency (ms); None where CloudWatch has no datapoint."""

    variant: str
    seconds: int
    invocations: float | None
    errors_5xx: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        if not self.invocations:
            return None
        return (self.errors_5xx or 0.0) / self.invocations


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
        return self.model(name) is not None

    def model(self, name: str) -> dict[str, Any] | None:
        return self._exists("describe_model", f"model {name}", ModelName=name)

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
                                              a.get("Threshold"), a.get("Period"), a.get("StateReason", ""), a)
        return views

    def variant_metrics(self, endpoint: str, variants: Sequence[str], *, start: float, end: float) -> dict[
            str, VariantMetrics]:
        """Each variant's figures over [start, end) (GetMetricData, one datapoint per query and period)."""
        import datetime as dt

        if not variants:
            return {}
        seconds = max(1, int(end - start))
        # GetMetricData periods: 1, 5, 10, 20, 30 or a multiple of 60 seconds.
        period = seconds if seconds in (1, 5, 10, 20, 30) or seconds % 60 == 0 else 60 * (seconds // 60 + 1)
        queries: list[dict[str, Any]] = []
        for i, variant in enumerate(variants):
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            for key, metric, stat in (("n", "Invocations", "Sum"), ("e", "Invocation5XXErrors", "Sum"),
                                      ("p", "ModelLatency", "p99")):
                queries.append({"Id": f"{key}{i}", "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims},
                    "Period": period, "Stat": stat}})
        out = self._call("cloudwatch", "get_metric_data", f"metrics of endpoint {endpoint}", MetricDataQueries=queries,
                         StartTime=dt.datetime.fromtimestamp(start, dt.UTC),
                         EndTime=dt.datetime.fromtimestamp(end, dt.UTC))
        values = {r["Id"]: [float(v) for v in r.get("Values", [])] for r in out.get("MetricDataResults", [])}
        result = {}
        for i, variant in enumerate(variants):
            latencies = values.get(f"p{i}") or []
            result[variant] = VariantMetrics(
                variant, seconds,
                invocations=sum(values[f"n{i}"]) if values.get(f"n{i}") else None,
                errors_5xx=sum(values[f"e{i}"]) if values.get(f"e{i}") else None,
                p99_ms=max(latencies) / 1000.0 if latencies else None)  # ModelLatency is in microseconds
        return result

    # -- act ------------------------------------------------------------------------------------

    def create_model(self, body: Mapping[str, Any]) -> bool:
        return self._create("create_model", f"model {body['ModelName']}", **body)

    def create_endpoint_config(self, body: Mapping[str, Any]) -> bool:
        return self._create("create_endpoint_config", f"endpoint config {body['EndpointConfigName']}", **body)

    def put_alarm(self, body: Mapping[str, Any]) -> None:
        self._call("cloudwatch", "put_metric_alarm", f"alarm {body['AlarmName']}", **body)

    def set_alarm_state(self, name: str, state: str, reason: str) -> None:
        """Force an alarm's state until its next evaluation (how ``rollout abort`` makes SageMaker roll
        a baking update back: there is no API to stop a blue/green update)."""
        self._call("cloudwatch", "set_alarm_state", f"alarm {name}", AlarmName=name, StateValue=state,
                   StateReason=reason[:1023])

    def update_weights_and_capacities(self, name: str, desired: Sequence[Mapping[str, Any]]) -> None:
        self._call("sagemaker", "update_endpoint_weights_and_capacities", f"endpoint {name}", EndpointName=name,
                   DesiredWeightsAndCapacities=[dict(d) for d in desired])

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
    pending = raw.get("PendingDeploymentSummary") or {}
    weights = [_variant_weight("blue", str(raw.get("EndpointConfigName", "")), v)
               for v in raw.get("ProductionVariants", []) or []]
    weights += [_variant_weight("green", str(pending.get("EndpointConfigName", "")), v)
                for v in pending.get("ProductionVariants", []) or []]
    return EndpointView(
        name=str(raw["EndpointName"]),
        status=str(raw["EndpointStatus"]),
        config_name=str(raw.get("EndpointConfigName", "")),
        last_modified=_timestamp(raw.get("LastModifiedTime") or raw.get("CreationTime")),
        failure_reason=raw.get("FailureReason") or None,
        pending_config=pending.get("EndpointConfigName") or None,
        weights=tuple(weights),
        release_tag=release_tag,
        deployment_config=raw.get("LastDeploymentConfig") or None,
    )


def _variant_weight(fleet: str, config: str, v: Mapping[str, Any]) -> VariantWeight:
    desired = v.get("DesiredInstanceCount")
    return VariantWeight(
        fleet=fleet, config=config, variant=v["VariantName"],
        current_weight=float(v.get("CurrentWeight", 0.0)), desired_weight=float(v.get("DesiredWeight", 0.0)),
        instances=int(v.get("CurrentInstanceCount", 0) or 0),
        statuses=tuple(s.get("Status", "") for s in v.get("VariantStatus", []) or []),
        desired_instances=int(desired) if desired is not None else None,
        messages=tuple(s.get("StatusMessage", "") for s in v.get("VariantStatus", []) or []))
