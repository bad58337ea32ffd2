"""A running local cloud for tests: a real server on a free port in a temp data dir.

Use the ``local_cloud`` fixture (one server per test module) and drive it with stock boto3 clients::

    def test_something(local_cloud):
        uri = local_cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
        sm = local_cloud.client("sagemaker", "eu-west-1")
        local_cloud.create_endpoint("my-endpoint", uri, region="eu-west-1")
        local_cloud.wait_for("my-endpoint", "InService", region="eu-west-1")

``start_local_cloud(data_dir, env=...)`` starts one with extra server environment (e.g.
``MODELOPS_LOCAL_CONTAINER_TIMEOUT``) for tests that need their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from modelops.localcloud import Timing

ROLE = "arn:aws:iam::000000000000:role/modelops-local"

# The serving half of an echo model (inference toolkit contract): its predictions are its input.
# Handlers that differ only in how the model loads add their own model_fn to it.
ECHO_FUNCTIONS = '''
def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return prediction
'''

# A model whose predictions are its input.
ECHO_HANDLER = '''
def model_fn(model_dir):
    return None
''' + ECHO_FUNCTIONS

# A model that answers every request with HTTP 500.
FAILING_HANDLER = '''
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    raise RuntimeError("model exploded on purpose")

def output_fn(prediction, accept):
    return prediction
'''

# A model whose start-up crashes (the endpoint must fail, quoting this).
CRASHING_HANDLER = '''
def model_fn(model_dir):
    raise SystemExit("cannot load the weights: checksum mismatch on purpose")
'''

# DJL Serving's Python engine contract: handle(inputs) in model.py.
DJL_HANDLER = '''
from djl_python import Input, Output

def handle(inputs: Input):
    if inputs.is_empty():
        return None
    data = inputs.get_as_json()
    return Output().add_as_json({"djl": data})
'''


@dataclass
class LocalCloud:
    """A running local cloud and helpers to drive it with stock boto3 clients."""

    url: str
    data_dir: Path
    pid: int

    def client(self, service: str, region: str = "us-east-1", **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service, region_name=region, endpoint_url=self.url, aws_access_key_id="test",
            aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, **config))

    def add_test_image(self, name: str, files: Mapping[str, str], *, contract: str = "inference-toolkit",
                       environment: Mapping[str, str] | None = None) -> str:
        """Build a tiny image from ``files`` (written to a code dir); returns its ECR-shaped URI."""
        from modelops.localcloud import add_image

        digest = "sha256:" + hashlib.sha256(json.dumps([name, sorted(files.items()), contract]).encode()).hexdigest()
        code = self.data_dir.parent / f"code-{name}-{digest[7:19]}"
        for rel, text in files.items():
            (code / rel).parent.mkdir(parents=True, exist_ok=True)
            (code / rel).write_text(text)
        env = dict(environment or ({"SAGEMAKER_PROGRAM": "inference.py"} if contract == "inference-toolkit" else {}))
        uri = f"000000000000.dkr.ecr.us-east-1.amazonaws.com/{name}:{digest[7:19]}"
        add_image(self.data_dir, digest=digest, image_uris=[uri], code_dir=code, requirements=None,
                  contract=contract, environment=env)
        return uri

    def put_model_data(self, url: str, files: Mapping[str, str]) -> str:
        """Store a model.tar.gz holding ``files`` at ``url`` (``s3://bucket/key.tar.gz``)."""
        from modelops.localcloud import put_model_data

        folder = self.data_dir.parent / f"model-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for rel, text in files.items():
                (folder / rel).write_text(text)
                tar.add(folder / rel, arcname=rel)
        return put_model_data(self.data_dir, url, archive)

    def create_model(self, name: str, image_uri: str, *, region: str = "us-east-1",
                     model_data_url: str | None = None, environment: Mapping[str, str] | None = None) -> None:
        container: dict[str, Any] = {"Image": image_uri}
        if model_data_url:
            container["ModelDataUrl"] = model_data_url
        if environment:
            container["Environment"] = dict(environment)
        self.client("sagemaker", region).create_model(ModelName=name, PrimaryContainer=container,
                                                      ExecutionRoleArn=ROLE)

    def create_config(self, name: str, variants: Mapping[str, str] | list[dict[str, Any]], *,
                      region: str = "us-east-1", instances: int = 1) -> None:
        """``variants``: {variant name: model name}, or the ProductionVariants list itself."""
        if isinstance(variants, Mapping):
            variants = [{"VariantName": v, "ModelName": m, "InstanceType": "ml.m5.large",
                         "InitialInstanceCount": instances, "InitialVariantWeight": 1.0}
                        for v, m in variants.items()]
        self.client("sagemaker", region).create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)

    def create_endpoint(self, name: str, image_uri: str, *, region: str = "us-east-1", instances: int = 1,
                        variant: str = "AllTraffic", wait: bool = True) -> dict[str, Any]:
        """Model ``<name>-m1``, config ``<name>-c1`` and the endpoint, waited InService by default."""
        self.create_model(f"{name}-m1", image_uri, region=region)
        self.create_config(f"{name}-c1", {variant: f"{name}-m1"}, region=region, instances=instances)
        self.client("sagemaker", region).create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c1")
        return self.wait_for(name, "InService", region=region) if wait else {}

    def wait_for(self, endpoint: str, *statuses: str, region: str = "us-east-1", timeout: float = 90,
                 seen: list[str] | None = None) -> dict[str, Any]:
        """Poll DescribeEndpoint until its status is one of ``statuses``; ``seen`` collects the
        statuses on the way."""
        sm = self.client("sagemaker", region)
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
            if seen is not None and (not seen or seen[-1] != described["EndpointStatus"]):
                seen.append(described["EndpointStatus"])
            if described["EndpointStatus"] in statuses:
                return described
            if described["EndpointStatus"] in ("Failed", "UpdateRollbackFailed"):
                raise AssertionError(f"{endpoint} is {described['EndpointStatus']}: {described.get('FailureReason')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{endpoint} still {described['EndpointStatus']} after {timeout} s: {described}")
            time.sleep(0.1)


def container_pids(data_dir: Path) -> list[int]:
    """The pids of the model containers running from ``data_dir`` (its instances' processes)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(data_dir).encode() in cmdline and b"serve.py" in cmdline:
                pids.append(int(proc.name))
    return pids


def start_local_cloud(data_dir: Path, env: Mapping[str, str] | None = None, timing: Timing | None = None) -> LocalCloud:
    """Start a local cloud in ``data_dir`` (the server inherits this process's environment plus ``env``;
    ``timing``: how long its phases take, ``modelops.localcloud.timing``)."""
    from modelops.localcloud import ensure_running

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        info = ensure_running(data_dir, timing=timing)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return LocalCloud(url=info.url, data_dir=info.data_dir, pid=info.pid)


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A local cloud shared by the tests of one module (its own data dir), stopped afterwards."""
    from modelops.localcloud import stop

    cloud = start_local_cloud(tmp_path_factory.mktemp("localcloud") / "data")
    try:
        yield cloud
    finally:
        stop(cloud.data_dir)
