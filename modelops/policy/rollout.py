"""Rollout rules: canary and linear sizes within SageMaker's limits, and an execution timeout that
exceeds the waits (otherwise SageMaker rolls the update back for running out of time)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from modelops.config.findings import Finding
from modelops.config.model import ModelConfig, RolloutPolicy
from modelops.policy.context import CheckContext

CANARY_PERCENT = "canary size {value}% is more than the 50% of capacity SageMaker allows"
CANARY_COUNT = "canary size {value} instances is more than half of the {count} instances in {environment}"
LINEAR_PERCENT = "linear step {value}% is outside the 10%..50% SageMaker allows"
LINEAR_COUNT = "linear step {value} instances is outside 10%..50% of the {count} instances in {environment}"
TIMEOUT = ("max_execution_timeout_seconds {timeout} does not exceed the {total} s of waits in {environment} "
           "({detail})")
TIMEOUT_HINT = "raise max_execution_timeout_seconds (600..28800) or shorten the waits"


def total_wait_seconds(policy: RolloutPolicy, instance_count: int | None = None) -> tuple[int, str]:
    """The seconds a blue/green update spends baking and waiting, and how that was counted."""
    wait, term = policy.wait_interval_seconds, policy.termination_wait_seconds
    if policy.strategy == "canary":
        return 2 * wait + term, f"2 bakes of {wait} s + {term} s termination wait"
    if policy.strategy == "linear" and policy.step_size is not None:
        size = policy.step_size
        if size.type == "CAPACITY_PERCENT":
            steps = math.ceil(100 / size.value)
        else:
            steps = math.ceil((instance_count or size.value) / size.value)
        return steps * wait + term, f"{steps} steps of {wait} s + {term} s termination wait"
    return wait + term, f"a bake of {wait} s + {term} s termination wait"


def _problems(policy: RolloutPolicy, count: int | None, environment: str) -> list[tuple[str, str, str]]:
    """(rule, field, message) for one effective policy; ``count`` None when not known."""
    out = []
    size = policy.step_size
    if size is not None and policy.strategy == "canary":
        if size.type == "CAPACITY_PERCENT" and size.value > 50:
            out.append(("rollout.step-size", "step_size", CANARY_PERCENT.format(value=size.value)))
        if size.type == "INSTANCE_COUNT" and count is not None and size.value * 2 > count:
            out.append(("rollout.step-size", "step_size", CANARY_COUNT.format(
                value=size.value, count=count, environment=environment)))
    if size is not None and policy.strategy == "linear":
        if size.type == "CAPACITY_PERCENT" and not 10 <= size.value <= 50:
            out.append(("rollout.step-size", "step_size", LINEAR_PERCENT.format(value=size.value)))
        if size.type == "INSTANCE_COUNT" and count is not None and not count * 0.1 <= size.value <= count * 0.5:
            out.append(("rollout.step-size", "step_size", LINEAR_COUNT.format(
                value=size.value, count=count, environment=environment)))
    total, detail = total_wait_seconds(policy, count)
    if policy.max_execution_timeout_seconds <= total:
        out.append(("rollout.timeout", "max_execution_timeout_seconds", TIMEOUT.format(
            timeout=policy.max_execution_timeout_seconds, total=total, environment=environment, detail=detail)))
    return out


def check_environment_rollouts(ctx: CheckContext) -> Iterator[Finding | None]:
    """The environments' own rollout policies (instance counts unknown here)."""
    envs = ctx.environments
    if envs is None:
        return
    for env in envs:
        for rule, name, message in _problems(env.rollout, None, env.name):
            path = ("environments", env.name, "rollout", name)
            yield ctx.in_file(envs.file, envs.source, rule, path, message, TIMEOUT_HINT if rule == "rollout.timeout" else "")


def _model_sets_rollout(model: ModelConfig, env: str) -> tuple[str | int, ...] | None:
    for path in (("spec", "environments", env, "rollout"), ("spec", "rollout")):
        if model.source.has(path):
            return path
    return None


def check_model_rollouts(ctx: CheckContext) -> Iterator[Finding | None]:
    """Each model's effective policy per environment, where the model changes it or where instance
    counts matter (INSTANCE_COUNT sizes)."""
    for model in ctx.models:
        for env in ctx.deploy_targets(model):
            effective = model.rollout_for(env)
            count = model.resources_for(env.name).instance_count
            own = _model_sets_rollout(model, env.name)
            env_problems = {m for _, _, m in _problems(env.rollout, None, env.name)}
            for rule, name, message in _problems(effective, count, env.name):
                if message in env_problems:
                    continue  # the environment's own problem, reported once in environments.yaml
                path = (*own, name) if own and model.source.has((*own, name)) else (own or ("spec", "resources"))
                yield ctx.at(model, rule, path, message, TIMEOUT_HINT if rule == "rollout.timeout" else "")
