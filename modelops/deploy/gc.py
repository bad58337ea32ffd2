"""``modelops gc``: free what no environment serves and no recent release needs.

A release is **kept** for a model in an environment when a region serves it (the ledger's current
release, the endpoint's tag, the configs its endpoint uses now or is moving to), when it is what a
rollback there would return to, or when it is one of the model's last ``keep`` releases. Everything
else of the model's releases goes, in this order:

1. per environment and region, the SageMaker models and endpoint configs modelops made for releases
   not kept (only names the ledger knows, never one an endpoint uses);
2. the local cloud's images and model data that no remaining model and no kept release names;
3. the build cache (model data archives, builder contexts, artifacts copied out of git).

Local files younger than ``min_age_seconds`` stay whatever they belong to: a build running now puts
its image in the store before the ledger records its release (git's gc keeps recent objects for the
same reason). A model whose (model, environment) lock another run holds is left alone that run. ``dry_run`` says
what would go and frees nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.gates import acting_identity
from modelops.deploy.repo import loadable_models, open_repo, opened
from modelops.errors import InputError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Ledger
    from modelops.ledger.records import ReleaseRecord

BAD_KEEP = "--keep must be at least 1 (got {keep}): the latest release of every model is always kept"
LOCKED = "{model} in {environment}: left alone, {reason}"


@dataclass(frozen=True)
class GcRequest:
    keep: int = 3
    dry_run: bool = False
    min_age_seconds: float = 3600.0


@dataclass(frozen=True)
class Freed:
    """One thing gc removed (or, in a dry run, would remove)."""

    kind: str  # model | endpoint-config | image | model-data | build-cache
    name: str
    where: str  # ENV/REGION, "local cloud" or "build cache"
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "where": self.where, "bytes": self.bytes}


@dataclass(frozen=True)
class GcResult:
    dry_run: bool
    kept: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model -> releases kept
    freed: tuple[Freed, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.freed)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "bytes": self.bytes, "kept": {m: list(r) for m, r in self.kept.items()},
                "freed": [f.to_dict() for f in self.freed], "skipped": list(self.skipped)}


def gc(request: GcRequest, runtime: Runtime) -> GcResult:
    """Free what no kept release needs (see the module docstring)."""
    if request.keep < 1:
        raise InputError(BAD_KEEP.format(keep=request.keep))
    from modelops.ledger.base import LockHeldError
    from modelops.ledger.records import LockHolder

    repo = open_repo(runtime)
    models, _ = loadable_models(repo, None)
    holder = LockHolder.current(acting_identity(runtime, repo.ws).name)
    kept: dict[str, set[str]] = {m.name: set() for m in models}
    records: dict[str, ReleaseRecord] = {}
    freed: list[Freed] = []
    skipped: list[str] = []
    local_regions: set[str] = set()
    envs = repo.envs.in_promotion_order() or tuple(repo.envs)
    for env in envs:
        if env.is_local:
            local_regions.update(env.regions)
        with opened(env, runtime) as (clients, ledger):
            for model in (m for m in models if m.supports_cloud(env.cloud)):
                releases = ledger.releases(model.name)
                records.update((r.release, r) for r in releases)
                try:
                    held = ledger.acquire_lock(model.name, env.name, holder, heartbeat=False)
                except LockHeldError as err:  # a deploy is under way: everything of the model stays
                    skipped.append(LOCKED.format(model=model.name, environment=env.name, reason=err.message))
                    kept[model.name].update(r.release for r in releases)
                    continue
                try:
                    keep = _kept_releases(model, env, clients, ledger, releases, request.keep)
                    kept[model.name].update(keep)
                    freed += _prune_environment(model, env, clients, releases, keep, request.dry_run)
                finally:
                    held.release()
    all_kept = set().union(*kept.values()) if kept else set()
    older_than = runtime.clock.now() - request.min_age_seconds
    if local_regions:
        deleted = {(f.where.split("/", 1)[1], f.name) for f in freed if f.kind == "model"}
        freed += _prune_local_cloud(envs, runtime, local_regions, all_kept, deleted, request.dry_run, older_than)
    from modelops.build.cache import prune

    keep_commits = {records[r].commit for r in all_kept if r in records}
    freed += [Freed(kind, path, "build cache", size) for kind, path, size in
              prune(runtime.data_dir / "build", keep_releases=all_kept, keep_commits=keep_commits,
                    dry_run=request.dry_run, older_than=older_than)]
    return GcResult(request.dry_run, {m: tuple(sorted(r)) for m, r in kept.items() if r}, tuple(freed), tuple(skipped))


def _kept_releases(model: ModelConfig, env: Environment, clients: Clients, ledger: Ledger,
                   releases: tuple[ReleaseRecord, ...], keep: int) -> set[str]:
    """The releases of ``model`` that ``env`` needs: serving, returned to by a rollback, the last ``keep``."""
    kept = {r.release for r in releases[-keep:]}
    endpoint = naming.endpoint_name(model.name, env.name)
    for region in env.regions:
        state = ledger.current(model.name, env.name, region)
        if state is not None and state.last_step is not None:
            kept.add(state.last_step.release)  # a rollout under way (or the last one's release)
        if state is not None and state.release:
            kept.add(state.release)
            back = ledger.last_good(model.name, env.name, region, before=state.release)
            if back is not None:
                kept.add(back)
        view = RegionCloud(clients, region).endpoint(endpoint)
        if view is not None and view.release_tag:
            kept.add(view.release_tag)
    return kept


def _prune_environment(model: ModelConfig, env: Environment, clients: Clients, releases: tuple[ReleaseRecord, ...],
                       kept: set[str], dry_run: bool) -> list[Freed]:
    """Delete the SageMaker models and endpoint configs of releases not kept, in every region, unless
    the model's endpoint uses them (its config now, or the one an update moves it to)."""
    out: list[Freed] = []
    gone = [r.release for r in releases if r.release not in kept]
    for region in env.regions:
        cloud = RegionCloud(clients, region)
        view = cloud.endpoint(naming.endpoint_name(model.name, env.name), with_tags=False)
        in_use_configs = {c for c in (view.config_name, view.pending_config) if c} if view else set()
        in_use_models = {v["ModelName"] for c in in_use_configs
                         for v in (cloud.endpoint_config(c) or {}).get("ProductionVariants", [])}
        where = f"{env.name}/{region}"
        for release in gone:
            config = naming.endpoint_config_name(model.name, env.name, release)
            if config not in in_use_configs and cloud.endpoint_config(config) is not None:
                if not dry_run:
                    cloud.delete_endpoint_config(config)
                out.append(Freed("endpoint-config", config, where))
            name = naming.model_name(model.name, env.name, release)
            if name not in in_use_models and cloud.model_exists(name):
                if not dry_run:
                    cloud.delete_model(name)
                out.append(Freed("model", name, where))
    return out


def _prune_local_cloud(envs: tuple[Environment, ...], runtime: Runtime, regions: set[str], kept: set[str],
                       deleted: set[tuple[str, str]], dry_run: bool, older_than: float) -> list[Freed]:
    """Free the local cloud's image and model data stores of what neither a model that still exists
    (in any region; ``deleted``: (region, model) this run removed, or in a dry run would) nor a kept
    release's build names."""
    from modelops import localcloud

    local = next(e for e in envs if e.is_local)
    images: set[str] = set()
    model_data: set[str] = set()
    with opened(local, runtime) as (clients, ledger):
        for region in sorted(regions):
            for name, container in RegionCloud(clients, region).model_containers().items():
                if (region, name) in deleted:
                    continue
                images.add(str(container.get("Image", "")))
                model_data.add(str(container.get("ModelDataUrl", "")))
        for release in kept:
            for build in ledger.builds(release):
                images.add(build.image_uri)
                model_data.add(build.model_data_url)
    pruned = localcloud.prune(runtime.local_cloud_dir, keep_image_uris=images - {""},
                              keep_model_data_urls=model_data - {""}, dry_run=dry_run, older_than=older_than)
    return [Freed(kind, name, "local cloud", size) for kind, name, size in pruned]
