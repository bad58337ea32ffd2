"""The shipped data agrees with sagemaker-core's (read as data files; validate never imports it), and
the rules' building blocks behave."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from modelops.config import catalog
from modelops.policy.security import secret_kind


def _sagemaker_data(name: str) -> dict:
    spec = find_spec("sagemaker")
    assert spec is not None and spec.submodule_search_locations
    base = Path(next(iter(spec.submodule_search_locations))) / "core" / "image_uri_config"
    return json.loads((base / name).read_text())


def test_gpu_figures_agree_with_sagemaker_core() -> None:
    theirs = _sagemaker_data("instance_gpu_info.json")["us-east-1"]
    compared = 0
    for name in catalog.instance_type_names():
        if name in theirs:
            ours = catalog.instance_type(name)
            assert ours is not None
            assert (ours.gpus, ours.gpu_memory_mib) == (theirs[name]["Count"], theirs[name]["TotalGpuMemoryInMiB"]), name
            compared += 1
    assert compared >= 15


def test_dlc_registries_and_versions_agree_with_sagemaker_core() -> None:
    lmi = _sagemaker_data("djl-lmi.json")["versions"]
    accounts = catalog.dlc_accounts()
    assert set(lmi["0.31.0"]["registries"].values()) <= accounts
    sklearn = _sagemaker_data("sklearn.json")["inference"]["versions"]
    assert set(sklearn) == set(catalog.frameworks()["sklearn"].versions)


@pytest.mark.slow
def test_dlc_availability_is_what_sagemaker_core_resolves() -> None:
    """validate's table of which DLC exists where (it may not import sagemaker-core) is exactly what
    build's resolver gets from sagemaker-core: regenerate it after upgrading sagemaker-core with
    modelops.build.dlc.availability_table()."""
    from modelops.build.dlc import availability_table

    shipped = json.loads((Path(catalog.__file__).parent / "data" / "dlc_availability.json").read_text())
    fresh = availability_table()
    assert {k: shipped[k] for k in fresh} == fresh
    assert catalog.dlc_availability("sklearn", "1.2-1", "gpu") == fresh["images"]["sklearn"]["1.2-1"]["gpu"][""]
    assert "us-east-1" in catalog.dlc_availability("sklearn", "1.2-1", "cpu", "py3")  # type: ignore[operator]


def test_instance_type_did_you_mean() -> None:
    assert catalog.closest_instance_type("ml.g5.12xl") == "ml.g5.12xlarge"
    g5 = catalog.instance_type("ml.g5.12xlarge")
    assert g5 is not None and g5.gpus == 4 and g5.memory_per_gpu_gib == 24


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("KEY", "AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("CERT", "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "a private key"),
        ("X", "ghp_" + "a" * 36, "a GitHub token"),
        ("DB_URL", "postgres://app:s3cret@db:5432/x", "a URL with a password"),
        ("DB_PASSWORD", "hunter2", "a password or token"),
        ("API_KEY", "abc123xyz", "a password or token"),
        ("DB_PASSWORD", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db", None),
        ("AUTH_ENABLED", "true", None),
        ("TOKEN_LIMIT", "512", None),
        ("MODEL_NAME", "iris", None),
        ("TOKENIZERS_PATH", "/opt/ml/tokenizer", None),
        ("PASSTHROUGH_MODE", "strict", None),
        ("DBPASSWORD", "x1y2z3", "a password or token"),
        ("HF_TOKEN", "abcdef", "a password or token"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "a password or token"),
    ],
)
def test_secret_detection(name: str, value: str, kind: str | None) -> None:
    assert secret_kind(name, value) == kind
