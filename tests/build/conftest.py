"""Fixtures of the build tests: repositories with an aws environment, fake AWS credentials for moto,
EC signing keys, and a recording `docker` executable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import commit_all, init_repo

# An aws environment whose builder is docker; appended to the example environments.
AWS_ENVIRONMENT = """
  aws-dev:
    cloud: aws
    account: "123456789012"
    regions: [us-east-1, eu-west-1]
    builder: {builder}
    approval: {{required: false}}
    rollout:
      strategy: all_at_once
      wait_interval_seconds: 0
      max_execution_timeout_seconds: 600
    security:
      kms_key: "arn:aws:kms:{{region}}:{{account}}:alias/modelops-dev"
"""

# A `docker` that records each call (argv, one JSON line) and what arrived on stdin, and answers
# like Docker would. DOCKER_ENGINE=down makes `docker info` fail as with no engine.
RECORDING_DOCKER = """#!{python}
import json, os, sys
log = os.environ["DOCKER_LOG"]
data = sys.stdin.read() if not sys.stdin.isatty() and sys.argv[1:2] == ["login"] else ""
with open(log, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "stdin": data}}) + "\\n")
if sys.argv[1:2] == ["info"] and os.environ.get("DOCKER_ENGINE") == "down":
    print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    sys.exit(1)
if sys.argv[1:2] == ["info"]:
    print("27.0.3")
elif sys.argv[1:2] == ["login"]:
    print("Login Succeeded")
else:
    print("#1 [internal] load build definition from Dockerfile")
    print("#9 pushing layers done")
"""


def add_aws_environment(repo: Path, builder: str = "docker") -> Path:
    """Append the aws-dev environment (and its place in the promotion order) and commit."""
    envs = repo / "pipelines/environments.yaml"
    text = envs.read_text()
    text = text.replace("promotion: [dev, staging, prod]", "promotion: [aws-dev, dev, staging, prod]")
    text = text.replace("environments:\n", "environments:" + AWS_ENVIRONMENT.format(builder=builder), 1)
    envs.write_text(text)
    commit_all(repo, "an aws environment")
    return repo


@pytest.fixture
def aws_repo(tmp_path: Path) -> Path:
    return add_aws_environment(init_repo(tmp_path / "repo"))


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS: fake credentials, every service mocked for the test."""
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        # The policy's artifact buckets exist in a real account (modelops does not create them).
        for region in ("us-east-1", "eu-west-1"):
            kwargs: dict = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            boto3.client("s3", region_name=region).create_bucket(
                Bucket=f"modelops-model-artifacts-123456789012-{region}", **kwargs)
        yield


@pytest.fixture
def recording_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a recording `docker` first on PATH; returns the log file (one JSON line per call)."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text(RECORDING_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "docker.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DOCKER_LOG", str(log))
    return log


def ec_key_pair(folder: Path) -> tuple[Path, Path]:
    """A fresh P-256 key pair as PEM files (private, public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / "signing.pem"
    public = folder / "signing.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def write_archive(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A well-formed model.tar.gz holding ``members`` in this order, as someone rewriting a cached
    archive would make it (so only a check of its content can tell)."""
    import io
    import tarfile

    tmp = path.with_name(path.name + ".forging")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return path
