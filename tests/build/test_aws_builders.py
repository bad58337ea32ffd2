"""The docker and codebuild builders against moto's ECR, S3, CodeBuild and DynamoDB (the ledger),
with a recording `docker` executable on PATH; CodeBuild log streaming with botocore's Stubber."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelops.build.builders import CODEBUILD_FAILED, NO_DOCKER_HINT
from tests.build.conftest import write_archive
from tests.helpers import run_cli


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_docker_builder_builds_for_amd64_pushes_to_a_hardened_ecr_repository(
        aws_repo: Path, fake_aws: None, recording_docker: Path) -> None:
    import boto3

    result = run_cli("build", "iris", "--env", "aws-dev", "--output", "json", cwd=aws_repo)
    assert result.exit_code == 0, result
    doc = result.json()
    assert [i["region"] for i in doc["images"]] == ["us-east-1", "eu-west-1"]
    builds = [c["argv"] for c in _calls(recording_docker) if c["argv"][:2] == ["buildx", "build"]]
    assert len(builds) == 2
    for image, argv in zip(doc["images"], builds, strict=True):
        assert argv[argv.index("--platform") + 1] == "linux/amd64"
        assert argv[argv.index("--tag") + 1] == image["image_uri"]
        assert "--push" in argv
        dockerfile = (Path(argv[-1]) / "Dockerfile").read_text()
        assert f".dkr.ecr.{image['region']}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3" in dockerfile
        assert image["image_uri"].startswith(f"123456789012.dkr.ecr.{image['region']}.amazonaws.com/modelops/iris:")
    logins = [c for c in _calls(recording_docker) if c["argv"][:1] == ["login"]]
    assert logins and all("--password-stdin" in c["argv"] and c["stdin"] for c in logins)
    assert not any(c["stdin"] in " ".join(c["argv"]) for c in logins)  # the password never on the command line

    for region in ("us-east-1", "eu-west-1"):
        ecr = boto3.client("ecr", region_name=region)
        [repo] = ecr.describe_repositories(repositoryNames=["modelops/iris"])["repositories"]
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"]["scanOnPush"] is True
        assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
        assert repo["encryptionConfiguration"]["kmsKey"] == f"arn:aws:kms:{region}:123456789012:alias/modelops-dev"
        bucket, _, key = doc["images"][0 if region == "us-east-1" else 1]["model_data_url"][5:].partition("/")
        assert boto3.client("s3", region_name=region).head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_docker_builder_skips_tags_already_in_ecr(aws_repo: Path, fake_aws: None, recording_docker: Path) -> None:
    import boto3

    first = run_cli("build", "iris", "--env", "aws-dev", "--output", "json", cwd=aws_repo).json()
    for image in first["images"]:  # what the real push would have left in ECR
        tag = image["image_uri"].rsplit(":", 1)[1]
        boto3.client("ecr", region_name=image["region"]).put_image(
            repositoryName="modelops/iris", imageTag=tag,
            imageManifest=json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "1" * 64}}),
            imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json")
    recording_docker.write_text("")
    again = run_cli("build", "iris", "--env", "aws-dev", "--output", "json", cwd=aws_repo)
    assert again.exit_code == 0, again
    assert again.json()["cache_hit"] is True
    assert not [c for c in _calls(recording_docker) if c["argv"][:1] == ["buildx"]]


def test_a_rewritten_cached_model_data_archive_is_never_uploaded(aws_repo: Path, fake_aws: None,
                                                                  recording_docker: Path) -> None:
    import os

    import boto3

    first = run_cli("build", "iris", "--env", "aws-dev", "--output", "json", cwd=aws_repo).json()
    bucket, _, key = first["images"][0]["model_data_url"][5:].partition("/")
    s3 = boto3.client("s3", region_name="us-east-1")
    uploaded = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    [archive] = (Path(os.environ["MODELOPS_DATA_DIR"]) / "build/model-data").glob("*.tar.gz")
    write_archive(archive, [("model.json", b'{"forged": true}')])
    again = run_cli("build", "iris", "--env", "aws-dev", cwd=aws_repo)
    assert again.exit_code == 1, again
    assert "models/iris/artifacts/model.json: model data archive" in " ".join(again.stderr.split())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == uploaded


def test_no_docker_engine_is_one_line_that_names_codebuild(aws_repo: Path, fake_aws: None, recording_docker: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_ENGINE", "down")
    result = run_cli("build", "iris", "--env", "aws-dev", cwd=aws_repo)
    assert result.exit_code == 3, result
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: no Docker engine: Cannot connect to the Docker daemon"), error
    assert error.endswith("the codebuild builder builds in AWS without one"), error  # one line names codebuild
    assert f"hint: {NO_DOCKER_HINT}" in result.stderr and "Traceback" not in result.stderr


def test_no_docker_command_at_all(aws_repo: Path, fake_aws: None, tmp_path: Path) -> None:
    import shutil

    empty = tmp_path / "bin-without-docker"
    empty.mkdir()
    (empty / "git").symlink_to(shutil.which("git") or "/usr/bin/git")  # git stays; docker is gone
    result = run_cli("build", "iris", "--env", "aws-dev", cwd=aws_repo, env={"PATH": str(empty)})
    assert result.exit_code == 3, result
    assert "no Docker engine: the docker command is not installed" in result.stderr


def test_codebuild_builder_uploads_the_context_and_runs_a_generated_buildspec(
        aws_repo: Path, fake_aws: None) -> None:
    import io
    import zipfile

    import boto3

    result = run_cli("build", "iris", "--env", "aws-dev", "--builder", "codebuild", "--output", "json", cwd=aws_repo)
    assert result.exit_code == 0, result
    doc = result.json()
    for image in doc["images"]:
        region = image["region"]
        s3 = boto3.client("s3", region_name=region)
        bucket = f"modelops-build-123456789012-{region}"
        [obj] = s3.list_objects_v2(Bucket=bucket)["Contents"]
        with zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())) as zf:
            names = set(zf.namelist())
            dockerfile = zf.read("Dockerfile").decode()
        assert {"Dockerfile", "code/inference.py", "requirements.txt", "artifacts.manifest.json"} <= names
        assert f".dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn" in dockerfile
        cb = boto3.client("codebuild", region_name=region)
        [build_id] = cb.list_builds_for_project(projectName="modelops-image-build")["ids"]
        build = cb.batch_get_builds(ids=[build_id])["builds"][0]
        assert build["buildStatus"] == "SUCCEEDED"
        ecr = boto3.client("ecr", region_name=region)
        assert ecr.describe_repositories(repositoryNames=["modelops/iris"])["repositories"]


def _stubbed(service: str) -> tuple[Any, Any]:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


class _Clients:
    def __init__(self, logs: Any):
        self.logs = logs

    def client(self, service: str, region: str) -> Any:
        assert service == "logs"
        return self.logs


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def start(self, task: str, total: float | None = None) -> None:
        pass

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None:
        if message:
            self.lines.append(message)

    def finish(self, task: str) -> None:
        pass


class _NoSleep:
    def now(self) -> float:
        return 0.0

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        pass


def _follow(statuses: list[str], phases: list[dict[str, Any]] | None = None) -> _Recorder:
    from modelops.build.builders import _follow as follow
    from modelops.runtime import Runtime

    cb, cb_stub = _stubbed("codebuild")
    logs, logs_stub = _stubbed("logs")
    log_info = {"groupName": "/aws/codebuild/modelops-image-build", "streamName": "b1"}
    for i, status in enumerate(statuses):
        build: dict[str, Any] = {"id": "modelops-image-build:b1", "buildStatus": status, "logs": log_info}
        if phases and status != "IN_PROGRESS":
            build["phases"] = phases
        cb_stub.add_response("batch_get_builds", {"builds": [build]}, {"ids": ["modelops-image-build:b1"]})
        logs_stub.add_response("get_log_events", {"events": [{"message": f"line {i}\n"}], "nextForwardToken": f"t{i}"})
    recorder = _Recorder()
    runtime = Runtime(cwd=Path("."), data_dir=Path("."), environ={}, clock=_NoSleep(), progress=recorder)
    with cb_stub, logs_stub:
        follow(cb, _Clients(logs), "us-east-1", "modelops-image-build:b1", "img:tag", runtime, 0)
    return recorder


def test_codebuild_log_lines_stream_as_progress() -> None:
    recorder = _follow(["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"])
    assert recorder.lines == ["line 0", "line 1", "line 2"]


def test_a_failed_codebuild_build_is_an_environment_failure_with_its_reason() -> None:
    from modelops.errors import EnvironmentFailedError

    phases = [{"phaseType": "BUILD", "phaseStatus": "FAILED",
               "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "docker push denied"}]}]
    with pytest.raises(EnvironmentFailedError) as caught:
        _follow(["IN_PROGRESS", "FAILED"], phases)
    assert caught.value.message == CODEBUILD_FAILED.format(build_id="modelops-image-build:b1", image="img:tag",
                                                           status="FAILED", detail="docker push denied")
