"""`modelops gc`: old releases' SageMaker models and endpoint configs, local images, model data and build
cache go; what serves, what a rollback returns to and the last N releases stay (a data dir grew to 4.7 GB
and nothing freed it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelops import naming
from tests.helpers import commit_all, run_cli


def _release(repo: Path, n: int) -> str:
    """A new release of iris whose image differs too (its code changed)."""
    code = repo / "models/iris/code/inference.py"
    code.write_text(code.read_text() + f"\n# release {n}\n")
    commit_all(repo, f"iris release {n}")
    deployed = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert deployed.exit_code == 0, deployed
    return str(deployed.json()["release"])


def _sagemaker(repo: Path) -> tuple[set[str], set[str]]:
    import os

    from modelops.clients import clients_for
    from modelops.config import Workspace, load_environments
    from modelops.runtime import Runtime

    ws = Workspace.discover(repo)
    env = load_environments(ws).get("dev")
    sm = clients_for(env, Runtime(cwd=repo, data_dir=repo, environ=dict(os.environ))).client("sagemaker", "us-east-1")
    models = {m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]}
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]}
    return models, configs


@pytest.mark.slow
def test_gc_frees_old_releases_and_keeps_what_serves_and_what_a_rollback_needs(cloud_repo: Path) -> None:
    shutil.rmtree(cloud_repo / "models" / "minilm-embeddings")
    commit_all(cloud_repo, "only iris")
    releases = [_release(cloud_repo, n) for n in range(4)]
    models, configs = _sagemaker(cloud_repo)
    assert {naming.model_name("iris", "dev", r) for r in releases} <= models

    refused = run_cli("gc", "--keep", "0", cwd=cloud_repo)
    assert refused.exit_code == 2 and "--keep must be at least 1" in refused.stderr, refused

    dry = run_cli("gc", "--keep", "1", "--min-age", "0", "--dry-run", "--output", "json", cwd=cloud_repo)
    assert dry.exit_code == 0, dry
    assert dry.json()["dry_run"] is True and dry.json()["freed"], dry
    assert _sagemaker(cloud_repo) == (models, configs)  # nothing freed

    freed = run_cli("gc", "--keep", "1", "--min-age", "0", "--output", "json", cwd=cloud_repo)
    assert freed.exit_code == 0, freed
    doc = freed.json()
    # Serving: the last; a rollback returns to the one before: both kept with --keep 1.
    assert doc["kept"] == {"iris": sorted(releases[2:])}, doc
    assert {(f["kind"], f["name"]) for f in doc["freed"] if f["kind"] in ("model", "endpoint-config")} == {
        *(("model", naming.model_name("iris", "dev", r)) for r in releases[:2]),
        *(("endpoint-config", naming.endpoint_config_name("iris", "dev", r)) for r in releases[:2])}
    assert sum(1 for f in doc["freed"] if f["kind"] == "image") == 2 and doc["bytes"] > 0, doc
    assert [f["kind"] for f in doc["freed"] if f["kind"] == "model-data"] == ["model-data"] * 2, doc
    models_after, configs_after = _sagemaker(cloud_repo)
    assert models_after == models - {naming.model_name("iris", "dev", r) for r in releases[:2]}
    assert configs_after == configs - {naming.endpoint_config_name("iris", "dev", r) for r in releases[:2]}
    dry_named = {(f["kind"], f["name"]) for f in dry.json()["freed"]}
    assert dry_named == {(f["kind"], f["name"]) for f in doc["freed"]}  # the dry run said exactly this

    # What stayed still works: the endpoint answers, and a rollback returns to the kept release.
    answer = run_cli("invoke", "iris", "--env", "dev", "--body", '{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                     cwd=cloud_repo)
    assert answer.exit_code == 0, answer
    back = run_cli("rollback", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert back.exit_code == 0 and back.json()["release"] == releases[2], back

    again = run_cli("gc", "--keep", "1", "--min-age", "0", "--output", "json", cwd=cloud_repo)
    assert again.exit_code == 0, again
    assert [f for f in again.json()["freed"] if f["kind"] != "build-cache"] == [], again  # nothing more to free
