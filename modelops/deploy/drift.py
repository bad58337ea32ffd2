"""Drift: the field-level difference between the desired state (a :class:`~modelops.deploy.specs.RegionTarget`:
git at a ref built into a release) and the observed state (:class:`~modelops.deploy.observed.ObservedRegion`).
Pure: every function compares values already read.

Each difference names how ``sync`` repairs it (``repair``):

- ``rollout``: the endpoint must serve another endpoint config (release, endpoint config, variants,
  instance type, image, model data, container environment, a failed or missing endpoint): a
  blue/green update under the rollout policy, as a deploy does;
- ``capacity``: the serving variant's instance count or weight (UpdateEndpointWeightsAndCapacities);
- ``alarms``: an SLO alarm missing or changed (PutMetricAlarm);
- ``autoscaling``: the scalable target or its policy (Application Auto Scaling, aws only);
- ``tags``: the endpoint's release tag (AddTags);
- ``next rollout``: the DeploymentConfig SageMaker echoes from the last update (LastDeploymentConfig)
  differs from what the next rollout sends. Shown, not drift: nothing serves differently because of
  it, and every rollout modelops makes sends the config's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops import naming
from modelops.deploy import specs
from modelops.deploy.cloud import AlarmView
from modelops.deploy.machine import BUSY, IN_SERVICE, EndpointView
from modelops.deploy.observed import ObservedRegion

ROLLOUT = "rollout"
CAPACITY = "capacity"
ALARMS = "alarms"
AUTOSCALING = "autoscaling"
TAGS = "tags"
NEXT_ROLLOUT = "next rollout"

#: What a release's build supplies: not known before the release is built (``plan`` of a new commit).
NOT_BUILT = "(the build of {release})"
# The parts of an alarm's definition that decide when it fires (PutMetricAlarm's own names).
_ALARM_FIELDS = ("Namespace", "MetricName", "Dimensions", "ExtendedStatistic", "Statistic", "Period", "Metrics",
                 "Threshold", "EvaluationPeriods", "DatapointsToAlarm", "ComparisonOperator", "TreatMissingData")


@dataclass(frozen=True)
class FieldDiff:
    """One field that differs: its path (``variants.primary.image``), both values as text (None:
    absent) and how sync repairs it."""

    field: str
    observed: str | None
    desired: str | None
    repair: str

    @property
    def is_drift(self) -> bool:
        return self.repair != NEXT_ROLLOUT

    @property
    def text(self) -> str:
        """``field: observed -> desired`` (``(none)`` for an absent side)."""
        return f"{self.field}: {_shown(self.observed)} -> {_shown(self.desired)}" + (
            f" ({NEXT_ROLLOUT})" if not self.is_drift else "")

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "observed": self.observed, "desired": self.desired, "repair": self.repair}


def _shown(value: str | None) -> str:
    return "(none)" if value is None else value


def region_diff(target: specs.RegionTarget, observed: ObservedRegion) -> tuple[FieldDiff, ...]:
    """Every difference between what ``target`` asks of its region and what the region serves."""
    ep = observed.endpoint
    out: list[FieldDiff] = []
    if ep is None:
        out.append(FieldDiff("endpoint", None, target.endpoint_name, ROLLOUT))
        out.extend(alarm_diffs(specs.alarm_requests(target), observed.alarms))
        return tuple(out)
    if ep.status not in BUSY and ep.status != IN_SERVICE:
        out.append(FieldDiff("endpoint.status", ep.status, IN_SERVICE, ROLLOUT))
    if observed.release != target.release:
        out.append(FieldDiff("release", observed.release_text, target.release, ROLLOUT))
    if ep.config_name != target.endpoint_config_name:
        out.append(FieldDiff("endpoint_config", ep.config_name, target.endpoint_config_name, ROLLOUT))
    out.extend(variant_diffs(target, observed))
    out.extend(capacity_diffs(target, ep))
    out.extend(alarm_diffs(specs.alarm_requests(target), observed.alarms))
    if observed.scaling_applies:
        from modelops.deploy import autoscaling

        want, found = autoscaling.desired(target), observed.scaling
        if want is not None and (found is None or not autoscaling.matches(want, found)):
            out.append(FieldDiff("autoscaling", found.text() if found else None, want.text(), AUTOSCALING))
    if ep.config_name == target.endpoint_config_name and ep.release_tag != target.release:
        out.append(FieldDiff(f"tags.{naming.TAG_RELEASE}", ep.release_tag, target.release, TAGS))
    out.extend(deployment_config_diffs(specs.target_deployment_config(target), ep.deployment_config))
    return tuple(out)


def variant_diffs(target: specs.RegionTarget, observed: ObservedRegion) -> list[FieldDiff]:
    """What the serving fleet's variants run against the release's one variant: instance type,
    image, model data, container environment (secret-named values masked)."""
    from modelops.ledger.records import REDACTED, is_secret_name

    blue = observed.blue
    names = sorted(v.name for v in blue)
    if names != [naming.PRIMARY_VARIANT]:
        return [FieldDiff("variants", ", ".join(names) or None, naming.PRIMARY_VARIANT, ROLLOUT)]
    v = blue[0]
    base = f"variants.{v.name}"
    out = []
    if v.instance_type != target.instance_type:
        out.append(FieldDiff(f"{base}.instance_type", v.instance_type, target.instance_type, ROLLOUT))
    built = bool(target.image_uri)
    if v.image != target.image_uri:
        out.append(FieldDiff(f"{base}.image", v.image, target.image_uri or NOT_BUILT.format(release=target.release),
                             ROLLOUT))
    if built and (v.model_data_url or None) != (target.model_data_url or None):
        out.append(FieldDiff(f"{base}.model_data_url", v.model_data_url, target.model_data_url, ROLLOUT))
    want = specs.container_environment(target)
    for key in sorted(set(want) | set(v.environment)):
        have, wanted = v.environment.get(key), want.get(key)
        if have != wanted:
            if is_secret_name(key):
                have, wanted = (REDACTED if have is not None else None), (REDACTED if wanted is not None else None)
            out.append(FieldDiff(f"{base}.environment.{key}", have, wanted, ROLLOUT))
    return out


def capacity_diffs(target: specs.RegionTarget, endpoint: EndpointView) -> list[FieldDiff]:
    """The serving variant's weight and instance count (desired, and current once in service) against
    the declared ones: the declared count, or the autoscaling range on aws. Only for an endpoint on the
    target's endpoint config: another config is a rollout's to replace."""
    if endpoint.config_name != target.endpoint_config_name:
        return []
    low, high = specs.instance_range(target)
    wanted = str(low) if low == high else f"{low}..{high}"
    out = []
    for w in endpoint.weights:
        if w.fleet != "blue" or w.variant != naming.PRIMARY_VARIANT:
            continue
        base = f"variants.{w.variant}"
        if w.desired_instances is not None and not low <= w.desired_instances <= high:
            out.append(FieldDiff(f"{base}.desired_instance_count", str(w.desired_instances), wanted, CAPACITY))
        elif endpoint.status == IN_SERVICE and not low <= w.instances <= high:
            out.append(FieldDiff(f"{base}.current_instance_count", str(w.instances), wanted, CAPACITY))
        weight = w.desired_weight if endpoint.status != IN_SERVICE else w.current_weight
        if abs(weight - 1.0) > 1e-9:
            out.append(FieldDiff(f"{base}.weight", f"{weight:g}", "1", CAPACITY))
    return out


def repair_count(target: specs.RegionTarget, endpoint: EndpointView) -> int:
    """The instance count a capacity repair sets: the declared one, or the observed one clamped into the
    autoscaling range."""
    low, high = specs.instance_range(target)
    found = next((w.desired_instances for w in endpoint.weights
                  if w.fleet == "blue" and w.variant == naming.PRIMARY_VARIANT and w.desired_instances is not None),
                 low)
    return min(max(found, low), high)


def alarm_diffs(requests: Sequence[Mapping[str, Any]], alarms: Mapping[str, AlarmView]) -> list[FieldDiff]:
    """Each SLO alarm missing, or each field of its definition that differs from the request."""
    out = []
    for body in requests:
        name = str(body["AlarmName"])
        short = next((kind for kind in (specs.LATENCY_ALARM, specs.ERROR_ALARM) if name.endswith(kind)), name)
        found = alarms.get(name)
        if found is None or found.definition is None:
            out.append(FieldDiff(f"alarms.{short}", None, _alarm_text(body), ALARMS))
            continue
        for key in _ALARM_FIELDS:
            want, have = body.get(key), found.definition.get(key)
            if want is None and have is None:
                continue
            if _canonical(want) != _canonical(have):
                out.append(FieldDiff(f"alarms.{short}.{key}", _value(have), _value(want), ALARMS))
    return out


def alarms_in_place(requests: Sequence[Mapping[str, Any]], alarms: Mapping[str, AlarmView]) -> bool:
    return not alarm_diffs(requests, alarms)


def deployment_config_diffs(want: Mapping[str, Any], have: Mapping[str, Any] | None) -> list[FieldDiff]:
    """The next rollout's DeploymentConfig against the one SageMaker echoes from the last update, by
    leaf (``deployment_config.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type``)."""
    flat_want, flat_have = _flatten(want), _flatten(have or {})
    return [FieldDiff(f"deployment_config.{key}", flat_have.get(key), flat_want.get(key), NEXT_ROLLOUT)
            for key in sorted(set(flat_want) | set(flat_have)) if flat_want.get(key) != flat_have.get(key)]


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list | tuple):
        if all(isinstance(v, Mapping) and set(v) == {"AlarmName"} for v in value):  # alarm lists: by name
            return {prefix: ", ".join(sorted(str(v["AlarmName"]) for v in value))}
        return {prefix: _value(value) or ""}
    return {prefix: _value(value) or ""}


def _canonical(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return json.dumps(value)


def _value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float | bool):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _alarm_text(body: Mapping[str, Any]) -> str:
    """An alarm's definition in a few words (``p99 latency > 300 ms over 10 s x 1``)."""
    period = body.get("Period") or next((m["MetricStat"]["Period"] for m in body.get("Metrics", [])
                                         if m.get("MetricStat")), None)
    threshold = float(body["Threshold"])
    if body.get("MetricName") == "ModelLatency":  # microseconds
        what = f"{body.get('ExtendedStatistic') or body.get('Statistic')} latency > {threshold / 1000:g} ms"
    elif body.get("Metrics"):
        what = f"{next((m.get('Label') or m['Expression'] for m in body['Metrics'] if m.get('Expression')), '')} > {threshold:g}"
    else:
        what = f"{body.get('ExtendedStatistic') or body.get('Statistic')} {body.get('MetricName')} > {threshold:g}"
    return f"{what} over {period} s x {body.get('EvaluationPeriods', 1)}"


def is_drifted(diffs: Sequence[FieldDiff]) -> bool:
    return any(d.is_drift for d in diffs)
