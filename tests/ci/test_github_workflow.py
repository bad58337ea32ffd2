"""The GitHub pull-request workflow: valid against SchemaStore's github-workflow schema (the copy the
installed check-jsonschema ships), and it runs `modelops ci pr` and publishes what it writes."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "pr.yml"


def _schema() -> dict[str, Any]:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("github-workflows.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as true; GitHub (and the schema) mean "on"
        doc["on"] = doc.pop(True)
    assert isinstance(doc, dict)
    return doc


def _errors(doc: dict[str, Any]) -> list[str]:
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return _load(WORKFLOW)


def test_the_workflow_is_valid_against_the_schemastore_schema(workflow: dict[str, Any]) -> None:
    assert _errors(workflow) == []


def test_the_schema_catches_a_broken_workflow(workflow: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(workflow))
    broken["jobs"]["check"]["runs-onn"] = broken["jobs"]["check"].pop("runs-on")
    assert _errors(broken) != []


def test_it_runs_the_pr_check_and_publishes_its_reports(workflow: dict[str, Any]) -> None:
    assert "pull_request" in workflow["on"]
    steps = workflow["jobs"]["check"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    [check] = [s for s in steps if "modelops ci pr" in s.get("run", "") and "--base" in s["run"]]
    for flag in ("--base \"$BASE_REF\"", "--markdown reports/pr.md", "--sarif reports/modelops.sarif",
                 "--junit reports/modelops.xml"):
        assert flag in check["run"]
    # The pull request's actor, as GitHub authenticated them, is the CI user ci pr names.
    assert check["env"]["MODELOPS_CI_SYSTEM"] == "github" and check["env"]["MODELOPS_CI_USER"] == "${{ github.actor }}"
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"] == "reports/modelops.sarif"
    assert uses["marocchino/sticky-pull-request-comment"]["with"]["path"] == "reports/pr.md"
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"] == "reports/modelops.xml"
    # The job fails when the check does, after the reports are out.
    assert steps[-1]["if"] == "steps.check.outputs.status != '0'" and "exit 1" in steps[-1]["run"]
    assert workflow["permissions"]["security-events"] == "write"
