"""Synthetic traffic while a canary bakes, where an environment has no real traffic (the local cloud, or
``synthetic_traffic.enabled``): the model's regression requests at a steady rate, so the rollback
alarms see data. The sending itself is verify's (``modelops.verify.send_traffic``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.config import Environment, ModelConfig, Workspace, effective
from modelops.deploy.rollout import TrafficStarter, TrafficStopper
from modelops.deploy.specs import RegionTarget
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.deploy.cloud import RegionCloud


def traffic_starter(model: ModelConfig, env: Environment, ws: Workspace, ref: str | None,
                    runtime: Runtime) -> TrafficStarter | None:
    """A starter for ``reconcile_region`` (None when the environment gets no synthetic traffic)."""
    rate = effective(model, env).synthetic_traffic_rate
    if rate is None:
        return None
    from modelops.config.cases import load_cases

    cases = load_cases(ws, model, ref)

    def start(target: RegionTarget, cloud: RegionCloud) -> TrafficStopper | None:
        from modelops.verify import send_traffic

        runtime.progress.step(f"{env.name}/{target.region}: synthetic traffic at {rate:g}/s while the update bakes")
        sender: TrafficStopper = send_traffic(cloud.clients, target.region, target.endpoint_name, cases, rate=rate,
                                              runtime=runtime)
        return sender

    return start
