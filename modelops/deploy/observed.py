"""The observed state: what the cloud says serves a model in one environment and region.

Read once here, from DescribeEndpoint (status, variants, weights, instance counts, the pending
deployment, LastDeploymentConfig), DescribeEndpointConfig and DescribeModel of each fleet (instance
type, image, model data, container environment), DescribeAlarms (the SLO alarms: definition and
state), GetMetricData (each variant's recent invocations, 5xx errors and p99 latency) and, on aws,
Application Auto Scaling. ``status``, ``plan``/``diff``, ``sync``, ``ci pr``'s cloud plan and
``watch`` read it; :mod:`modelops.deploy.drift` compares it with the desired state.

Tags are hints, never the truth: the release is the one whose endpoint config the endpoint serves
(endpoint config names are derived from the release, :func:`modelops.naming.endpoint_config_name`),
so an out-of-band UpdateEndpoint to another config shows whatever the tags say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig
from modelops.deploy import specs
from modelops.deploy.cloud import AlarmView, RegionCloud, VariantMetrics
from modelops.deploy.health import Health, health_of, health_window
from modelops.deploy.machine import EndpointView

if TYPE_CHECKING:
    from modelops.deploy.autoscaling import ScalingView

ALARM_KINDS = (specs.LATENCY_ALARM, specs.ERROR_ALARM)


@dataclass(frozen=True)
class ObservedVariant:
    """One production variant of one fleet: ``blue`` serves, ``green`` is being deployed."""

    fleet: str
    config: str
    name: str
    model_name: str | None
    instance_type: str | None
    current_instances: int
    desired_instances: int | None
    current_weight: float
    desired_weight: float
    image: str | None = None
    model_data_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedRegion:
    """A model's endpoint in one environment and region, as the cloud says.

    ``release`` is the release whose endpoint config serves (None: no endpoint, or a config no known
    release of the model has: :attr:`config_name` names it); ``release_tag`` is only the tag."""

    model: str
    environment: str
    region: str
    endpoint_name: str
    endpoint: EndpointView | None
    release: str | None
    variants: tuple[ObservedVariant, ...] = ()
    alarms: Mapping[str, AlarmView] = field(default_factory=dict)
    scaling: ScalingView | None = None
    scaling_applies: bool = False
    metrics: Mapping[str, VariantMetrics] = field(default_factory=dict)
    health: Health = field(default_factory=lambda: Health("-"))

    @property
    def status(self) -> str:
        return self.endpoint.status if self.endpoint else "absent"

    @property
    def config_name(self) -> str | None:
        return self.endpoint.config_name if self.endpoint else None

    @property
    def release_tag(self) -> str | None:
        return self.endpoint.release_tag if self.endpoint else None

    @property
    def blue(self) -> tuple[ObservedVariant, ...]:
        return tuple(v for v in self.variants if v.fleet == "blue")

    @property
    def release_text(self) -> str:
        """The release for people: the id, or what serves when no release of the model does."""
        if self.endpoint is None:
            return "-"
        return self.release or f"unknown (config {self.config_name})"


def alarm_names(model: str, environment: str) -> tuple[str, ...]:
    """Every SLO alarm modelops may make for a model's endpoint in an environment."""
    return tuple(naming.alarm_name(model, environment, kind) for kind in ALARM_KINDS)


def release_of_config(config_name: str | None, model: str, environment: str, releases: Iterable[str]) -> str | None:
    """The release among ``releases`` whose endpoint config is ``config_name`` (None: none of them)."""
    if not config_name:
        return None
    return next((r for r in releases if naming.endpoint_config_name(model, environment, r) == config_name), None)


def observe_region(cloud: RegionCloud, model: ModelConfig, environment: Environment, *,
                   releases: Iterable[str], now: float, with_metrics: bool = True) -> ObservedRegion:
    """Read the observed state of ``model``'s endpoint in ``cloud``'s region. ``releases`` are the
    model's known release ids (the ledger's, the desired one): the serving config is matched against
    their config names. ``now`` ends the window of the metrics (``with_metrics``: read them)."""
    endpoint_name = naming.endpoint_name(model.name, environment.name)
    known = [r for r in dict.fromkeys(releases) if r]
    view = cloud.endpoint(endpoint_name)
    alarms = cloud.alarms(alarm_names(model.name, environment.name))
    slo = specs.slo_thresholds(model, environment)
    window = health_window(environment, slo)
    scaling_applies = (not environment.is_local
                       and model.resources_for(environment.name).autoscaling is not None)
    if view is None:
        return ObservedRegion(model.name, environment.name, cloud.region, endpoint_name, None, None, alarms=alarms,
                              scaling_applies=scaling_applies,
                              health=health_of(None, {}, alarms, slo, window))
    if view.release_tag:
        known.append(view.release_tag)
    variants = _variants(cloud, view)
    metrics = cloud.variant_metrics(endpoint_name, sorted({v.name for v in variants}), start=now - window,
                                    end=now) if with_metrics else {}
    scaling = None
    if scaling_applies:
        from modelops.deploy import autoscaling

        scaling = autoscaling.observe(cloud, endpoint_name)
    return ObservedRegion(
        model.name, environment.name, cloud.region, endpoint_name, view,
        release_of_config(view.config_name, model.name, environment.name, known),
        variants=variants, alarms=alarms, scaling=scaling, scaling_applies=scaling_applies, metrics=metrics,
        health=health_of(view.status, metrics, alarms, slo, window))


def _variants(cloud: RegionCloud, view: EndpointView) -> tuple[ObservedVariant, ...]:
    """Each fleet's variants with what their endpoint config and model say (each described once)."""
    configs: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    out = []
    for w in view.weights:
        if w.config not in configs:
            configs[w.config] = cloud.endpoint_config(w.config) or {}
        declared: Mapping[str, Any] = next((v for v in configs[w.config].get("ProductionVariants") or []
                         if v.get("VariantName") == w.variant), {})
        model_name = declared.get("ModelName")
        if model_name and model_name not in models:
            models[model_name] = cloud.model(model_name) or {}
        container = _container(models.get(model_name or "", {}))
        out.append(ObservedVariant(
            fleet=w.fleet, config=w.config, name=w.variant, model_name=model_name,
            instance_type=declared.get("InstanceType"), current_instances=w.instances,
            desired_instances=w.desired_instances, current_weight=w.current_weight, desired_weight=w.desired_weight,
            image=container.get("Image"), model_data_url=container.get("ModelDataUrl"),
            environment=dict(container.get("Environment") or {})))
    return tuple(out)


def _container(model: Mapping[str, Any]) -> Mapping[str, Any]:
    return model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
