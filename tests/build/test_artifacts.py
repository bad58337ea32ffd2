"""Artifacts: pinned at build, checked again before deploy (a tampered file is refused, named), and
the manifest signature made with model-signing and a local key, required where the policy says."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.build import verify_artifacts
from modelops.build.artifacts import (
    SIGNATURE_INVALID,
    SIGNATURE_REQUIRED,
    Manifest,
    ManifestEntry,
    archive_names,
    gather,
    verify_model_data,
    write_model_data,
)
from modelops.config import Workspace, load_environments, load_model
from modelops.errors import GateError
from modelops.runtime import Runtime
from tests.build.conftest import ec_key_pair
from tests.helpers import commit_all, run_cli


def _runtime(repo: Path, tmp_path: Path) -> Runtime:
    return Runtime(cwd=repo, data_dir=tmp_path / "data", environ={})


def test_a_tampered_artifact_is_refused_before_deploy_naming_the_file(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.discover(repo)
    model = load_model(ws, "iris")
    env = load_environments(ws).get("dev")
    verify_artifacts(model, ws, environment=env, runtime=_runtime(repo, tmp_path))  # as committed: fine
    artifact = repo / "models/iris/artifacts/model.json"
    artifact.write_bytes(artifact.read_bytes().replace(b"setosa", b"sEtosa"))
    with pytest.raises(GateError) as caught:
        verify_artifacts(model, ws, environment=env, runtime=_runtime(repo, tmp_path))
    assert caught.value.message.startswith("models/iris/artifacts/model.json: sha256 ")
    assert "does not match the pinned d1b75e90" in caught.value.message


def test_build_refuses_a_tampered_artifact_with_a_gate_failure(repo: Path, tmp_path: Path) -> None:
    artifact = repo / "models/iris/artifacts/model.json"
    artifact.write_bytes(artifact.read_bytes() + b" ")
    result = run_cli("build", "iris", "--context-only", tmp_path / "ctx", cwd=repo)
    assert result.exit_code == 1, result
    assert "models/iris/artifacts/model.json: sha256" in " ".join(result.stderr.split())
    assert not (tmp_path / "ctx").exists()


def test_a_tampered_cached_model_data_archive_is_refused(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.discover(repo)
    gathered = gather(load_model(ws, "iris"), ws, cache_dir=tmp_path / "cache")
    archive = write_model_data(gathered, tmp_path / "model.tar.gz")
    verify_model_data(archive, gathered.manifest, model_folder="models/iris")
    forged = Manifest("iris", (ManifestEntry("artifacts/model.json", "0" * 64, 1),))
    with pytest.raises(GateError, match=r"models/iris/artifacts/model\.json: model data archive"):
        verify_model_data(archive, forged, model_folder="models/iris")


def test_model_data_archive_is_deterministic_and_flattens_the_artifacts_folder(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.discover(repo)
    gathered = gather(load_model(ws, "iris"), ws, cache_dir=tmp_path / "cache")
    a = write_model_data(gathered, tmp_path / "a.tar.gz").read_bytes()
    b = write_model_data(gathered, tmp_path / "b.tar.gz").read_bytes()
    assert a == b
    assert archive_names(["artifacts/model.safetensors", "artifacts/1_Pooling/config.json"]) == {
        "artifacts/model.safetensors": "model.safetensors", "artifacts/1_Pooling/config.json": "1_Pooling/config.json"}


def _require_signatures_in_dev(repo: Path, public: Path) -> None:
    policy = repo / "pipelines/policy.yaml"
    policy.write_text(policy.read_text().replace("required_in: []", "required_in: [dev]"))
    (repo / "pipelines/artifact-signing.pub").write_bytes(public.read_bytes())


def test_signed_manifest_verifies_and_a_changed_artifact_breaks_it(repo: Path, tmp_path: Path) -> None:
    private, public = ec_key_pair(tmp_path)
    _require_signatures_in_dev(repo, public)
    commit_all(repo, "require signatures in dev")
    ws = Workspace.discover(repo)
    env = load_environments(ws).get("dev")

    with pytest.raises(GateError) as unsigned:
        verify_artifacts(load_model(ws, "iris"), ws, environment=env)
    assert unsigned.value.message == SIGNATURE_REQUIRED.format(model="iris", environment="dev",
                                                               file="models/iris/artifacts.sig")

    signed = run_cli("build", "iris", "--context-only", tmp_path / "ctx", "--sign-key", private, "-o", "json", cwd=repo)
    assert signed.exit_code == 0, signed
    assert signed.json()["signed"] is True
    assert (repo / "models/iris/artifacts.sig").is_file()
    verify_artifacts(load_model(ws, "iris"), ws, environment=env)

    # Re-pinning a changed artifact changes the manifest: the old signature no longer covers it.
    artifact = repo / "models/iris/artifacts/model.json"
    artifact.write_bytes(artifact.read_bytes() + b"\n")
    import hashlib

    model_yaml = repo / "models/iris/model.yaml"
    model_yaml.write_text(model_yaml.read_text().replace(
        "d1b75e902d14d45090d10ede85aee32af7f1ad2c54ddf4ebc17b46916ed01e35",
        hashlib.sha256(artifact.read_bytes()).hexdigest()))
    with pytest.raises(GateError) as broken:
        verify_artifacts(load_model(ws, "iris"), ws, environment=env)
    assert broken.value.message.startswith(SIGNATURE_INVALID.split("{key}")[0].format(file="models/iris/artifacts.sig"))
    assert "the artifacts differ from the ones that were signed" in broken.value.message


def test_signature_from_another_key_is_refused_even_where_not_required(repo: Path, tmp_path: Path) -> None:
    private, _ = ec_key_pair(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, stranger_public = ec_key_pair(other)
    (repo / "pipelines/artifact-signing.pub").write_bytes(stranger_public.read_bytes())
    signed = run_cli("build", "iris", "--context-only", tmp_path / "ctx", "--sign-key", private, cwd=repo)
    assert signed.exit_code == 1, signed  # signed, then checked against the repository's key: refused
    assert "does not verify with artifact-signing.pub" in " ".join(signed.stderr.split())
