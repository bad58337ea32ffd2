"""``modelops init``: a new model folder that validates clean and that every environment accepts,
and the pipeline files of a new repository (``modelops init --repo`` adds its CI files).

What the scaffold writes comes from ``templates/``: the model (``model.yaml``, inference code,
requirements, regression cases) and the pipelines (``environments.yaml``: a local dev, staging and
prod; ``policy.yaml``). This repository's own ``pipelines/`` are those templates, so ``make demo``
runs what a new repository starts with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from modelops.config.environments import Environments
from modelops.config.loading import load_environments
from modelops.config.model import CLOUDS
from modelops.config.rollout import fewest_instances
from modelops.config.workspace import (
    ENVIRONMENTS_FILE,
    INIT_REPO_HINT,
    MODELS_DIR,
    POLICY_FILE,
    Workspace,
    find_root,
)
from modelops.errors import InputError

BAD_NAME = "'{name}' is not a valid model name: use lower case letters, digits and dashes (at most 40), starting with a letter"
BAD_TEAM = "--team must name the owning team (1 to 128 characters, one line)"
BAD_DESCRIPTION = "--description must be one line of at most 2048 characters"
EXISTS = "{folder} already exists"
EXISTS_HINT = "pick another name, or edit the existing model"
NOT_A_MODELOPS_REPO = "{path} is not in a modelops repository: it has no {file}"
FILES_EXIST = "{root} already holds {files}"
FILES_EXIST_HINT = "`modelops init NAME` adds a model to an existing modelops repository"
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")

#: template file -> path in the model folder
_FILES = {
    "model.yaml.j2": "model.yaml",
    "inference.py.tmpl": "code/inference.py",
    "requirements.txt": "code/requirements.txt",
    "cases.yaml.j2": "tests/cases.yaml",
}
#: template file -> repo-relative path
PIPELINE_FILES = {"environments.yaml": ENVIRONMENTS_FILE, "policy.yaml": POLICY_FILE}
TEMPLATE_INSTANCES = 1  # spec.resources.instance_count of model.yaml.j2
FLEET_COMMENT = "  # The canary or linear steps of these environments need more than one instance to hold them.\n"


@dataclass(frozen=True)
class InitResult:
    folder: str  # repo-relative
    files: tuple[str, ...]  # repo-relative


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def template(name: str) -> str:
    """The text of a scaffold template (``templates/<name>``)."""
    return resources.files("modelops.config").joinpath("templates", name).read_text(encoding="utf-8")


def modelops_repository(start: Path) -> Workspace:
    """The modelops repository around ``start``; :class:`InputError` with the way to start one when
    there is none (no repository, or one without ``pipelines/environments.yaml``)."""
    try:
        ws = Workspace(find_root(start))
    except InputError as exc:
        raise InputError(NOT_A_MODELOPS_REPO.format(path=start, file=ENVIRONMENTS_FILE), hint=INIT_REPO_HINT) from exc
    if not ws.exists(ENVIRONMENTS_FILE):
        raise InputError(NOT_A_MODELOPS_REPO.format(path=ws.root, file=ENVIRONMENTS_FILE), hint=INIT_REPO_HINT)
    return ws


def check_model_values(name: str, team: str, description: str) -> None:
    if not _NAME.match(name):
        raise InputError(BAD_NAME.format(name=name))
    # What metadata.team and .description accept (model.schema.json), so the folder validates clean.
    if not team.strip() or len(team) > 128 or "\n" in team:
        raise InputError(BAD_TEAM)
    if len(description) > 2048 or "\n" in description:
        raise InputError(BAD_DESCRIPTION)


def _fleet_overrides(envs: Environments) -> str:
    """``spec.environments`` giving each environment whose rollout needs a bigger fleet than the
    template's one instance the fewest instances it accepts (prod's 50% canary: 2), so that deploy
    accepts the model everywhere; empty when one instance fits every environment. The template sets
    no rollout of its own, so each environment's policy is the model's effective one."""
    lines = []
    for env in envs.deploy_targets(CLOUDS):
        needed = fewest_instances(env.rollout)
        if needed > TEMPLATE_INSTANCES:
            lines.append(f"    {env.name}:\n      resources:\n        instance_count: {needed}\n")
    return FLEET_COMMENT + "  environments:\n" + "".join(lines) if lines else ""


def init_model(start: Path, name: str, *, team: str = "my-team", description: str = "") -> InitResult:
    """Write ``models/<name>/`` in the modelops repository around ``start`` from the templates;
    refuses a bad name, an existing folder, or no repository with environments (nothing is written
    then)."""
    check_model_values(name, team, description)
    ws = modelops_repository(start)
    envs = load_environments(ws)
    folder = f"{MODELS_DIR}/{name}"
    target = ws.root / folder
    if target.exists():
        raise InputError(EXISTS.format(folder=folder), hint=EXISTS_HINT)
    values = {"name": name, "team": _quote(team), "description": _quote(description or f"The {name} model."),
              "environments": _fleet_overrides(envs)}
    written = []
    for source, rel in _FILES.items():
        text = template(source)
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(f"{folder}/{rel}")
    return InitResult(folder, tuple(written))


def refuse_existing(root: Path, files: list[str]) -> None:
    """:class:`InputError` naming the ``files`` (repo-relative) that already exist under ``root``."""
    there = [f for f in files if (root / f).exists()]
    if there:
        raise InputError(FILES_EXIST.format(root=root, files=", ".join(there)), hint=FILES_EXIST_HINT)


def init_pipelines(root: Path) -> tuple[str, ...]:
    """Write ``pipelines/environments.yaml`` and ``pipelines/policy.yaml`` under ``root`` from the
    templates (a local dev, staging and prod; the default policy). Refuses existing files."""
    refuse_existing(root, list(PIPELINE_FILES.values()))
    for source, rel in PIPELINE_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template(source), encoding="utf-8")
    return tuple(PIPELINE_FILES.values())
