"""The SageMaker control plane (json 1.1): models, endpoint configs, endpoints and tags.

Every request is validated against botocore's input shape (``service.Service.call``) and then
against the service-side rules of ``shared/specs/sagemaker-endpoints.md``; every answer is cut to
the operation's output shape. Errors carry the real codes and message forms.

A handler never changes the registry's memory itself: it builds the new documents (copies of the
ones it changes) and hands them to ``Endpoints.commit``, which writes them first and changes memory
after; so a request that fails to save (a full disk) changes nothing, and its retry is not told that
what it creates "already exists". Instances are stopped only once the change that stops them is saved.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from typing import Any

from modelops.localcloud.endpoints import Change, Endpoints, traffic_steps
from modelops.localcloud.lifecycle import LOCAL_ACCOUNT
from modelops.localcloud.protocol import (
    SAGEMAKER_JSON,
    Response,
    ServiceError,
    epoch,
    partition_of,
    validation_error,
)
from modelops.localcloud.service import Handler, Service
from modelops.runtime import Clock

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
SERVERLESS_MEMORY = ("MemorySizeInMB {memory} of production variant {variant} is not valid: serverless memory comes in 1 GB "
                     "increments (1024, 2048, 3072, 4096, 5120 or 6144 MB).")
SERVERLESS_NOT_EMULATED = ("Production variant {variant} is serverless (ServerlessConfig): the local cloud does not "
                           "emulate serverless inference; give the variant an InstanceType and an InitialInstanceCount.")
# The account's quota of instances of one type for endpoints (a default: the real quotas vary by type and
# account). The service's words; the local cloud counts the instances of every endpoint of the region.
INSTANCE_QUOTA = 20
QUOTA_EXCEEDED = ("The account-level service limit '{instance_type} for endpoint usage' is {quota} Instances, with "
                  "current utilization of {used} Instances and a request delta of {delta} Instances. Please use AWS "
                  "Service Quotas to request an increase for this quota. If AWS Service Quotas is not available, "
                  "contact AWS support to request an increase for this quota.")
TIMEOUT_TOO_SHORT = ("MaximumExecutionTimeoutInSeconds ({limit}) must be greater than the sum of the wait intervals "
                     "and TerminationWaitInSeconds ({total}).")
DUPLICATE_VARIANT = "Production variant names must be unique within an endpoint config; {variant} is repeated."
NO_CONTAINER = "Either PrimaryContainer or Containers must be specified."
UNKNOWN_VARIANT = "The variant(s) \"[{variant}]\" is/are not present in the endpoint {arn}."
BAD_ARN = "Invalid resource ARN: {arn}."
BAD_TOKEN = "Invalid pagination token {token!r}: pass the NextToken of the previous answer."


class SageMakerApi(Service):
    """Handles ``X-Amz-Target: SageMaker.<Operation>`` requests (called in a worker thread)."""

    MODEL = "sagemaker"
    OPERATIONS = ("CreateModel", "DescribeModel", "DeleteModel", "ListModels",
                  "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
                  "CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "UpdateEndpoint",
                  "UpdateEndpointWeightsAndCapacities", "DeleteEndpoint", "AddTags", "ListTags", "DeleteTags")

    def __init__(self, endpoints: Endpoints, clock: Clock | None = None):
        super().__init__(clock)
        self.reg = endpoints

    def handle(self, operation: str, body: bytes, region: str) -> Response:
        return self.call(operation, body, SAGEMAKER_JSON, region)

    def run(self, handler: Handler, region: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.reg.lock:
            result = handler(region, params)
        self.reg.kick()
        return result

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def arn(region: str, kind: str, name: str) -> str:
        return f"arn:{partition_of(region)}:sagemaker:{region}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"

    def _get(self, table: dict[tuple[str, str], Any], region: str, name: str, kind: str, what: str) -> Any:
        doc = table.get((region, name.lower()))
        if doc is None:
            raise validation_error(NOT_FOUND.format(what=what, arn=self.arn(region, kind, name)))
        return doc

    def _endpoint(self, region: str, name: str) -> dict[str, Any]:
        """A copy of an endpoint's document, to change and commit."""
        return copy.deepcopy(self._get(self.reg.endpoints, region, name, "endpoint", "endpoint"))

    @staticmethod
    def _tags_on_create(arn: str, tags: list[dict[str, str]] | None) -> list[Change]:
        return [("tags", ("", arn), {"Tags": list(tags)})] if tags else []

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
                limit = epoch(params[bound])
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
        doc.update(ModelArn=arn, CreationTime=self.clock.now())
        self.reg.commit([("model", (region, name.lower()), doc), *self._tags_on_create(arn, p.get("Tags"))])
        return {"ModelArn": arn}

    def describe_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return dict(self._get(self.reg.models, region, p["ModelName"], "model", "model"))

    def delete_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.models, region, p["ModelName"], "model", "model")
        self.reg.commit([("model", (region, p["ModelName"].lower()), None), ("tags", ("", doc["ModelArn"]), None)])
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
            serverless = variant.get("ServerlessConfig")
            if serverless is not None:
                # The API reference: "Valid values are in 1 GB increments"; the model only bounds 1024-6144.
                # The wording of the service's refusal is inferred.
                if serverless["MemorySizeInMB"] % 1024:
                    raise validation_error(SERVERLESS_MEMORY.format(memory=serverless["MemorySizeInMB"],
                                                                    variant=variant["VariantName"]))
                raise validation_error(SERVERLESS_NOT_EMULATED.format(variant=variant["VariantName"]))
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(EndpointConfigArn=arn, CreationTime=self.clock.now())
        self.reg.commit([("endpoint-config", (region, name.lower()), doc), *self._tags_on_create(arn, p.get("Tags"))])
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        return dict(self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config",
                              "endpoint configuration"))

    def delete_endpoint_config(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(self.reg.configs, region, p["EndpointConfigName"], "endpoint-config", "endpoint configuration")
        self.reg.commit([("endpoint-config", (region, p["EndpointConfigName"].lower()), None),
                         ("tags", ("", doc["EndpointConfigArn"]), None)])
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
                "Count": count, "Image": image_uri, "ResolvedImage": resolved, "ResolutionTime": self.clock.now(),
                "ModelDataUrl": container.get("ModelDataUrl"), "Environment": container.get("Environment") or {},
                "StartupTimeout": pv.get("ContainerStartupHealthCheckTimeoutInSeconds") or 600,
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
        now = self.clock.now()
        variants = self._variants_of(region, config)
        self._check_quota(region, variants, {})
        doc = {
            "EndpointName": name, "EndpointArn": arn, "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating", "CreationTime": now, "LastModifiedTime": now, "fleet": [],
            "pending": {"kind": "create", "config": config["EndpointConfigName"],
                        "variants": variants, "phase": "provision",
                        "phase_started": now, "started": now, "step": 0, "fractions": [1.0], "fraction": 0.0},
        }
        if p.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = p["DeploymentConfig"]
        self.reg.commit([("endpoint", (region, name.lower()), doc), *self._tags_on_create(arn, p.get("Tags"))])
        return {"EndpointArn": arn}

    def _check_quota(self, region: str, variants: list[dict[str, Any]], replacing: dict[str, int]) -> None:
        """ResourceLimitExceeded when ``variants`` would take the region past the quota of an instance
        type (``replacing``: instances of the endpoint being changed that the change gives back, by type)."""
        wanted = Counter[str]()
        for variant in variants:
            wanted[str(variant.get("InstanceType"))] += int(variant["Count"])
        used = Counter[str]()
        for (doc_region, _), doc in self.reg.endpoints.items():
            if doc_region != region or doc.get("EndpointStatus") == "Deleting":
                continue
            for variant in [*doc["fleet"], *((doc.get("pending") or {}).get("variants") or [])]:
                used[str(variant.get("InstanceType"))] += int(variant["Count"])
        for instance_type, delta in wanted.items():
            current = used[instance_type] - replacing.get(instance_type, 0)
            if current + delta > INSTANCE_QUOTA:
                raise ServiceError("ResourceLimitExceeded", QUOTA_EXCEEDED.format(
                    instance_type=instance_type, quota=INSTANCE_QUOTA, used=current, delta=delta))

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
        doc = self._endpoint(region, p["EndpointName"])
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
        self._check_quota(region, variants, {})  # green runs beside blue until blue is retired
        pending = self._plan_update(doc, config, variants, deployment)
        doc["pending"] = pending
        doc["EndpointStatus"] = "Updating"
        doc["FailureReason"] = None
        doc["LastModifiedTime"] = self.clock.now()
        if deployment is not None:
            doc["LastDeploymentConfig"] = deployment
        self.reg.commit([("endpoint", (region, doc["EndpointName"].lower()), doc)])
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
        now = self.clock.now()
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
        doc = self._endpoint(region, p["EndpointName"])
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
        given_back = Counter[str]()
        for variant in doc["fleet"]:
            given_back[str(variant.get("InstanceType"))] += previous_counts[variant["VariantName"]]
        self._check_quota(region, doc["fleet"], given_back)
        now = self.clock.now()
        # Instance counts converge in the reconcile loop; the weights change when they have.
        doc["pending"] = {"kind": "capacity", "config": doc["EndpointConfigName"], "variants": doc["fleet"],
                          "phase": "provision", "phase_started": now, "started": now, "step": 0,
                          "fractions": [], "fraction": 0.0, "previous_counts": previous_counts}
        doc["EndpointStatus"] = "Updating"
        doc["LastModifiedTime"] = now
        self.reg.commit([("endpoint", (region, doc["EndpointName"].lower()), doc)])
        return {"EndpointArn": arn}

    def delete_endpoint(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._endpoint(region, p["EndpointName"])
        if doc["EndpointStatus"] == "Deleting":
            return {}
        # An endpoint whose deployment is in progress cannot be deleted: the service answers
        # ValidationException while it is Creating (reported from the real service, with the update
        # message's wording), and the API reference says a SystemUpdating endpoint "cannot be updated or
        # deleted". Updating and RollingBack are in progress the same way; wait for InService or Failed.
        if doc["EndpointStatus"] in IN_PROGRESS:
            raise validation_error(DELETE_IN_PROGRESS.format(arn=doc["EndpointArn"]))
        stopping = []
        for fleet in (doc["fleet"], (doc.get("pending") or {}).get("variants") or []):
            for variant in fleet:
                stopping += variant["instances"]
                variant["instances"] = []
        doc["pending"] = None
        doc["EndpointStatus"] = "Deleting"
        doc["LastModifiedTime"] = self.clock.now()
        self.reg.commit([("endpoint", (region, doc["EndpointName"].lower()), doc)])
        for iid in stopping:  # once Deleting is saved: a failed save leaves the endpoint serving
            self.reg.supervisor.stop(iid)
        return {}

    # ------------------------------------------------------------------ tags

    def _resource_of(self, arn: str) -> tuple[str, str, str]:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "sagemaker" or "/" not in parts[5]:
            raise validation_error(BAD_ARN.format(arn=arn))
        kind, name = parts[5].split("/", 1)
        table = {"model": self.reg.models, "endpoint-config": self.reg.configs, "endpoint": self.reg.endpoints}.get(kind)
        if table is None or (parts[3], name.lower()) not in table or parts[1] != partition_of(parts[3]):
            what = {"endpoint-config": "endpoint configuration"}.get(kind, kind)
            raise validation_error(NOT_FOUND.format(what=what, arn=arn))
        return parts[3], kind, name

    def add_tags(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._resource_of(arn)
        tags = {t["Key"]: t for t in self.reg.tags.get(arn, [])}
        for tag in p["Tags"]:
            tags[tag["Key"]] = {"Key": tag["Key"], "Value": tag.get("Value", "")}
        self.reg.commit([("tags", ("", arn), {"Tags": list(tags.values())})])
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
        self.reg.commit([("tags", ("", arn), {"Tags": [t for t in self.reg.tags.get(arn, []) if t["Key"] not in drop]})])
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
