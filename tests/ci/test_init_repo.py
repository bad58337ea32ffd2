"""`modelops init --repo` from an empty directory, and `modelops init` in and out of a repository: what a
newcomer runs first. The repository it makes validates clean, checks its own CI files, and deploys to
prod on the local cloud at once; this repository's own pipelines and CI files are its templates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from modelops.ci.repository import CI_FILES, ci_file
from modelops.config.scaffold import PIPELINE_FILES, template
from modelops.config.workspace import INIT_REPO_HINT
from tests.helpers import PROJECT_ROOT, commit_all, git, run_cli, use_sagemaker_canary_in_prod

REVIEWER = {"MODELOPS_USER": "reviewer@example.com"}  # not the author of the commit (ada@example.com)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_init_outside_a_modelops_repository_says_how_to_start_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    outside = run_cli("init", "fraud-score", cwd=empty)
    assert outside.exit_code == 2
    assert "is not in a modelops repository: it has no pipelines/environments.yaml" in outside.stderr
    assert INIT_REPO_HINT in outside.stderr
    git(empty, "init", "-q")  # a git repository is not a modelops one yet
    after_git = run_cli("init", "fraud-score", cwd=empty)
    assert after_git.exit_code == 2 and INIT_REPO_HINT in after_git.stderr
    assert _files(empty) == set()  # nothing written
    validated = run_cli("validate", cwd=empty)
    assert validated.exit_code == 2 and "`modelops init --repo`" in validated.stderr


def test_init_repo_makes_a_repository_that_validates_and_checks_its_ci_files(tmp_path: Path) -> None:
    root = tmp_path / "new"
    root.mkdir()
    result = run_cli("init", "--repo", "--output", "json", cwd=root)
    assert result.exit_code == 0, result
    doc = result.json()
    assert doc["git_initialized"] is True and (root / ".git").is_dir()
    assert doc["model"] == "models/my-model"
    assert _files(root) == set(doc["files"]) == {
        "pipelines/environments.yaml", "pipelines/policy.yaml", "Jenkinsfile", ".github/workflows/pr.yml",
        ".gitignore", "spinnaker/modelops-deploy.json", "models/my-model/model.yaml",
        "models/my-model/code/inference.py", "models/my-model/code/requirements.txt",
        "models/my-model/tests/cases.yaml"}

    assert run_cli("validate", cwd=root).exit_code == 0
    assert run_cli("ci", "spinnaker", "--check", cwd=root).exit_code == 0
    # The model is sized for every environment: prod's judged canary adds the new release as a second
    # variant beside the serving one, so one instance fits it (no override; a SageMaker canary of 50%
    # would need two: test_init_sizes_a_model_for_each_environments_rollout).
    model = yaml.safe_load((root / "models/my-model/model.yaml").read_text())
    assert model["spec"]["resources"]["instance_count"] == 1
    assert "environments" not in model["spec"]
    assert yaml.safe_load((root / "pipelines/environments.yaml").read_text())["environments"]["prod"]["rollout"][
        "strategy"] == "judged_canary"
    # Its regression cases say where their format is, without pointing at another repository's model.
    cases = (root / "models/my-model/tests/cases.yaml").read_text()
    assert "models/iris" not in cases and "modelops schema cases" in cases
    assert run_cli("schema", "cases", cwd=root).exit_code == 0
    # The workflow installs this modelops from the package index.
    workflow = yaml.safe_load((root / ".github/workflows/pr.yml").read_text())
    installs = [s["run"] for s in workflow["jobs"]["check"]["steps"] if s.get("name") == "Install modelops"]
    from modelops import __version__

    assert installs == [f'python -m pip install --quiet "modelops=={__version__}"']

    again = run_cli("init", "--repo", cwd=root)  # a repository already: refused, nothing changed
    assert again.exit_code == 2 and "already holds pipelines/environments.yaml" in again.stderr


def test_this_repository_is_what_init_repo_makes() -> None:
    """The templates are this repository's own pipelines and CI files: make demo runs what a new
    repository starts with, and the tests of this repository's Jenkinsfile and workflow test them."""
    for source, rel in PIPELINE_FILES.items():
        assert template(source) == (PROJECT_ROOT / rel).read_text(), rel
    for source, rel in CI_FILES.items():
        if rel == ".gitignore":
            continue  # this repository ignores more (its venv, its caches)
        own = ci_file(source, install="python -m pip install --quiet .")  # this repository installs itself
        assert own == (PROJECT_ROOT / rel).read_text(), rel


def test_init_sizes_a_model_for_each_environments_rollout(tmp_path: Path) -> None:
    root = tmp_path / "new"
    root.mkdir()
    assert run_cli("init", "--repo", cwd=root).exit_code == 0
    use_sagemaker_canary_in_prod(root)  # prod on SageMaker's 50% canary, not the judged one
    envs = root / "pipelines/environments.yaml"
    envs.write_text(envs.read_text().replace(
        "    rollout:\n      strategy: all_at_once\n      wait_interval_seconds: 5\n",
        "    rollout:\n      strategy: linear\n      step_size: {type: CAPACITY_PERCENT, value: 25}\n"
        "      wait_interval_seconds: 5\n"))
    made = run_cli("init", "fraud-score", "--team", "risk", cwd=root)
    assert made.exit_code == 0, made
    model = yaml.safe_load((root / "models/fraud-score/model.yaml").read_text())
    # A step is at least one instance: staging's 25% linear steps need 2 instances (one, half the fleet,
    # is within SageMaker's 10%..50%); prod's 50% canary needs 2.
    assert model["spec"]["environments"] == {"staging": {"resources": {"instance_count": 2}},
                                             "prod": {"resources": {"instance_count": 2}}}
    assert run_cli("validate", "models/fraud-score", cwd=root).exit_code == 0
    # The model made before staging and prod changed their rollouts is now too small there, and validate
    # says so.
    findings = run_cli("validate", "models/my-model", "--output", "json", cwd=root).json()["findings"]
    assert {f["rule"] for f in findings} == {"rollout.step-size"}
    assert sorted(f["message"].split(" is ")[0] for f in findings) == [
        "prod: the canary size 50%", "staging: the linear step 25%"]


@pytest.mark.slow
def test_from_an_empty_directory_to_prod_on_the_local_cloud(tmp_path: Path) -> None:
    from modelops import localcloud

    root = tmp_path / "new"
    root.mkdir()
    try:
        assert run_cli("init", "--repo", cwd=root).exit_code == 0
        git(root, "config", "user.email", "ada@example.com")
        git(root, "config", "user.name", "Ada Author")
        commit_all(root, "modelops init")
        built = run_cli("build", "models/my-model", "--env", "prod", "--output", "json", cwd=root)
        assert built.exit_code == 0, built
        release = built.json()["release"]
        approved = run_cli("approve", release, "--env", "prod", cwd=root, env=REVIEWER)
        assert approved.exit_code == 0, approved

        deployed = run_cli("deploy", "models/my-model", "--through", "prod", "--output", "json", cwd=root)

        assert deployed.exit_code == 0, deployed
        doc = deployed.json()
        assert doc["release"] == release
        assert [(d["env"], d["region"], d["status"]) for d in doc["deployments"]] == [
            ("dev", "us-east-1", "succeeded"), ("staging", "us-east-1", "succeeded"),
            ("prod", "us-east-1", "succeeded"), ("prod", "eu-west-1", "succeeded"),
            ("prod", "ap-southeast-2", "succeeded")]
        answer = run_cli("invoke", "my-model", "--env", "prod", "--region", "eu-west-1", "--body", '{"hello": "world"}',
                         "--output", "json", cwd=root)
        assert answer.exit_code == 0, answer
        assert '"hello": "world"' in answer.stdout.replace('\\"', '"')
    finally:
        localcloud.stop(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]))
