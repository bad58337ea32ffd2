"""`modelops ci pr` on a real git repo: a branch that breaks one model and fixes another, the reports it
writes (Markdown, SARIF, JUnit), the plan per environment and region, and the exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelops.ci import CloudVerdict, PrRequest, check_pr
from modelops.config import Environment, ModelConfig
from modelops.runtime import Runtime
from tests.helpers import commit_all, git, init_repo, run_cli

IRIS = "models/iris/model.yaml"
MINILM = "models/minilm-embeddings/model.yaml"


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, f"{rel} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main has a broken minilm; the branch `feature` fixes it, breaks iris, and scales iris in prod."""
    repo = init_repo(tmp_path_factory.mktemp("pr") / "repo")
    _edit(repo, MINILM, "instance_type: ml.c5.xlarge", "instance_type: ml.c5.xlargee")
    commit_all(repo, "main: a typo in minilm")
    git(repo, "checkout", "-q", "-b", "feature")
    _edit(repo, MINILM, "instance_type: ml.c5.xlargee", "instance_type: ml.c5.xlarge")
    _edit(repo, IRIS, "instance_type: ml.m5.large", "instance_type: ml.m5.huge")
    _edit(repo, IRIS, "instance_count: 2", "instance_count: 3")
    commit_all(repo, "feature: fix minilm, break iris")
    return repo


@pytest.fixture(scope="module")
def reports(pr_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("reports")
    md, sarif, junit = out / "pr.md", out / "pr.sarif", out / "pr.xml"
    result = run_cli("ci", "pr", "--base", "main", "--markdown", md, "--sarif", sarif, "--junit", junit,
                     "--output", "json", cwd=pr_repo)
    return {"result": result, "md": md.read_text(), "sarif": json.loads(sarif.read_text()),
            "junit": ET.parse(junit).getroot()}


def test_the_check_fails_with_exit_one_and_a_json_document(reports: dict) -> None:
    result = reports["result"]
    assert result.exit_code == 1, result
    doc = result.json()
    assert doc["passed"] is False and doc["exit_status"] == 1
    assert [m["name"] for m in doc["models"]] == ["iris", "minilm-embeddings"]
    [new] = doc["new"]
    assert new["rule"] == "capacity.unknown-instance-type" and new["file"] == IRIS
    [fixed] = doc["fixed"]
    assert fixed["rule"] == "capacity.unknown-instance-type" and fixed["file"] == MINILM
    assert doc["summary"]["new"] == 1 and doc["summary"]["fixed"] == 1


def test_markdown_says_what_broke_what_was_fixed_and_the_plan(reports: dict) -> None:
    md = reports["md"]
    assert md.startswith("## modelops ci pr: ❌ failed\n")
    assert "**1 new**, **1 fixed**" in md
    findings = md.split("### Findings", 1)[1].split("### Fixed by this change", 1)[0]
    assert "`models/iris/model.yaml:" in findings and "ml.m5.huge is not a SageMaker instance type" in findings
    assert "minilm" not in findings.split("| --- |", 1)[1]  # the fixed model has no finding left
    fixed = md.split("### Fixed by this change", 1)[1].split("### Plan", 1)[0]
    assert "`minilm-embeddings`" in fixed and "ml.c5.xlargee" in fixed
    plan = md.split("### Plan", 1)[1]
    rows = [line for line in plan.splitlines() if line.startswith("| `iris`")]
    assert len(rows) == 5  # dev, staging, prod in three regions
    assert "| `iris` | prod | eu-west-1 | 2 | 🚀 new release | instance: ml.m5.large x 2 -> ml.m5.huge x 3 |" in plan
    assert "| `iris` | dev | us-east-1 | 1 | 🚀 new release | instance: ml.m5.large x 1 -> ml.m5.huge x 1 |" in plan
    assert "Cloud plan skipped" in plan and "the local cloud is not running" in plan


def test_sarif_points_at_the_broken_line_only(reports: dict, pr_repo: Path) -> None:
    sarif = reports["sarif"]
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    [res] = run["results"]
    assert res["ruleId"] == "capacity.unknown-instance-type" and res["level"] == "error"
    location = res["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == IRIS
    line = location["region"]["startLine"]
    assert "ml.m5.huge" in (pr_repo / IRIS).read_text().splitlines()[line - 1]
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_junit_has_a_failing_case_for_the_broken_model_and_a_passing_one_for_the_fixed(reports: dict) -> None:
    junit = reports["junit"]
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert set(cases) == {"iris", "minilm-embeddings"}
    failure = cases["iris"].find("failure")
    assert failure is not None and "ml.m5.huge" in (failure.text or "")
    assert cases["minilm-embeddings"].find("failure") is None
    assert junit.get("tests") == "2" and junit.get("failures") == "1"


def test_the_check_never_starts_the_local_cloud(reports: dict, pr_repo: Path) -> None:
    import os

    assert reports["result"].exit_code == 1
    # The local cloud keeps its state here; a plan that started it (or wrote to it) would leave it behind.
    assert not Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]).exists()


def test_a_clean_change_passes_with_an_update_in_the_plan(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "scale")
    _edit(repo, IRIS, "instance_count: 2", "instance_count: 3")
    commit_all(repo, "scale iris in prod")
    md = tmp_path / "pr.md"

    result = run_cli("ci", "pr", "--base", "main", "--markdown", md, "--no-bandit", cwd=repo)

    assert result.exit_code == 0, result
    text = md.read_text()
    assert text.startswith("## modelops ci pr: ✅ passed")
    assert "| `iris` | prod | us-east-1 | 1 | 🚀 new release | instance: ml.m5.large x 2 -> ml.m5.large x 3 |" in text
    assert "| `iris` | dev | us-east-1 | 1 | 🚀 new release | - |" in text


def test_a_pipelines_change_plans_every_model_and_shows_a_new_region(repo: Path) -> None:
    _edit(repo, "pipelines/environments.yaml", "regions: [us-east-1, eu-west-1, ap-southeast-2]",
          "regions: [us-east-1, eu-west-1, ap-southeast-2, us-west-2]")
    _edit(repo, "pipelines/environments.yaml", "- [eu-west-1, ap-southeast-2]", "- [eu-west-1, ap-southeast-2, us-west-2]")
    _edit(repo, "pipelines/environments.yaml",
          "        ap-southeast-2: {subnets: [subnet-0a1b2c3d4e5f63001, subnet-0a1b2c3d4e5f63002], security_groups: [sg-0a1b2c3d4e5f63001]}",
          "        ap-southeast-2: {subnets: [subnet-0a1b2c3d4e5f63001, subnet-0a1b2c3d4e5f63002], security_groups: [sg-0a1b2c3d4e5f63001]}\n"
          "        us-west-2: {subnets: [subnet-0a1b2c3d4e5f64001, subnet-0a1b2c3d4e5f64002], security_groups: [sg-0a1b2c3d4e5f64001]}")

    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--output", "json", cwd=repo)

    assert result.exit_code == 0, result
    doc = result.json()
    assert [m["name"] for m in doc["models"]] == ["iris", "llm-chat", "minilm-embeddings"]
    plan = doc["plan"]
    # llm-chat runs on aws only, and every environment here is on the local cloud: nothing to plan.
    assert {r["model"] for r in plan} == {"iris", "minilm-embeddings"}
    new = [r for r in plan if r["region"] == "us-west-2"]
    assert {r["model"] for r in new} == {"iris", "minilm-embeddings"}
    assert all(r["action"] == "create" and r["wave"] == 2 for r in new)
    assert all(r["action"] == "no change" for r in plan if r["region"] != "us-west-2")


def test_a_cloud_plan_that_would_refuse_the_deploy_fails_the_check(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "scale")
    _edit(repo, IRIS, "instance_count: 2", "instance_count: 3")
    commit_all(repo, "scale iris in prod")
    asked: list[tuple[str, str]] = []

    def planner(model: ModelConfig, env: Environment, ref: str | None, runtime: Runtime) -> CloudVerdict:
        asked.append((model.name, env.name))
        if env.name == "prod":
            return CloudVerdict("failed", message="iris-prod is being rolled out by another deploy",
                                gate_failed=True)
        return CloudVerdict("planned", summary={r: "update: release iris-1 -> iris-2" for r in env.regions})

    runtime = Runtime(cwd=repo, data_dir=repo / ".state", environ={})
    result = check_pr(PrRequest(base="main", bandit=False), runtime, cloud_planner=planner)

    assert asked == [("iris", "dev"), ("iris", "staging"), ("iris", "prod")]
    assert int(result.exit_status) == 1
    md = result.markdown()
    assert "**A deploy would be refused:**" in md and "iris-prod is being rolled out by another deploy" in md
    assert "| planned: update: release iris-1 -> iris-2 |" in md
    [item] = [i for i in result.report().items if i.id == "ci.plan"]
    assert item.status == "failed" and item.subject == "iris"
    # GitHub code scanning rejects a SARIF result without a location (and with it the whole upload).
    from modelops.report import render_sarif

    [sarif] = [r for r in json.loads(render_sarif(result.report()))["runs"][0]["results"] if r["ruleId"] == "ci.plan"]
    assert sarif["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == IRIS


def test_no_change_passes_and_says_so(repo: Path, tmp_path: Path) -> None:
    md = tmp_path / "pr.md"
    result = run_cli("ci", "pr", "--base", "main", "--markdown", md, cwd=repo)
    assert result.exit_code == 0, result
    assert "nothing to check" in md.read_text()


def test_an_unknown_base_is_bad_input(repo: Path) -> None:
    result = run_cli("ci", "pr", "--base", "origin/nope", cwd=repo)
    assert result.exit_code == 2, result
    assert "git ref 'origin/nope' does not exist" in result.stderr


@pytest.mark.slow
def test_with_the_local_cloud_running_the_plan_asks_deploy_and_creates_nothing(pr_repo: Path, tmp_path: Path) -> None:
    import os

    import boto3

    from modelops.localcloud import ensure_running, stop

    cloud_dir = Path(os.environ["MODELOPS_LOCAL_DATA_DIR"])
    info = ensure_running(cloud_dir)
    try:
        md = tmp_path / "pr.md"
        result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--markdown", md, "--output", "json",
                         cwd=pr_repo)
        assert result.exit_code == 1, result  # iris is still broken on the branch
        rows = {(r["model"], r["environment"], r["region"]): r for r in result.json()["plan"]}
        prod = rows[("iris", "prod", "ap-southeast-2")]
        assert prod["cloud_status"] == "planned"
        assert prod["cloud"].startswith("create: create endpoint iris-prod serving iris-") and "3 x ml.m5.huge" in prod["cloud"]
        assert "| planned: create: create endpoint iris-dev serving iris-" in md.read_text()
        for region in ("us-east-1", "eu-west-1", "ap-southeast-2"):
            sm = boto3.client("sagemaker", endpoint_url=info.url, region_name=region,
                              aws_access_key_id="local", aws_secret_access_key="local")
            assert sm.list_endpoints()["Endpoints"] == []
            assert sm.list_endpoint_configs()["EndpointConfigs"] == []
            assert sm.list_models()["Models"] == []
    finally:
        stop(cloud_dir)


def test_the_plan_names_the_environment_variables_added_and_removed(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "env")
    _edit(repo, IRIS, '      SAGEMAKER_CONTAINER_LOG_LEVEL: "20"', '      MODEL_THRESHOLD: "0.5"')
    commit_all(repo, "iris: a threshold instead of the log level")
    md = tmp_path / "pr.md"

    result = run_cli("ci", "pr", "--base", "main", "--markdown", md, "--no-bandit", "--no-cloud-plan", cwd=repo)

    assert result.exit_code == 0, result
    assert "| `iris` | dev | us-east-1 | 1 | 🚀 new release | env vars: +MODEL_THRESHOLD, -SAGEMAKER_CONTAINER_LOG_LEVEL |" \
        in md.read_text(), md.read_text()


def test_a_readme_beside_the_model_is_not_a_new_release(repo: Path) -> None:
    # Build packs the handler code, requirements and artifacts, and digests the config: a README, the
    # regression cases or the training script do not make a release (deploy would find the same one).
    git(repo, "checkout", "-q", "-b", "docs")
    (repo / "models/iris/README.md").write_text("# iris\n")
    _edit(repo, IRIS, "# The iris classifier", "# The iris classifier (a comment only)")
    commit_all(repo, "iris: a README")

    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)

    assert result.exit_code == 0, result
    plan = result.json()["plan"]
    assert plan and all(r["action"] == "no change" for r in plan), plan

    (repo / "models/iris/code/inference.py").write_text((repo / "models/iris/code/inference.py").read_text()
                                                        + "\nX = 1\n")
    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)
    assert all(r["action"] == "new release" for r in result.json()["plan"])


def test_a_renamed_model_folder_plans_against_the_endpoints_of_the_same_model(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "rename")
    git(repo, "mv", "models/iris", "models/iris-classifier")
    commit_all(repo, "move iris")

    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)

    assert result.exit_code == 0, result
    plan = result.json()["plan"]
    assert plan and {r["model"] for r in plan} == {"iris"}
    assert not [r for r in plan if r["action"] == "create"], plan


def test_a_deleted_model_is_named_with_a_warning_that_its_endpoints_stay(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "retire")
    git(repo, "rm", "-rq", "models/minilm-embeddings")
    commit_all(repo, "retire minilm")
    md = tmp_path / "pr.md"

    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--markdown", md, "--output", "json", cwd=repo)

    assert result.exit_code == 0, result
    assert result.json()["removed"] == [{"folder": "models/minilm-embeddings", "name": "minilm-embeddings"}]
    text = md.read_text()
    assert "### Removed by this change" in text
    assert "- `models/minilm-embeddings` (`minilm-embeddings`): modelops deletes no endpoints" in text
    text_run = run_cli("ci", "pr", "--base", "main", "--no-bandit", cwd=repo)
    assert "removed: models/minilm-embeddings (minilm-embeddings): its endpoints are not deleted" in text_run.stderr


def test_a_renamed_folder_is_not_a_removed_model(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "move")
    git(repo, "mv", "models/iris", "models/iris-classifier")
    commit_all(repo, "move iris")

    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)

    assert result.json()["removed"] == []


def test_a_change_to_access_yaml_is_flagged_for_its_owners_in_every_format(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "let-bob-approve")
    _edit(repo, "pipelines/access.yaml", "emails: [reviewer@example.com]", "emails: [reviewer@example.com, bob@example.com]")
    _edit(repo, "pipelines/access.yaml", "owners: [platform]", "owners: [release-reviewers]")
    _edit(repo, "pipelines/access.yaml", "    approve: [release-reviewers]", "    approve: [release-reviewers]\n"
                                                                            "    authenticated: [approve]")
    commit_all(repo, "bob reviews releases now")
    md, sarif, junit = tmp_path / "pr.md", tmp_path / "pr.sarif", tmp_path / "pr.xml"
    # As the GitHub workflow runs it: the pull request's actor passed as the CI user.
    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--markdown", md, "--sarif", sarif,
                     "--junit", junit, "--output", "json", cwd=repo,
                     env={"MODELOPS_CI_USER": "octocat", "MODELOPS_CI_SYSTEM": "github", "GITHUB_ACTIONS": "true",
                          "GITHUB_RUN_ID": "1"})
    assert result.exit_code == 0, result  # a warning: the forge's required review decides, not this check
    doc = result.json()
    access = doc["access"]
    # The owners as main names them, not as the change would have them.
    assert (access["owners"], access["reviewers"], access["status"]) == (["platform"], ["platform@example.com"], "changed")
    assert access["changes"] == ["owners: platform -> release-reviewers",
                                 "group release-reviewers: +bob@example.com",
                                 "prod approve: release-reviewers -> release-reviewers (authenticated)"]
    assert access["changed_by"] == "github:octocat"
    [flag] = [f for f in doc["findings"] if f["rule"] == "access.changed"]
    assert flag["severity"] == "warning" and flag["file"] == "pipelines/access.yaml"
    assert flag["message"] == ("pipelines/access.yaml changes who may deploy, approve, roll back or unblock: it needs "
                               "review by platform (platform@example.com)")
    changed_line = (repo / "pipelines/access.yaml").read_text().splitlines()[flag["line"] - 1]
    assert changed_line == "owners: [release-reviewers]"  # the first line the change touches
    text = md.read_text()
    assert "### 🔐 Access control changed" in text and "opened by `github:octocat`" in text
    assert "- group release-reviewers: +bob@example.com" in text
    [res] = [r for r in json.loads(sarif.read_text())["runs"][0]["results"] if r["ruleId"] == "access.changed"]
    assert res["level"] == "warning"
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pipelines/access.yaml"
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    out = cases["repository"].find("system-out")
    assert out is not None and (out.text or "").startswith("WARNING access.changed pipelines/access.yaml:")


def test_an_owner_changing_access_yaml_needs_another_owner_and_policy_may_make_it_fail(repo: Path) -> None:
    _edit(repo, "pipelines/access.yaml", "emails: [platform@example.com]",
          'emails: [platform@example.com]\n    ci_users: ["github:octocat"]')
    _edit(repo, "pipelines/policy.yaml", "rules:\n", "rules:\n  access.changed: {severity: error}\n")
    commit_all(repo, "octocat owns the pipelines")
    git(repo, "checkout", "-q", "-b", "loosen")
    _edit(repo, "pipelines/access.yaml", "    approve: [release-reviewers]", "    approve: [anyone]")
    commit_all(repo, "anyone approves")
    result = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo,
                     env={"MODELOPS_CI_USER": "octocat", "MODELOPS_CI_SYSTEM": "github"})
    assert result.exit_code == 1, result
    [flag] = [f for f in result.json()["findings"] if f["rule"] == "access.changed"]
    assert flag["severity"] == "error"
    assert "needs review by another member of platform (platform@example.com, github:octocat)" in flag["message"]
    assert result.json()["access"]["changes"] == ["prod approve: release-reviewers -> anyone"]
