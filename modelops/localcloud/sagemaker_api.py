"""The SageMaker control plane (json 1.1): models, endpoint configs, endpoints and tags.

Every request is validated against botocore's input shape (``protocol.validate_input``) and then
against the service-side rules of ``shared/specs/sagemaker-endpoints.md``; every answer is cut to
the operation's output shape. Errors carry the real codes and message forms.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from modelops.localcloud.endpoints import Endpoints, _now, traffic_steps
from modelops.localcloud.lifecycle import LOCAL_ACCOUNT
from modelops.localcloud.protocol import (
    Response,
    ServiceError,
    json_error,
    request_id,
    service_model,
    shape_output,
    validate_input,
    validation_error,
)

log = logging.getLogger("modelops.localcloud.sagemaker")

CONTENT_TYPE = "application/x-amz-json-1.1"

NOT_FOUND = 'Could not find {what} "{arn}".'
ALREADY_EXISTS = 'Cannot create already existing {what} "{arn}".'
UPDATE_IN_PROGRESS = 'Cannot update in-progress endpoint "{arn}".'
UPDATE_FAILED = 'Cannot update failed endpoint "{arn}". Delete the endpoint and create it again.'
DELETE_IN_PROGRESS = UPDATE_IN_PROGRESS  # what the service answers DeleteEndpoint on a Creating endpoint
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")
VARIANTS_CHANGED = ("The production variant names of endpoint config {config} ({new}) do not match the ones "
                    "of endpoint {endpoint} ({old}); a blue/green or rolling update keeps the variant names.")
ONE_POLICY = "Only one of BlueGreenUpdatePolicy and RollingUpdatePolicy can be specified."
MISSING_SIZE = "TrafficRoutingConfiguration of type {kind} requires {member}."
CANARY_TOO_BIG = "CanarySize must be at most 50% of the instance count of variant {variant} ({count})."
LINEAR_OUT_OF_RANGE = "LinearStepSize must be between 10% and 50% of the instance count of variant {variant} ({count})."
BATCH_OUT_OF_RANGE = "MaximumBatchSize must be between 5% and 50% of the instance count of variant {variant} ({count})."
ROLLING_MULTI_VARIANT = "Rolling updates are not supported for endpoints with more than one production variant."
ROLLING_SERVERLESS = "Rolling updates are not supported for serverless endpoints."
TIMEOUT_TOO_SHORT = ("MaximumExecutionTimeoutInSeconds ({limit}) must be greater than the sum of the wait intervals "
                     "and TerminationWaitInSeconds ({total}).")
DUPLICATE_VARIANT = "Production variant names must be unique within an endpoint config; {variant} is repeated."
NO_CONTAINER = "Either PrimaryContainer or Containers must be specified."
UNKNOWN_VARIANT = "The variant(s) \"[{variant}]\" is/are not present in the endpoint {arn}."
BAD_ARN = "Invalid resource ARN: {arn}."
UNKNOWN_OPERATION = "The operation {operation} is not supported by the local cloud."
BAD_TOKEN = "Invalid pagination token {token!r}: pass the NextToken of the previous answer."
MALFORMED = "The request body is not valid JSON: {reason}"


class SageMakerApi:
    """Handles ``X-Amz-Target: SageMaker.<Operation>`` requests (called in a worker thread)."""

    def __init__(self, endpoints: Endpoints):
        self.reg = endpoints
        self.model = service_model("sagemaker")
        self.operations: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            name: getattr(self, _snake(name)) for name in (
                "CreateModel", "DescribeModel", "DeleteModel", "ListModels",
                "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
                "CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "UpdateEndpoint",
                "UpdateEndpointWeightsAndCapacities", "DeleteEndpoint", "AddTags", "ListTags", "DeleteTags")}

    def handle(self, operation: str, body: bytes, region: str) -> Response:
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise ServiceError("UnknownOperationException", UNKNOWN_OPERATION.format(operation=operation))
            try:
                params = json.loads(body or b"{}")
            except ValueError as exc:
                raise ServiceError("SerializationException", MALFORMED.format(reason=exc)) from None
            params = validate_input("sagemaker", operation, params)
            with self.reg.lock:
                result = handler(region, params)
            self.reg.kick()
            output = shape_output(self.model.operation_model(operation).output_shape, result) or {}
            return 200, [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_id())], json.dumps(output).encode()
        except ServiceError as err:
            return json_error(err, CONTENT_TYPE)
        except Exception:
            log.exception("SageMaker.%s failed inside the local cloud", operation)
            return json_error(ServiceError("InternalFailure", "An internal error occurred.", 500), CONTENT_TYPE)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def arn(region: str, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"

    def _get(self, table: dict[tuple[str, str], Any], region: str, name: str, kind: str, what: str) -> Any:
        doc = table.get((region, name.lower()))
        if doc is None:
            raise validation_error(NOT_FOUND.format(what=what, arn=self.arn(region, kind, name)))
        return doc

    def _tag_on_create(self, arn: str, tags: list[dict[str, str]] | None) -> None:
        if tags:
            self.reg.set_tags(arn, list(tags))

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any], key: str, sort_keys: dict[str, str]) -> dict[str, Any]:
        name_contains = params.get("NameContains")
        if name_contains:
            items = [i for i in items if name_contains.lower() in i[sort_keys["Name"]].lower()]
        # ListEndpoints also filters on LastModifiedTime (ListModels and ListEndpointConfigs have no such
        # members, so botocore's input shape never lets them through there).
        for bound, field, before in (("CreationTimeBefore", "CreationTime", True),
                                     ("CreationTimeAfter", "CreationTime", False),
                                     ("LastModifiedTimeBefore", "LastModifiedTime", True),
                                     ("LastModifiedTimeAfter", "LastModifiedTime", False)):
            if params.get(bound) is not None:
                limit = float(params[bound])
                items = [i for i in items if (i[field] < limit if before else i[field] > limit)]
        if params.get("StatusEquals"):
            items = [i for i in items if i.get("EndpointStatus") == params["StatusEquals"]]
        sort_by = sort_keys.get(params.get("SortBy", "CreationTime"), "CreationTime")
        items.sort(key=lambda i: i[sort_by], reverse=params.get("SortOrder", "Descending") == "Descending")
        start = _page_start(params.get("NextToken"))
        size = int(params.get("MaxResults") or 10)
        out: dict[str, Any] = {key: items[start:start + size]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out

    # ------------------------------------------------------------------ models

    def create_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        arn = self.arn(region, "model", name)
        if (region, name.lower()) in self.reg.models:
            raise validation_error(ALREADY_EXISTS.format(what="model", arn=arn))
        if not p.get("PrimaryContainer") and not p.get("Containers"):
            raise validation_error(NO_CONTAINER)
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(ModelArn=arn, CreationTime=_now())
        self.reg.save("model", (region, name.lower()), doc)
        self._tag_on_create(arn, p.get("Tags"))
        return {"ModelArn": arn}

    def describe_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return dict(self._get(self.reg.models, region, p["ModelName"], "model", "model"))

    def delete_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.models, region, p["ModelName"], "model", "model")
        self.reg.save("model", (region, p["ModelName"].lower()), None)
        self.reg.set_tags(doc["ModelArn"], None)
        return {}

    def list_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"ModelName": d["ModelName"], "ModelArn": d["ModelArn"], "CreationTime": d["CreationTime"]}
                 for (r, _), d in self.reg.models.items() if r == region]
        return self._page(items, p, "Models", {"Name": "ModelName", "CreationTime": "CreationTime"})

    # ------------------------------------------------------------------ endpoint configs

    def create_endpoint_config(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        arn = self.arn(region, "endpoint-config", name)
        if (region, name.lower()) in self.reg.configs:
            raise validation_error(ALREADY_EXISTS.format(what="endpoint configuration", arn=arn))
        seen: set[str] = set()
        for variant in p["ProductionVariants"]:
            if variant["VariantName"] in seen:
                raise validation_error(DUPLICATE_VARIANT.format(variant=variant["VariantName"]))
            seen.add(variant["VariantName"])
            if variant.get("ModelName"):
                self._get(self.reg.models, region, variant["ModelName"], "model", "model")
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(EndpointConfigArn=arn, CreationTime=_now())
        self.reg.save("endpoint-config", (region, name.lower()), doc)
        self._tag_on_create(arn, p.get("Tags"))
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return dict(self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config",
                              "endpoint configuration"))

    def delete_endpoint_config(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config", "endpoint configuration")
        self.reg.save("endpoint-config", (region, p["EndpointConfigName"].lower()), None)
        self.reg.set_tags(doc["EndpointConfigArn"], None)
        return {}

    def list_endpoint_configs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"EndpointConfigName": d["EndpointConfigName"], "EndpointConfigArn": d["EndpointConfigArn"],
                  "CreationTime": d["CreationTime"]} for (r, _), d in self.reg.configs.items() if r == region]
        return self._page(items, p, "EndpointConfigs", {"Name": "EndpointConfigName", "CreationTime": "CreationTime"})

    # ------------------------------------------------------------------ endpoints

    def _variants_of(self, region: str, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The fleet an endpoint config describes, with each model's container resolved now (as the
        service does: deleting the model later does not change a running endpoint)."""
        from modelops.localcloud import images

        variants = []
        for pv in config["ProductionVariants"]:
            model = self._get(self.reg.models, region, pv["ModelName"], "model", "model")
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            image_uri = container.get("Image", "")
            image = images.resolve_image(self.reg.data_dir, image_uri) if image_uri else None
            resolved = f"{image_uri.split('@')[0].rsplit(':', 1)[0]}@{image.digest}" if image else image_uri
            count = int(pv.get("InitialInstanceCount") or 1)
            variants.append({
                "VariantName": pv["VariantName"], "ModelName": pv["ModelName"],
                "InstanceType": pv.get("InstanceType"), "Weight": float(pv.get("InitialVariantWeight", 1.0)),
                "Count": count, "Image": image_uri, "ResolvedImage": resolved, "ResolutionTime": _now(),
                "ModelDataUrl": container.get("ModelDataUrl"), "Environment": container.get("Environment") or {},
                "StartupTimeout": pv.get("ContainerStartupHealthCheckTimeoutInSeconds") or 600,
                "Serverless": bool(pv.get("ServerlessConfig")),
                # The spec: AWS Marketplace containers and Inf1 endpoints fall back to all at once.
                "AllAtOnceOnly": bool(container.get("ModelPackageName"))
                or str(pv.get("InstanceType") or "").startswith("ml.inf1."),
                "instances": [],
            })
        return variants

    def create_endpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        arn = self.arn(region, "endpoint", name)
        if (region, name.lower()) in self.reg.endpoints:
            raise validation_error(ALREADY_EXISTS.format(what="endpoint", arn=arn))
        config = self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config", "endpoint configuration")
        now = _now()
        doc = {
            "EndpointName": name, "EndpointArn": arn, "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating", "CreationTime": now, "LastModifiedTime": now, "fleet": [],
            "pending": {"kind": "create", "config": config["EndpointConfigName"],
                        "variants": self._variants_of(region, config), "phase": "provision",
                        "phase_started": now, "started": now, "step": 0, "fractions": [1.0], "fraction": 0.0},
        }
        if p.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = p["DeploymentConfig"]
        self.reg.save("endpoint", (region, name.lower()), doc)
        self._tag_on_create(arn, p.get("Tags"))
        return {"EndpointArn": arn}

    def describe_endpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.endpoints, region, p["EndpointName"], "endpoint", "endpoint")
        return self.reg.describe(doc)

    def list_endpoints(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"EndpointName": d["EndpointName"], "EndpointArn": d["EndpointArn"], "CreationTime": d["CreationTime"],
                  "LastModifiedTime": d["LastModifiedTime"], "EndpointStatus": d["EndpointStatus"]}
                 for (r, _), d in self.reg.endpoints.items() if r == region]
        return self._page(items, p, "Endpoints", {"Name": "EndpointName", "CreationTime": "CreationTime",
                                                  "Status": "EndpointStatus"})

    def update_endpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.endpoints, region, p["EndpointName"], "endpoint", "endpoint")
        arn = doc["EndpointArn"]
        # A Failed endpoint can only be deleted: the spec marks "or updated" unsure, and the developer
        # guide's troubleshooting says to delete and recreate a failed endpoint.
        if doc["EndpointStatus"] == "Failed":
            raise validation_error(UPDATE_FAILED.format(arn=arn))
        if doc["EndpointStatus"] != "InService":
            raise validation_error(UPDATE_IN_PROGRESS.format(arn=arn))
        config = self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config", "endpoint configuration")
        deployment = p.get("DeploymentConfig")
        if deployment is None and p.get("RetainDeploymentConfig"):
            deployment = doc.get("LastDeploymentConfig")
        variants = self._variants_of(region, config)
        if p.get("RetainAllVariantProperties"):
            self._retain_variant_properties(doc, variants, p.get("ExcludeRetainedVariantProperties") or [])
        pending = self._plan_update(doc, config, variants, deployment)
        doc["pending"] = pending
        doc["EndpointStatus"] = "Updating"
        doc["FailureReason"] = None
        doc["LastModifiedTime"] = _now()
        if deployment is not None:
            doc["LastDeploymentConfig"] = deployment
        self.reg.save("endpoint", (region, doc["EndpointName"].lower()), doc)
        return {"EndpointArn": arn}

    @staticmethod
    def _retain_variant_properties(doc: dict[str, Any], variants: list[dict[str, Any]],
                                   exclude: list[dict[str, str]]) -> None:
        """RetainAllVariantProperties: a variant of the new config that the endpoint already has keeps its
        current instance count and weight (e.g. set by UpdateEndpointWeightsAndCapacities or autoscaling)
        instead of the config's initial ones, except the properties ExcludeRetainedVariantProperties names."""
        excluded = {e.get("VariantPropertyType") for e in exclude}
        current = {v["VariantName"]: v for v in doc["fleet"]}
        for variant in variants:
            old = current.get(variant["VariantName"])
            if old is None:
                continue
            if "DesiredInstanceCount" not in excluded:
                variant["Count"] = old["Count"]
            if "DesiredWeight" not in excluded:
                variant["Weight"] = old["Weight"]

    def _plan_update(self, doc: dict[str, Any], config: dict[str, Any], variants: list[dict[str, Any]],
                     deployment: dict[str, Any] | None) -> dict[str, Any]:
        """Check the DeploymentConfig against the spec's rules and lay out the steps of the update."""
        now = _now()
        blue_green = (deployment or {}).get("BlueGreenUpdatePolicy")
        rolling = (deployment or {}).get("RollingUpdatePolicy")
        if blue_green and rolling:
            raise validation_error(ONE_POLICY)
        if deployment is not None:
            old = sorted(v["VariantName"] for v in doc["fleet"])
            new = sorted(v["VariantName"] for v in variants)
            if old != new:
                raise validation_error(VARIANTS_CHANGED.format(config=config["EndpointConfigName"], new=", ".join(new),
                                                               endpoint=doc["EndpointName"], old=", ".join(old)))
        alarms = [a["AlarmName"] for a in ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []]
        count = min(v["Count"] for v in variants)
        pending: dict[str, Any] = {
            "config": config["EndpointConfigName"], "variants": variants, "phase": "provision",
            "phase_started": now, "started": now, "step": 0, "fraction": 0.0, "alarms": alarms,
        }
        if rolling:
            if len(variants) > 1:
                raise validation_error(ROLLING_MULTI_VARIANT)
            if any(v.get("Serverless") for v in variants + doc["fleet"]):
                raise validation_error(ROLLING_SERVERLESS)
            batch = rolling["MaximumBatchSize"]
            share = _share(batch, count)
            if not 0.05 - 1e-9 <= share <= 0.5 + 1e-9:
                raise validation_error(BATCH_OUT_OF_RANGE.format(variant=variants[0]["VariantName"], count=count))
            size = max(1, round(share * count))
            steps = math.ceil(count / size)
            wait = int(rolling.get("WaitIntervalInSeconds", 0))
            limit = rolling.get("MaximumExecutionTimeoutInSeconds")
            self._check_limit(limit, steps * wait)
            for variant in variants:
                variant["batch"] = size
                variant["target"] = min(variant["Count"], size)
            rollback_size = rolling.get("RollbackMaximumBatchSize")
            rollback_batch = max(1, round(_share(rollback_size, count) * count)) if rollback_size else None
            pending.update(kind="rolling", fractions=[min(1.0, size * k / count) for k in range(1, steps + 1)],
                           wait=wait, termination_wait=0, max_time=limit, rollback_batch=rollback_batch)
            return pending
        if blue_green:
            routing = blue_green["TrafficRoutingConfiguration"]
            kind = routing["Type"]
            member = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind)
            if member is not None and not routing.get(member):
                raise validation_error(MISSING_SIZE.format(kind=kind, member=member))
            variant_name = variants[0]["VariantName"]
            if kind == "CANARY" and _share(routing["CanarySize"], count) > 0.5 + 1e-9:
                raise validation_error(CANARY_TOO_BIG.format(variant=variant_name, count=count))
            if kind == "LINEAR" and not 0.1 - 1e-9 <= _share(routing["LinearStepSize"], count) <= 0.5 + 1e-9:
                raise validation_error(LINEAR_OUT_OF_RANGE.format(variant=variant_name, count=count))
            fractions, wait = traffic_steps(blue_green, count)
            termination = int(blue_green.get("TerminationWaitInSeconds", 0))
            limit = blue_green.get("MaximumExecutionTimeoutInSeconds")
            self._check_limit(limit, len(fractions) * wait + termination)
            if any(v.get("AllAtOnceOnly") for v in variants):
                # AWS Marketplace containers and Inf1 endpoints: all at once, with no final bake (the spec).
                fractions, wait = [1.0], 0
            pending.update(kind="blue_green", fractions=fractions, wait=wait, termination_wait=termination,
                           max_time=limit)
            return pending
        # No update policy: the fleet is still replaced blue/green, all at once, with no bake. botocore's
        # DeploymentConfig: "If no update policy is specified, SageMaker uses a blue/green deployment strategy
        # with all at once traffic shifting by default" (a DeploymentConfig holding only
        # AutoRollbackConfiguration included). Without any DeploymentConfig no alarm is watched (the spec).
        pending.update(kind="blue_green", fractions=[1.0], wait=0, termination_wait=0, max_time=None,
                       alarms=alarms if deployment is not None else [])
        return pending

    @staticmethod
    def _check_limit(limit: int | None, total: int) -> None:
        if limit is not None and limit <= total:
            raise validation_error(TIMEOUT_TOO_SHORT.format(limit=limit, total=total))

    def update_endpoint_weights_and_capacities(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.endpoints, region, p["EndpointName"], "endpoint", "endpoint")
        arn = doc["EndpointArn"]
        if doc["EndpointStatus"] != "InService":
            raise validation_error(UPDATE_IN_PROGRESS.format(arn=arn))
        by_name = {v["VariantName"]: v for v in doc["fleet"]}
        unknown = [d["VariantName"] for d in p["DesiredWeightsAndCapacities"] if d["VariantName"] not in by_name]
        if unknown:
            raise validation_error(UNKNOWN_VARIANT.format(variant=", ".join(unknown), arn=arn))
        previous_counts = {v["VariantName"]: v["Count"] for v in doc["fleet"]}  # what a rollback restores
        for desired in p["DesiredWeightsAndCapacities"]:
            variant = by_name[desired["VariantName"]]
            if desired.get("DesiredWeight") is not None:
                # The new weight is DesiredWeight while Updating; it becomes CurrentWeight (and takes
                # traffic) when the update ends.
                variant["DesiredWeight"] = float(desired["DesiredWeight"])
            if desired.get("DesiredInstanceCount") is not None:
                variant["Count"] = int(desired["DesiredInstanceCount"])
        now = _now()
        # Instance counts converge in the reconcile loop; the weights change when they have.
        doc["pending"] = {"kind": "capacity", "config": doc["EndpointConfigName"], "variants": doc["fleet"],
                          "phase": "provision", "phase_started": now, "started": now, "step": 0,
                          "fractions": [], "fraction": 0.0, "previous_counts": previous_counts}
        doc["EndpointStatus"] = "Updating"
        doc["LastModifiedTime"] = now
        self.reg.save("endpoint", (region, doc["EndpointName"].lower()), doc)
        return {"EndpointArn": arn}

    def delete_endpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.endpoints, region, p["EndpointName"], "endpoint", "endpoint")
        if doc["EndpointStatus"] == "Deleting":
            return {}
        # An endpoint whose deployment is in progress cannot be deleted: the service answers
        # ValidationException while it is Creating (reported from the real service, with the update
        # message's wording), and the API reference says a SystemUpdating endpoint "cannot be updated or
        # deleted". Updating and RollingBack are in progress the same way; wait for InService or Failed.
        if doc["EndpointStatus"] in IN_PROGRESS:
            raise validation_error(DELETE_IN_PROGRESS.format(arn=doc["EndpointArn"]))
        for fleet in (doc["fleet"], (doc.get("pending") or {}).get("variants") or []):
            for variant in fleet:
                for iid in variant["instances"]:
                    self.reg.supervisor.stop(iid)
                variant["instances"] = []
        doc["pending"] = None
        doc["EndpointStatus"] = "Deleting"
        doc["LastModifiedTime"] = _now()
        self.reg.save("endpoint", (region, doc["EndpointName"].lower()), doc)
        return {}

    # ------------------------------------------------------------------ tags

    def _resource_of(self, arn: str) -> tuple[str, str, str]:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "sagemaker" or "/" not in parts[5]:
            raise validation_error(BAD_ARN.format(arn=arn))
        kind, name = parts[5].split("/", 1)
        table = {"model": self.reg.models, "endpoint-config": self.reg.configs, "endpoint": self.reg.endpoints}.get(kind)
        if table is None or (parts[3], name.lower()) not in table:
            what = {"endpoint-config": "endpoint configuration"}.get(kind, kind)
            raise validation_error(NOT_FOUND.format(what=what, arn=arn))
        return parts[3], kind, name

    def add_tags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._resource_of(arn)
        tags = {t["Key"]: t for t in self.reg.tags.get(arn, [])}
        for tag in p["Tags"]:
            tags[tag["Key"]] = {"Key": tag["Key"], "Value": tag.get("Value", "")}
        self.reg.set_tags(arn, list(tags.values()))
        return {"Tags": p["Tags"]}

    def list_tags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._resource_of(arn)
        tags = self.reg.tags.get(arn, [])
        start = _page_start(p.get("NextToken"))
        size = int(p.get("MaxResults") or 50)
        out: dict[str, Any] = {"Tags": tags[start:start + size]}
        if start + size < len(tags):
            out["NextToken"] = str(start + size)
        return out

    def delete_tags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._resource_of(arn)
        drop = set(p["TagKeys"])
        self.reg.set_tags(arn, [t for t in self.reg.tags.get(arn, []) if t["Key"] not in drop])
        return {}


def _page_start(token: str | None) -> int:
    """Where a page starts: a NextToken this server handed out, else a ValidationException (a token
    that is not one of ours is the caller's error, not an internal failure)."""
    if not token:
        return 0
    if not token.isdigit():
        raise validation_error(BAD_TOKEN.format(token=token))
    return int(token)


def _share(size: dict[str, Any], count: int) -> float:
    value = float(size["Value"])
    return value / max(1, count) if size["Type"] == "INSTANCE_COUNT" else value / 100.0


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
