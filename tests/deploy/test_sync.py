"""`modelops sync`: every model at a ref against what an environment runs. A dry run is a drift check
(exit 1 on drift, nothing deployed); a real run deploys what drifted and converges."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import commit_all, init_repo, run_cli


@pytest.mark.slow
def test_sync_reports_drift_deploys_it_and_then_finds_none(cloud_repo: Path) -> None:
    shutil.rmtree(cloud_repo / "models" / "minilm-embeddings")  # one local model keeps the test lean
    commit_all(cloud_repo, "only iris")

    never_deployed = run_cli("sync", "--env", "dev", "--dry-run", "--output", "json", cwd=cloud_repo)
    assert never_deployed.exit_code == 1, never_deployed
    assert [d["model"] for d in never_deployed.json()["drift"]] == ["iris"], never_deployed
    endpoints = run_cli("status", "iris", "--output", "json", cwd=cloud_repo).json()["endpoints"]
    assert {e["status"] for e in endpoints} == {"absent"}  # a dry run deploys nothing

    synced = run_cli("sync", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert synced.exit_code == 0, synced
    assert [(d["model"], d["result"]) for d in synced.json()["deployed"]] == [("iris", "succeeded")], synced
    release = synced.json()["deployed"][0]["release"]

    in_sync = run_cli("sync", "--env", "dev", "--dry-run", "--output", "json", cwd=cloud_repo)
    assert in_sync.exit_code == 0, in_sync
    assert in_sync.json()["drift"] == [] and in_sync.json()["in_sync"] == ["iris"], in_sync

    model = cloud_repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace('SAGEMAKER_CONTAINER_LOG_LEVEL: "20"',
                                               'SAGEMAKER_CONTAINER_LOG_LEVEL: "10"'))
    commit_all(cloud_repo, "more logging")
    drifted = run_cli("sync", "--env", "dev", "--dry-run", "--output", "json", cwd=cloud_repo)
    assert drifted.exit_code == 1, drifted
    assert [d["model"] for d in drifted.json()["drift"]] == ["iris"], drifted
    endpoints = run_cli("status", "iris", "--output", "json", cwd=cloud_repo).json()["endpoints"]
    assert [e["release"] for e in endpoints if e["env"] == "dev"] == [release]  # still the synced release


def test_a_model_whose_config_does_not_load_is_an_error_of_the_drift_check_not_left_out(tmp_path: Path) -> None:
    # The nightly `sync --dry-run` used to skip such a model silently: "0 of 0 model(s) drifted", exit 0,
    # while the model running in dev could no longer be planned or reconciled from git.
    repo = init_repo(tmp_path / "repo")
    shutil.rmtree(repo / "models" / "minilm-embeddings")
    # First, a state dir that cannot be used: the environment failing (3), not drift (1).
    broken = run_cli("--data-dir", "/proc/no-such-dir", "sync", "--env", "dev", "--dry-run", cwd=repo)
    assert broken.exit_code == 3 and "cannot use /proc/no-such-dir" in broken.stderr, broken

    (repo / "models" / "iris" / "model.yaml").write_text("apiVersion: modelops/v1\nkind: Model\nmetadata: {name: iris\n")
    commit_all(repo, "a broken iris")

    for args in (("--dry-run",), ()):
        checked = run_cli("sync", "--env", "dev", *args, "--output", "json", cwd=repo)
        assert checked.exit_code == 2, checked  # bad input, as validate and deploy say of that file
        doc = checked.json()
        assert doc["drift"] == [] and doc["in_sync"] == [] and doc["deployed"] == []
        (error,) = doc["errors"]
        assert error.startswith("models/iris/model.yaml:4:1: "), error

    text = run_cli("sync", "--env", "dev", "--dry-run", cwd=repo)
    assert text.exit_code == 2 and "error: models/iris/model.yaml:4:1: " in text.stderr, text
