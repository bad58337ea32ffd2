"""``modelops init --repo``: a new modelops repository that validates clean and deploys at once.

It writes, in the working directory (a git repository is made there unless it is in one):

- ``pipelines/environments.yaml`` and ``pipelines/policy.yaml`` (``modelops.config.scaffold``: a
  local dev, staging and prod, and the default policy);
- the CI files: ``Jenkinsfile`` and ``.github/workflows/pr.yml`` (the pull-request check), from the
  templates this repository's own files are copies of, and ``spinnaker/`` generated from the
  environments (what ``modelops ci spinnaker --check`` compares);
- ``.gitignore`` (modelops' state and reports in CI workspaces);
- a first model (``modelops init NAME``), sized for every environment's rollout.

Nothing is written when any of those files exists already.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from modelops import __version__
from modelops.ci import spinnaker
from modelops.config import load_environments
from modelops.config.scaffold import (
    PIPELINE_FILES,
    InitResult,
    check_model_values,
    init_model,
    init_pipelines,
    refuse_existing,
)
from modelops.config.workspace import MODELS_DIR, Workspace
from modelops.runtime import Runtime

#: template -> repo-relative path
CI_FILES = {"Jenkinsfile": "Jenkinsfile", "pr.yml": ".github/workflows/pr.yml", "gitignore": ".gitignore"}
#: How the PR workflow installs modelops in a new repository (this one installs itself: ".").
INSTALL = 'python -m pip install --quiet "modelops=={version}"'


@dataclass(frozen=True)
class InitRepoRequest:
    """Start a repository in ``path`` (None: the working directory) with a first model ``model``."""

    model: str = "my-model"
    team: str = "my-team"
    description: str = ""
    path: Path | None = None


@dataclass(frozen=True)
class InitRepoResult:
    root: Path
    files: tuple[str, ...]  # repo-relative, in the order written
    model: InitResult
    git_initialized: bool

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "files": list(self.files), "model": self.model.folder,
                "git_initialized": self.git_initialized}


def ci_file(template: str, *, install: str | None = None) -> str:
    """The text of a CI file template; ``install`` fills the workflow's install command (default:
    this version of modelops from PyPI)."""
    text = resources.files("modelops.ci").joinpath("templates", template).read_text(encoding="utf-8")
    return text.replace("{{install}}", install or INSTALL.format(version=__version__))


def init_repo(request: InitRepoRequest, runtime: Runtime) -> InitRepoResult:
    """Write a new modelops repository (see the module docstring)."""
    root = (request.path if request.path is not None else runtime.cwd).resolve()
    check_model_values(request.model, request.team, request.description)
    planned = [*PIPELINE_FILES.values(), *CI_FILES.values(), f"{spinnaker.DEFAULT_DIR}/{spinnaker.PIPELINE_FILE}",
               f"{MODELS_DIR}/{request.model}"]
    refuse_existing(root, planned)  # before anything is written
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    made_git = ws.init_git()
    written = list(init_pipelines(root))
    for template, rel in CI_FILES.items():
        _write(root / rel, ci_file(template))
        written.append(rel)
    for name, text in spinnaker.render(load_environments(ws)).items():
        rel = f"{spinnaker.DEFAULT_DIR}/{name}"
        _write(root / rel, text)
        written.append(rel)
    model = init_model(root, request.model, team=request.team, description=request.description)
    runtime.progress.step(f"created a modelops repository in {root}")
    return InitRepoResult(root, (*written, *model.files), model, made_git)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
