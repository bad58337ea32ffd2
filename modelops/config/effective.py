"""A model's **effective** config in one environment: what a deploy there would use.

The model and the environment each say part of it (``model.yaml`` and its ``spec.environments.<env>``
overrides; ``pipelines/environments.yaml``'s rollout and security defaults); this module is where
the two meet, so that neither config type imports the other. Validate, plan, ci pr and deploy all
read the effective values from here, so each check sees what deploy will do.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops.config.environments import Environment
from modelops.config.model import ModelConfig, Resources
from modelops.config.rollout import RolloutPolicy, RolloutProblem, problems
from modelops.config.security import Security
from modelops.errors import InputError

#: Requests per second of synthetic traffic on the local cloud when the environment does not say.
LOCAL_TRAFFIC_RATE = 2.0
NOT_ON_CLOUD = "model {model} does not run on the {cloud} cloud of environment {environment}{consequence}"
NOT_ON_CLOUD_HINT = "list the cloud under spec.clouds in {file}, or pick another environment"


def rollout_for(model: ModelConfig, environment: Environment) -> RolloutPolicy:
    """The environment's rollout policy with the model's overrides applied (``spec.rollout``, then
    ``spec.environments.<env>.rollout``)."""
    policy = model.rollout.apply(environment.rollout)
    over = model.environments.get(environment.name)
    return over.rollout.apply(policy) if over is not None else policy


def security_for(model: ModelConfig, environment: Environment, region: str) -> Security:
    """Effective security in one environment and region: the environment's defaults, then the
    model's values, then the model's per-environment overrides; placeholders filled."""
    merged = environment.security.for_region(region).merged(model.security)
    over = model.environments.get(environment.name)
    if over is not None:
        merged = merged.merged(over.security)
    return merged.filled(account=environment.account, region=region, environment=environment.name)


def check_runs(model: ModelConfig, environment: Environment, *, consequence: str = "") -> None:
    """:class:`InputError` when ``model`` does not run on ``environment``'s cloud (its
    ``spec.clouds``); ``consequence`` says what that means for the command (", so it has no
    endpoint there")."""
    if not model.supports_cloud(environment.cloud):
        raise InputError(NOT_ON_CLOUD.format(model=model.name, cloud=environment.cloud, environment=environment.name,
                                             consequence=consequence), hint=NOT_ON_CLOUD_HINT.format(file=model.file))


@dataclass(frozen=True)
class Effective:
    """What a deploy of ``model`` to ``environment`` uses: resources and rollout (one per
    environment) and security (per region)."""

    model: ModelConfig
    environment: Environment
    resources: Resources
    rollout: RolloutPolicy

    def security(self, region: str) -> Security:
        return security_for(self.model, self.environment, region)

    @property
    def synthetic_traffic_rate(self) -> float | None:
        """Requests per second of the model's regression requests deploy sends while an update bakes
        (so the rollback alarms see data where no real traffic comes: the local cloud, or
        ``synthetic_traffic.enabled``); None when it sends none (no cases, or nothing bakes)."""
        env = self.environment
        if not (env.is_local or env.synthetic_traffic.enabled) or self.model.tests.cases is None:
            return None
        if env.rollout.wait_interval_seconds <= 0 and self.rollout.wait_interval_seconds <= 0:
            return None  # no bake: nothing watches the alarms
        return env.synthetic_traffic.requests_per_second if env.synthetic_traffic.enabled else LOCAL_TRAFFIC_RATE

    def rollout_problems(self) -> list[RolloutProblem]:
        """Why SageMaker would refuse this rollout with this fleet (empty: it would not)."""
        return problems(self.rollout, environment=self.environment.name,
                        instance_count=self.resources.instance_count)


def effective(model: ModelConfig, environment: Environment) -> Effective:
    return Effective(model, environment, model.resources_for(environment.name), rollout_for(model, environment))
