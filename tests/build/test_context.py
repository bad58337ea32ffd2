"""Rendering and the digest: deterministic across clones, region-independent, pinned to each region's DLC."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelops.build.dlc import DlcResolver
from modelops.build.service import CLOUD_NOT_SUPPORTED
from modelops.errors import InputError
from tests.helpers import commit_all, git, run_cli, write


def _context(repo: Path, out: Path, model: str, *extra: str) -> dict:
    result = run_cli("build", model, "--context-only", out, "--output", "json", *extra, cwd=repo)
    assert result.exit_code == 0, result
    return result.json()


def test_two_clones_of_one_commit_give_the_same_digest_and_bytes(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    first = _context(repo, tmp_path / "a", "iris")
    second = _context(clone, tmp_path / "b", "iris")
    assert first["digest"] == second["digest"] and first["digest"].startswith("sha256:")
    assert first["release"] == second["release"]
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_one_digest_serves_every_region_and_only_the_registry_differs(repo: Path, tmp_path: Path) -> None:
    dev = _context(repo, tmp_path / "dev", "iris")
    prod = _context(repo, tmp_path / "prod", "iris", "--env", "prod")
    assert dev["digest"] == prod["digest"]
    regions = [i["region"] for i in prod["images"]]
    assert regions == ["us-east-1", "eu-west-1", "ap-southeast-2"]
    dockerfiles = {r: (tmp_path / "prod" / r / "Dockerfile").read_text() for r in regions}
    for region, text in dockerfiles.items():
        from_line = next(line for line in text.splitlines() if line.startswith("FROM "))
        assert from_line.endswith(f".dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"), from_line
    # Take the registry host out and the region Dockerfiles are the same text.
    normalized = {text.replace(next(i["base_image"] for i in prod["images"] if i["region"] == r).split("/")[0], "REG")
                  for r, text in dockerfiles.items()}
    assert len(normalized) == 1
    assert 'SAGEMAKER_PROGRAM="inference.py"' in dockerfiles["us-east-1"]
    assert f'modelops.release="{prod["release"]}"' in dockerfiles["us-east-1"]


def test_code_and_artifact_changes_change_the_digest_and_other_commits_do_not(repo: Path, tmp_path: Path) -> None:
    before = _context(repo, tmp_path / "0", "iris")["digest"]
    write(repo / "README.md", "unrelated\n")
    commit_all(repo, "docs")
    assert _context(repo, tmp_path / "1", "iris")["digest"] == before
    handler = repo / "models/iris/code/inference.py"
    handler.write_text(handler.read_text() + "\n# a comment is a change\n")
    commit_all(repo, "handler")
    assert _context(repo, tmp_path / "2", "iris")["digest"] != before


def test_a_ref_builds_the_model_as_it_was(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    before = _context(repo, tmp_path / "0", "iris")
    handler = repo / "models/iris/code/inference.py"
    handler.write_text(handler.read_text() + "\n# later\n")
    commit_all(repo, "later")
    at_ref = _context(repo, tmp_path / "1", "iris", "--ref", head)
    assert at_ref["digest"] == before["digest"] and at_ref["commit"] == head


def test_llm_renders_lmi_dockerfile_and_serving_properties_per_region(repo: Path, tmp_path: Path) -> None:
    doc = _context(repo, tmp_path / "ctx", "llm-chat", "--env", "prod")
    for image in doc["images"]:
        region = image["region"]
        folder = tmp_path / "ctx" / region
        dockerfile = (folder / "Dockerfile").read_text()
        assert f"FROM 763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.31.0-lmi" in dockerfile
        assert 'OPTION_TENSOR_PARALLEL_DEGREE="4"' in dockerfile and 'OPTION_QUANTIZE="awq"' in dockerfile
        props = dict(line.split("=", 1) for line in (folder / "serving.properties").read_text().splitlines())
        assert props["option.rolling_batch"] == "vllm"
        assert props["option.tensor_parallel_degree"] == "4"
        assert props["option.max_rolling_batch_size"] == "32"
        assert props["job_queue_size"] == "1000"
        assert props["option.dtype"] == "fp16"
        assert image["model_data_url"] == ""  # weights come from option.model_id


def test_local_builder_refuses_an_aws_only_model(repo: Path) -> None:
    result = run_cli("build", "llm-chat", cwd=repo)
    assert result.exit_code == 2, result
    expected = CLOUD_NOT_SUPPORTED.format(model="llm-chat", clouds="aws", file="models/llm-chat/model.yaml",
                                          env="dev", cloud="local")
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_a_context_folder_holding_other_files_is_refused_so_they_cannot_ride_into_the_image(
        repo: Path, tmp_path: Path) -> None:
    # The Dockerfile does `COPY code/ /opt/ml/code/`: a handler left in DIR/<region>/code/ by an earlier
    # render (or anything else there) went into an image built from DIR, whose digest no longer said so.
    out = tmp_path / "ctx"
    first = _context(repo, out, "iris")
    assert _context(repo, out, "iris")["digest"] == first["digest"]  # rendering again over itself is fine
    stale = write(out / "us-east-1" / "code" / "old_handler.py", "print('stale')\n")
    before = (out / "us-east-1" / "Dockerfile").read_bytes()
    result = run_cli("build", "iris", "--context-only", out, "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    assert result.json()["error"]["message"] == (
        f"{out / 'us-east-1'} holds files this build does not render (code/old_handler.py); an image built "
        "from it would hold them too"), result
    assert stale.exists() and (out / "us-east-1" / "Dockerfile").read_bytes() == before  # nothing touched


def test_unknown_framework_version_lists_the_versions_that_exist(repo: Path, tmp_path: Path) -> None:
    yaml_path = repo / "models/iris/model.yaml"
    yaml_path.write_text(yaml_path.read_text().replace('framework_version: "1.2-1"', 'framework_version: "9.9-9"'))
    result = run_cli("build", "iris", "--context-only", tmp_path / "ctx", cwd=repo)
    assert result.exit_code == 2, result
    line = " ".join(result.stderr.split())
    assert "models/iris/model.yaml:" in line and "sklearn 9.9-9 has no Deep Learning Container" in line
    assert "1.2-1" in line  # the versions that exist


def test_json_output_has_what_create_model_takes(repo: Path, tmp_path: Path) -> None:
    doc = _context(repo, tmp_path / "ctx", "minilm-embeddings")
    assert set(doc) >= {"release", "digest", "images"}
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc["digest"]) and doc["release"].startswith("minilm-embeddings-")
    [image] = doc["images"]
    assert set(image) >= {"region", "image_uri", "model_data_url"}
    assert image["region"] == "us-east-1"
    assert image["image_uri"].startswith("000000000000.dkr.ecr.us-east-1.amazonaws.com/modelops/minilm-embeddings:")
    assert image["image_uri"].rsplit(":", 1)[1] == doc["digest"][7:23]
    assert image["model_data_url"].startswith("s3://") and image["model_data_url"].endswith("/model.tar.gz")
    assert image["base_image"].endswith("/djl-inference:0.29.0-cpu-full")
    props = (tmp_path / "ctx/us-east-1/serving.properties").read_text()
    assert "engine=Python" in props and "option.entryPoint=model.py" in props


@pytest.mark.parametrize(("framework", "version", "region", "says", "listed", "one_of_them"), [
    ("sklearnn", "1.2-1", "us-east-1", "framework 'sklearnn' has no Deep Learning Container", "frameworks", "sklearn"),
    ("sklearn", "1.2-1", "mars-north-1", "sklearn 1.2-1 has no Deep Learning Container in mars-north-1", "regions",
     "eu-west-1"),
    ("djl-cpu", "0.29.0", "mars-north-1", "djl-cpu 0.29.0 has no Deep Learning Container in mars-north-1",
     "regions", "eu-west-1"),
], ids=["framework", "region", "djl-region"])
def test_unknown_framework_or_region_lists_what_exists(tmp_path: Path, framework: str, version: str, region: str,
                                                       says: str, listed: str, one_of_them: str) -> None:
    resolver = DlcResolver(tmp_path / "dlc-cache.json")
    with pytest.raises(InputError) as caught:
        resolver.resolve(framework, version, instance_type="ml.m5.large", region=region, where="model.yaml:9:5")
    message = caught.value.message
    assert message.startswith(f"model.yaml:9:5: {says} ({listed}: "), message
    assert one_of_them in message.split(f"({listed}: ", 1)[1].rstrip(")").split(", ")


def test_the_build_line_says_dirty_when_the_model_folder_has_uncommitted_changes(repo: Path, tmp_path: Path) -> None:
    # The line cut "<sha>-dirty" to 12 characters, so a build of uncommitted code read "at <sha>" like a
    # build of the commit (and outside a commit, "at uncommitted-").
    head = git(repo, "rev-parse", "HEAD")
    clean = run_cli("build", "iris", "--context-only", tmp_path / "clean", cwd=repo)
    assert f"building iris for dev (us-east-1) at {head[:12]}\n" in clean.stderr, clean
    handler = repo / "models" / "iris" / "code" / "inference.py"
    handler.write_text(handler.read_text() + "\n# not committed\n")
    dirty = run_cli("build", "iris", "--context-only", tmp_path / "dirty", "--output", "json", cwd=repo)
    assert dirty.exit_code == 0, dirty
    assert f"building iris for dev (us-east-1) at {head[:12]}-dirty\n" in dirty.stderr, dirty
    assert dirty.json()["commit"] == f"{head}-dirty"
