"""``deploy --replay FILE``: requests captured elsewhere (replay lines or SageMaker Data Capture
records) join what a judged canary mirrors; a bad file is refused at its line before anything deploys."""

from __future__ import annotations

import json
from pathlib import Path

from modelops.config import Workspace, load_environments, load_model
from modelops.config.cases import CaseRequest
from modelops.deploy import judged
from tests.helpers import judged_iris_repo, run_cli, write


def _judged_repo(tmp_path: Path) -> Path:
    return judged_iris_repo(tmp_path / "repo")


def test_captured_requests_are_mirrored_after_the_models_own(tmp_path: Path) -> None:
    repo = _judged_repo(tmp_path)
    ws = Workspace.discover(repo)
    model = load_model(ws, "models/iris")
    env = load_environments(ws).get("dev")
    captured = (CaseRequest(content_type="text/csv", body=b"6.3,2.9,5.6,1.8"),)
    own = judged.setup(model, env, ws, None)
    with_captured = judged.setup(model, env, ws, None, captured=captured)
    assert own is not None and with_captured is not None
    assert with_captured.inputs == own.inputs + captured


def test_a_bad_captured_file_is_refused_at_its_line_and_nothing_deploys(tmp_path: Path) -> None:
    repo = _judged_repo(tmp_path)
    bad = write(tmp_path / "capture.jsonl", json.dumps({"captureData": {"endpointInput": {
        "observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3,4", "encoding": "CSV"}}})
        + "\n" + json.dumps({"captureData": {"endpointInput": {"mode": "INPUT"}}}) + "\n")
    dirs = {"MODELOPS_DATA_DIR": tmp_path / "data", "MODELOPS_LOCAL_DATA_DIR": tmp_path / "localcloud"}
    result = run_cli("deploy", "models/iris", "--env", "dev", "--replay", bad, cwd=repo,
                     env={k: str(v) for k, v in dirs.items()})
    assert result.exit_code == 2, result.stderr
    assert f"{bad}:2:1: line 2: a Data Capture record, but captureData.endpointInput.data is missing" in result.stderr
    # Refused before the build and the cloud: no local cloud started, nothing built or recorded.
    assert [p for d in dirs.values() if d.exists() for p in d.rglob("*") if p.is_file()] == []
