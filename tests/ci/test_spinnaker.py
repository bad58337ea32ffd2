"""The Spinnaker pipeline JSON: generated from environments.yaml, identical to the file in git, valid
against the JSON Schema modelops ships, and shaped right (judgment before prod, waves in order)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from modelops.ci import spinnaker_problems
from modelops.ci.spinnaker import PIPELINE_FILE, STALE, STALE_HINT
from tests.helpers import PROJECT_ROOT, run_cli

COMMITTED = PROJECT_ROOT / "spinnaker" / PIPELINE_FILE


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(COMMITTED.read_text())


def _stages(doc: dict) -> dict[str, dict]:
    return {s["refId"]: s for s in doc["stages"]}


def _args(stage: dict) -> list[str]:
    [container] = stage["manifest"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["modelops"]
    return list(container["args"])


def _ancestors(stages: dict[str, dict], ref: str) -> set[str]:
    seen: set[str] = set()
    todo = list(stages[ref]["requisiteStageRefIds"])
    while todo:
        r = todo.pop()
        if r not in seen:
            seen.add(r)
            todo.extend(stages[r]["requisiteStageRefIds"])
    return seen


def test_the_committed_file_is_what_the_generator_writes(tmp_path: Path) -> None:
    check = run_cli("ci", "spinnaker", "--check", cwd=PROJECT_ROOT)
    assert check.exit_code == 0, f"{check}\nrun: modelops ci spinnaker, and commit spinnaker/"
    out = run_cli("ci", "spinnaker", "--out", tmp_path, "--output", "json", cwd=PROJECT_ROOT)
    assert out.exit_code == 0, out
    assert (tmp_path / PIPELINE_FILE).read_text() == COMMITTED.read_text()


def test_the_committed_file_is_valid_against_the_schema_and_its_graph_is_sound(document: dict) -> None:
    assert spinnaker_problems(document) == []


def test_a_manual_judgment_precedes_every_prod_stage_and_records_the_judge(document: dict) -> None:
    stages = _stages(document)
    judgment = stages["judgment-prod"]
    assert judgment["type"] == "manualJudgment"
    assert _ancestors(stages, "judgment-prod") >= {"test-staging", "deploy-staging", "test-dev", "validate"}
    approve = stages["approve-prod"]
    assert approve["requisiteStageRefIds"] == ["judgment-prod"]
    [container] = approve["manifest"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["sh", "-ec"]
    assert 'modelops approve "$release" --env "$MODELOPS_ENV"' in container["command"][2]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELOPS_CI_USER"] == "${#stage('Approve prod')['context']['lastModifiedBy']}"
    assert env["MODELOPS_CI_SYSTEM"] == "spinnaker" and env["MODELOPS_PIPELINE_RUN"] == "${execution.id}"
    assert len(env) == len(container["env"])  # each variable once
    # Every other job acts for whoever started the pipeline, as Spinnaker authenticated them.
    [deployer] = stages["deploy-prod-us-east-1"]["manifest"]["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e["value"] for e in deployer["env"]}["MODELOPS_CI_USER"] == "${trigger.user}"
    assert env["MODELOPS_ENV"] == "prod" and env["MODEL"] == "${parameters.model}"
    for ref in stages:
        if ref.startswith("deploy-prod"):
            assert "judgment-prod" in _ancestors(stages, ref), ref


def test_one_deploy_stage_per_prod_region_grouped_in_waves(document: dict) -> None:
    stages = _stages(document)
    deploys = {ref: s for ref, s in stages.items() if ref.startswith("deploy-prod-")}
    assert set(deploys) == {"deploy-prod-us-east-1", "deploy-prod-eu-west-1", "deploy-prod-ap-southeast-2"}
    for ref, stage in deploys.items():
        region = ref.removeprefix("deploy-prod-")
        assert _args(stage) == ["deploy", "${parameters.model}", "--env", "prod", "--region", region,
                                "--ref", "${parameters.ref}"]
    # wave 1 after the approval; both regions of wave 2 in parallel after wave 1 is deployed and tested.
    assert deploys["deploy-prod-us-east-1"]["requisiteStageRefIds"] == ["approve-prod"]
    assert deploys["deploy-prod-eu-west-1"]["requisiteStageRefIds"] == ["test-prod-us-east-1"]
    assert deploys["deploy-prod-ap-southeast-2"]["requisiteStageRefIds"] == ["test-prod-us-east-1"]
    assert "deploy-prod-eu-west-1" not in _ancestors(stages, "deploy-prod-ap-southeast-2")


def test_every_stage_fails_the_pipeline_and_none_rolls_back_by_itself(document: dict) -> None:
    for stage in document["stages"]:
        assert stage["failPipeline"] is True
        if stage["type"] == "runJobManifest" and stage["refId"] != "approve-prod":
            assert _args(stage)[0] in {"validate", "build", "deploy", "test"}


def test_a_changed_environments_file_makes_the_check_fail_until_regenerated(repo: Path) -> None:
    assert run_cli("ci", "spinnaker", cwd=repo).exit_code == 0
    assert run_cli("ci", "spinnaker", "--check", cwd=repo).exit_code == 0
    path = repo / "pipelines/environments.yaml"
    path.write_text(path.read_text().replace("- [eu-west-1, ap-southeast-2]", "- [eu-west-1]\n      - [ap-southeast-2]"))

    stale = run_cli("ci", "spinnaker", "--check", cwd=repo)

    assert stale.exit_code == 1, stale
    assert STALE.format(file=f"spinnaker/{PIPELINE_FILE}") in stale.stderr and STALE_HINT in stale.stderr
    assert run_cli("ci", "spinnaker", cwd=repo).exit_code == 0
    stages = _stages(json.loads((repo / "spinnaker" / PIPELINE_FILE).read_text()))
    assert stages["deploy-prod-ap-southeast-2"]["requisiteStageRefIds"] == ["test-prod-eu-west-1"]


def test_out_and_check_together_are_bad_usage(repo: Path, tmp_path: Path) -> None:
    result = run_cli("ci", "spinnaker", "--check", "--out", tmp_path, cwd=repo)
    assert result.exit_code == 2, result


def _broken(document: dict, how: str) -> dict:
    doc = copy.deepcopy(document)
    stages = doc["stages"]
    if how == "missing refId":
        del stages[1]["refId"]
    elif how == "unknown requisite":
        stages[2]["requisiteStageRefIds"] = ["nope"]
    elif how == "duplicate refId":
        stages[3]["refId"] = stages[2]["refId"]
    elif how == "cycle":
        stages[0]["requisiteStageRefIds"] = [stages[-1]["refId"]]
    elif how == "job without containers":
        stages[0]["manifest"]["spec"]["template"]["spec"]["containers"] = []
    elif how == "judgment without instructions":
        del next(s for s in stages if s["type"] == "manualJudgment")["instructions"]
    elif how == "requisite not a string":
        stages[2]["requisiteStageRefIds"] = [2]
    return doc


@pytest.mark.parametrize("how", ["missing refId", "unknown requisite", "duplicate refId", "cycle",
                                 "job without containers", "judgment without instructions",
                                 "requisite not a string"])
def test_the_checks_reject_broken_pipelines(document: dict, how: str) -> None:
    assert spinnaker_problems(_broken(document, how)) != []
