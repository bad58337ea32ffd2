"""Artifacts: pinned at build, checked again before deploy (a tampered file is refused, named), and
the manifest signature made with model-signing and a local key, required where the policy says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelops.build import verify_artifacts
from modelops.build.artifacts import (
    MODEL_DATA_CODE_CHANGED,
    MODEL_DATA_MISMATCH,
    MODEL_DATA_MISSING,
    MODEL_DATA_UNEXPECTED,
    SIGNATURE_INVALID,
    SIGNATURE_REQUIRED,
    archive_names,
    gather,
    model_data_name,
    verify_model_data,
    write_model_data,
)
from modelops.config import Workspace, load_environments, load_model
from modelops.errors import GateError
from modelops.runtime import Runtime
from tests.build.conftest import ec_key_pair, write_archive
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


def _cached_archive(repo: Path, runtime: Runtime) -> Path:
    """The iris archive where build caches it (what the pre-deploy check reads)."""
    ws = Workspace.discover(repo)
    gathered = gather(load_model(ws, "iris"), ws, cache_dir=runtime.data_dir / "build" / "artifacts")
    return write_model_data(gathered, runtime.data_dir / "build" / "model-data" / model_data_name(gathered))


GOOD = (Path(__file__).parents[2] / "models/iris/artifacts/model.json").read_bytes()
FORGED = GOOD.replace(b"setosa", b"sEtosa")


@pytest.mark.parametrize(("members", "message"), [
    # Rewritten with a changed model, and a matching checksum file put next to it: no record kept
    # beside the archive is trusted, only the pins.
    ([("model.json", FORGED)], MODEL_DATA_MISMATCH.format(file="models/iris/artifacts/model.json", archive="{a}")),
    ([("model.json", GOOD), ("evil.py", b"import os")], MODEL_DATA_UNEXPECTED.format(archive="{a}", member="evil.py")),
    # Extraction keeps the last of two same-named members: the forged one.
    ([("model.json", GOOD), ("model.json", FORGED)], MODEL_DATA_UNEXPECTED.format(archive="{a}", member="model.json")),
    ([("other.json", GOOD)], MODEL_DATA_MISSING.format(file="models/iris/artifacts/model.json", archive="{a}")),
], ids=["changed-with-checksum", "extra-member", "duplicate-member", "artifact-missing"])
def test_a_rewritten_model_data_archive_is_refused_before_deploy(repo: Path, tmp_path: Path, members: list,
                                                                  message: str) -> None:
    runtime = _runtime(repo, tmp_path)
    ws = Workspace.discover(repo)
    model, env = load_model(ws, "iris"), load_environments(ws).get("dev")
    archive = _cached_archive(repo, runtime)
    verify_artifacts(model, ws, environment=env, runtime=runtime)  # as build wrote it: fine
    write_archive(archive, members)
    Path(f"{archive}.sha256").write_text(hashlib.sha256(archive.read_bytes()).hexdigest() + "\n")
    with pytest.raises(GateError) as caught:
        verify_artifacts(model, ws, environment=env, runtime=runtime)
    assert caught.value.message == message.replace("{a}", str(archive))


def test_a_truncated_model_data_archive_is_refused(repo: Path, tmp_path: Path) -> None:
    runtime = _runtime(repo, tmp_path)
    archive = _cached_archive(repo, runtime)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    ws = Workspace.discover(repo)
    with pytest.raises(GateError, match=r"model data archive cannot be read"):
        verify_artifacts(load_model(ws, "iris"), ws, environment="dev", runtime=runtime)


def test_the_code_files_of_a_djl_archive_must_be_the_ones_build_packed(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.discover(repo)
    gathered = gather(load_model(ws, "iris"), ws, cache_dir=tmp_path / "cache")
    extras = {"model.py": b"def handle(inputs):\n    return None\n", "serving.properties": b"engine=Python\n"}
    archive = write_model_data(gathered, tmp_path / model_data_name(gathered, extras), extras)
    verify_model_data(archive, gathered.manifest, extras=extras)  # against the rendered code files
    verify_model_data(archive, gathered.manifest)  # against the tag in its name (the pre-deploy check)
    write_archive(archive, [("model.json", GOOD), ("model.py", b"import os; os.system('curl evil')\n"),
                            ("serving.properties", extras["serving.properties"])])
    changed = MODEL_DATA_CODE_CHANGED.format(archive=archive, names="model.py, serving.properties")
    for kwargs in ({"extras": extras}, {}):
        with pytest.raises(GateError) as caught:
            verify_model_data(archive, gathered.manifest, **kwargs)  # type: ignore[arg-type]
        assert caught.value.message == changed


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
