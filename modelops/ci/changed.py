"""``modelops ci changed``: the models a change touches, and the environments they go through, as the
fan-out plan of a CI pipeline (one parallel branch per model, one stage per prod wave)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelops.config.environments import Environment
from modelops.config.loading import read_environments, read_model
from modelops.config.workspace import PIPELINES_DIR, Workspace
from modelops.runtime import Runtime


@dataclass(frozen=True)
class ChangedRequest:
    """Models changed between the merge base of ``since`` and the working tree (uncommitted and
    untracked files included), or ``ref`` when given. ``since`` None: every model (a first build,
    with nothing to compare with)."""

    since: str | None
    ref: str | None = None


@dataclass(frozen=True)
class ChangedModel:
    """A model a change touches: its name (``metadata.name``, else the folder's name when the config
    does not load), its folder, and the environments it deploys to in promotion order."""

    name: str
    folder: str
    valid: bool
    environments: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "valid": self.valid,
                "environments": list(self.environments)}


@dataclass(frozen=True)
class Stage:
    """An environment as CI stages see it: regions, waves (regions of a wave deploy in parallel,
    waves one after another) and whether a person must approve before it."""

    name: str
    cloud: str
    regions: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    approval: bool

    @classmethod
    def of(cls, env: Environment) -> Stage:
        return cls(env.name, env.cloud, env.regions, env.waves, env.approval.required)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cloud": self.cloud, "regions": list(self.regions),
                "waves": [list(w) for w in self.waves], "approval": self.approval}


@dataclass(frozen=True)
class ChangedResult:
    since: str | None
    base_commit: str | None
    head_commit: str | None
    files: tuple[str, ...]
    models: tuple[ChangedModel, ...]
    stages: tuple[Stage, ...]  # promotion order; empty when environments.yaml does not load

    @property
    def pipelines_changed(self) -> bool:
        return any(f.startswith(PIPELINES_DIR + "/") for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document (a stable contract: the Jenkinsfile reads it)."""
        return {
            "since": self.since,
            "base_commit": self.base_commit,
            "head_commit": self.head_commit,
            "pipelines_changed": self.pipelines_changed,
            "files_changed": len(self.files),
            "models": [m.to_dict() for m in self.models],
            "environments": [s.to_dict() for s in self.stages],
        }


def changed(request: ChangedRequest, runtime: Runtime) -> ChangedResult:
    """The models changed since ``request.since`` (every model when ``pipelines/`` changed; deleted
    models left out). Broken configs are listed too (``valid`` False): CI must still validate them.
    Raises :class:`~modelops.errors.InputError` for a ref that does not exist or a folder outside git."""
    ws = Workspace.discover(runtime.cwd).at(request.ref)
    if request.since is None:
        files: tuple[str, ...] = ()
        folders = ws.model_folders()
        base_commit = None
    else:
        files = ws.changed_files(request.since)
        folders = ws.changed_models(request.since)
        base_commit = ws.at(request.since).commit
    envs = read_environments(ws).value
    models = []
    for folder in folders:
        loaded = read_model(ws, folder)
        model = loaded.value
        if model is None:
            models.append(ChangedModel(folder.rsplit("/", 1)[-1], folder, False))
        else:
            targets = envs.deploy_targets(model.clouds) if envs is not None else ()
            models.append(ChangedModel(model.name, folder, True, tuple(e.name for e in targets)))
    stages = tuple(Stage.of(e) for e in envs.in_promotion_order()) if envs is not None else ()
    return ChangedResult(request.since, base_commit, ws.head_commit, files, tuple(models), stages)
