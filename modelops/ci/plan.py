"""What a pull request would change where: per model, environment and region, computed for a PR check.

Two layers, both safe to run on any pull request (neither creates, updates or starts anything):

- the **config plan** compares the desired state of each (model, environment, region) at the base and
  at the head of the change: instance type and count, autoscaling, rollout, container, security, and
  whether the model's files changed (a new release). It needs no cloud at all.
- the **cloud plan** asks :func:`modelops.deploy.plan` what the deployed endpoint would go through,
  where that is safe: on aws with credentials at hand (deploy's plan only describes), on the local
  cloud only when it is already running (a PR check must not start a server). Otherwise the row says
  why it was skipped. The cloud plan plugs in through :data:`CloudPlanner`; tests and other callers can
  pass their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelops.config.effective import rollout_for, security_for
from modelops.config.environments import Environment, Environments
from modelops.config.model import ModelConfig
from modelops.naming import endpoint_name
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.deploy import Plan

# Actions, in the order a reader cares about them.
CREATE = "create"
RELEASE = "new release"
UPDATE = "update"
REMOVE = "no longer deployed"
UNCHANGED = "no change"

LOCAL_NOT_RUNNING = "the local cloud is not running; a PR check does not start it"


@dataclass(frozen=True)
class PlanRow:
    """One (model, environment, region): the action a deploy of the head would take there, the
    config values that change (``field: old -> new``), and the cloud plan's verdict when there is one
    (``cloud`` None: not asked; ``cloud_status`` ``planned`` | ``skipped`` | ``failed``)."""

    model: str
    environment: str
    region: str
    wave: int  # 1-based
    endpoint: str
    action: str
    changes: tuple[str, ...] = ()
    cloud: str | None = None
    cloud_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "environment": self.environment, "region": self.region, "wave": self.wave,
                "endpoint": self.endpoint, "action": self.action, "changes": list(self.changes),
                "cloud": self.cloud, "cloud_status": self.cloud_status}


@dataclass(frozen=True)
class CloudVerdict:
    """What the cloud plan says about one (model, environment): a line per region (``summary``),
    ``status`` ``planned`` | ``skipped`` | ``failed``; ``gate_failed`` when the plan says a deploy
    would be refused (e.g. a gate deploy would check)."""

    status: str
    summary: Mapping[str, str] = field(default_factory=dict)  # region -> one line
    message: str = ""
    gate_failed: bool = False


#: ``(model, environment, ref, runtime) -> CloudVerdict``
CloudPlanner = Callable[[ModelConfig, Environment, "str | None", Runtime], CloudVerdict]


def desired_state(model: ModelConfig, env: Environment, region: str) -> dict[str, str]:
    """The values a deploy of ``model`` sets in one environment and region, as short strings (no
    secrets: environment variables are listed by name only)."""
    res = model.resources_for(env.name)
    roll = rollout_for(model, env)
    sec = security_for(model, env, region)
    return {
        "instance": f"{res.instance_type} x {res.instance_count}",
        "autoscaling": (f"{res.autoscaling.min_instances}-{res.autoscaling.max_instances}"
                        if res.autoscaling else "off"),
        "rollout": roll.strategy + (f" {roll.step_size.value} {roll.step_size.type}" if roll.step_size else "")
        + f", bake {roll.wait_interval_seconds}s",
        "container": model.container.image or
        f"{model.container.framework} {model.container.framework_version}",
        "env vars": ", ".join(sorted(model.container.env)) or "none",
        "kms key": sec.kms_key or "none",
        "vpc": ("none" if sec.vpc is None else
                f"{len(sec.vpc.subnets)} subnet(s), {len(sec.vpc.security_groups)} security group(s)"),
    }


def _change(key: str, old: str | None, new: str) -> str:
    """One changed value; environment variables as the names added and removed (``env vars: +TOKEN``),
    not two full lists for the reviewer to compare."""
    if key == "env vars":
        before = set() if old in (None, "none") else set(str(old).split(", "))
        after = set() if new == "none" else set(new.split(", "))
        names = [f"+{n}" for n in sorted(after - before)] + [f"-{n}" for n in sorted(before - after)]
        if names:
            return f"{key}: {', '.join(names)}"
    return f"{key}: {old} -> {new}"


def _waves(env: Environment) -> list[tuple[int, str]]:
    return [(i, region) for i, wave in enumerate(env.waves, start=1) for region in wave]


def config_plan(model: ModelConfig, before: ModelConfig | None, envs: Environments,
                base_envs: Environments | None, *, files_changed: bool) -> list[PlanRow]:
    """Rows for every environment and region ``model`` deploys to at the head, plus the regions it
    leaves. ``before`` is the model at the base (None: new); ``files_changed`` says whether the change
    makes a new release (:func:`release_changed`)."""
    rows: list[PlanRow] = []
    for env in envs.in_promotion_order():
        if not model.supports_cloud(env.cloud):
            continue
        old_env = base_envs.find(env.name) if base_envs is not None else None
        deployed_before = before is not None and old_env is not None and before.supports_cloud(old_env.cloud)
        endpoint = endpoint_name(model.name, env.name)
        for wave, region in _waves(env):
            new = desired_state(model, env, region)
            if not deployed_before or old_env is None or before is None or region not in old_env.regions:
                rows.append(PlanRow(model.name, env.name, region, wave, endpoint, CREATE,
                                    tuple(f"{k}: {v}" for k, v in new.items())))
                continue
            old = desired_state(before, old_env, region)
            changes = tuple(_change(k, old.get(k), v) for k, v in new.items() if old.get(k) != v)
            action = RELEASE if files_changed else (UPDATE if changes else UNCHANGED)
            rows.append(PlanRow(model.name, env.name, region, wave, endpoint, action, changes))
        if deployed_before and old_env is not None:
            for region in old_env.regions:
                if region not in env.regions:
                    rows.append(PlanRow(model.name, env.name, region, 0, endpoint, REMOVE))
    return rows


def release_changed(model: ModelConfig, before: ModelConfig | None, files: tuple[str, ...]) -> bool:
    """Whether a build of ``model`` would be a different release from ``before`` (the model at the
    base): its config (as build digests it: comments and layout do not count) or a file the build packs
    (handler code, requirements, artifacts in the folder) changed. A README, the regression cases or a
    training script beside them are not part of a release: deploy would find the same one."""
    if before is None:
        return True
    from modelops.build.service import config_digest

    if config_digest(model) != config_digest(before):
        return True
    handler = model.container.handler
    inputs = [p for p in (handler.source_dir, handler.entry_point, model.container.requirements) if p]
    inputs += [a.path for a in model.artifacts if a.path]
    prefixes = [model.path_in_repo(p).rstrip("/") for p in inputs]
    return any(f == p or f.startswith(p + "/") for f in files for p in prefixes)


def with_cloud(rows: list[PlanRow], verdicts: Mapping[tuple[str, str], CloudVerdict]) -> list[PlanRow]:
    """The rows with the cloud plan's line for their region (verdicts by (model, environment))."""
    out = []
    for row in rows:
        verdict = verdicts.get((row.model, row.environment))
        if verdict is not None:
            row = replace(row, cloud=verdict.summary.get(row.region) or verdict.message, cloud_status=verdict.status)
        out.append(row)
    return out


def default_cloud_planner(model: ModelConfig, env: Environment, ref: str | None, runtime: Runtime) -> CloudVerdict:
    """Ask deploy's plan (:func:`modelops.deploy.plan`: it only describes endpoints and renders the
    build context), where that cannot start anything: on the local cloud only when it already runs.
    Errors (no credentials, cloud unreachable) make the verdict ``skipped``: a PR check without cloud
    access still reports its config plan. A :class:`~modelops.errors.GateError` means a deploy would be
    refused: the verdict is ``failed`` with ``gate_failed``."""
    from modelops.errors import GateError, ModelopsError

    if env.is_local and not _local_cloud_running(runtime):
        return CloudVerdict("skipped", message=LOCAL_NOT_RUNNING)
    from modelops.deploy import PlanRequest, plan

    try:
        result = plan(PlanRequest(model=model.folder or model.name, environment=env.name, ref=ref), runtime)
    except GateError as exc:
        return CloudVerdict("failed", message=exc.message, gate_failed=True)
    except ModelopsError as exc:
        return CloudVerdict("skipped", message=exc.message)
    return verdict_of(result)


_ACTION = {"none": "in sync", "create": "create", "update": "update", "repair": "repair in place", "busy": "busy"}


def verdict_of(result: Plan) -> CloudVerdict:
    """A :class:`CloudVerdict` from deploy's :class:`~modelops.deploy.Plan` (the observed state of each
    region against the head): a line per region with the action and what differs field by field
    (``update: release: iris-1 -> iris-2; variants.primary.image: ... -> ...``). A release blocked in
    the environment (rolled back there) is ``failed`` with ``gate_failed``: a deploy would refuse it."""
    summary: dict[str, str] = {}
    for region in result.regions:
        text = _ACTION.get(region.action, region.action)
        if region.changes:
            text += ": " + "; ".join(region.changes)
        summary[region.region] = text
    if result.blocked:
        return CloudVerdict("failed", summary=summary, message=result.blocked, gate_failed=True)
    return CloudVerdict("planned", summary=summary, message=f"release {result.release}")


def _local_cloud_running(runtime: Runtime) -> bool:
    from modelops.localcloud import status

    return status(runtime.local_cloud_dir) is not None
