"""Rollout rules, as deploy applies them: each environment's own policy, then every model's
effective policy in each environment it deploys to (its overrides, with its effective instance
count), through the rollout table's :func:`~modelops.config.rollout.problems`, the same function
deploy refuses with. A problem of the environment's own policy is reported once, in
``pipelines/environments.yaml``; a problem the model brings (its override, or a fleet too small for
the environment's canary) is reported in its ``model.yaml``."""

from __future__ import annotations

from collections.abc import Iterator

from modelops.config.effective import effective
from modelops.config.findings import Finding
from modelops.config.model import ModelConfig
from modelops.config.rollout import problems
from modelops.policy.context import CheckContext, reads


def check_environment_rollouts(ctx: CheckContext) -> Iterator[Finding | None]:
    """The environments' own rollout policies: what is wrong whatever a model's instance count."""
    envs = ctx.environments
    if envs is None:
        return
    for env in envs:
        base = ("environments", env.name, "rollout")
        for p in problems(env.rollout, environment=env.name):
            path = (*base, p.field) if envs.source.has((*base, p.field)) else base
            yield ctx.in_file(envs.file, envs.source, p.rule, path, p.message, p.hint)


def _located(model: ModelConfig, env: str, field: str) -> tuple[str | int, ...]:
    """Where in the model config the value behind a problem is set: its environment override, its
    own rollout, or (for the fleet) its instance count."""
    if field == "instance_count":
        places: tuple[tuple[str | int, ...], ...] = (
            ("spec", "environments", env, "resources", "instance_count"), ("spec", "resources", "instance_count"),
            ("spec", "resources"))
    else:
        places = (("spec", "environments", env, "rollout", field), ("spec", "rollout", field),
                  ("spec", "environments", env, "rollout"), ("spec", "rollout"), ("spec", "resources"))
    return next(p for p in places if model.source.has(p) or p == ("spec", "resources"))


@reads(("spec", "clouds"), ("spec", "rollout"), ("spec", "resources", "instance_count"),
       ("spec", "environments", "*", "rollout"), ("spec", "environments", "*", "resources", "instance_count"))
def check_model_rollouts(ctx: CheckContext) -> Iterator[Finding | None]:
    """Each model's effective rollout per environment it deploys to, with its instance count there."""
    for model in ctx.models:
        for env in ctx.deploy_targets(model):
            config = effective(model, env)
            own = {(p.rule, p.field) for p in problems(env.rollout, environment=env.name)}
            for p in config.rollout_problems():
                overridden = p.field != "instance_count" and (
                    model.rollout.sets(p.field) or (env.name in model.environments
                                                    and model.environments[env.name].rollout.sets(p.field)))
                if (p.rule, p.field) in own and not overridden:
                    continue  # the environment's own problem, reported once in environments.yaml
                yield ctx.at(model, p.rule, _located(model, env.name, p.field), p.message, p.hint)
