"""Records are frozen, JSON round-trip exactly, get their time from the ledger's clock, and keep
no secrets in their free text."""

from __future__ import annotations

import dataclasses
import json

import pytest

from modelops.ledger import (
    LOAD,
    SUCCEEDED,
    Approval,
    BuildRecord,
    DeploymentStep,
    Entry,
    ReleaseRecord,
    TestRecord,
    entry_from_dict,
    entry_from_json,
    redact,
)
from modelops.ledger.records import REDACTED

RECORDS: list[Entry] = [
    ReleaseRecord("iris", "iris-0123456789", "a" * 40, "sha256:c", "sha256:b", "ada@example.com", at=1.5),
    BuildRecord("iris", "iris-0123456789", "prod", "eu-west-1",
                "000000000000.dkr.ecr.eu-west-1.amazonaws.com/iris:0123456789", "s3://b/iris.tar.gz",
                "sha256:b", at=2.0),
    DeploymentStep("iris", "prod", "eu-west-1", "iris-0123456789", "canary-baking", "in_progress",
                   detail="50% on the new release", endpoint="iris-prod", previous_release="iris-aaaaaaaaaa", at=3),
    TestRecord("iris", "iris-0123456789", "prod", "eu-west-1", LOAD, True, "p95 12 ms",
               {"p50_ms": 5, "p95_ms": 12.5, "p99_ms": 20, "rps": 210.0, "error_rate": 0.0}, at=4.25),
    Approval("iris", "iris-0123456789", "prod", "bob@example.com", "looks good", at=5.0),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.KIND)
def test_every_record_round_trips_through_json(record: Entry) -> None:
    text = record.to_json()
    assert json.loads(text)["entry"] == record.KIND
    assert entry_from_json(text) == record
    assert entry_from_dict(json.loads(json.dumps(record.to_dict()))) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.KIND)
def test_records_are_frozen(record: Entry) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, "model", "other")  # noqa: B010 - what a caller trying to change it would do


def test_metrics_are_read_only_floats() -> None:
    record = RECORDS[3]
    assert isinstance(record, TestRecord)
    assert record.metrics["p50_ms"] == 5.0 and isinstance(record.metrics["p50_ms"], float)
    with pytest.raises(TypeError):
        record.metrics["p50_ms"] = 1.0  # type: ignore[index]


def test_unknown_fields_from_a_newer_writer_are_ignored() -> None:
    body = {**RECORDS[4].to_dict(), "signed_by": "future"}
    assert entry_from_dict(body) == RECORDS[4]


def test_unknown_kinds_and_statuses_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown ledger entry type"):
        entry_from_dict({"entry": "mystery"})
    with pytest.raises(ValueError, match="step status"):
        DeploymentStep("iris", "dev", "us-east-1", "iris-1", "x", "done")
    with pytest.raises(ValueError, match="test kind"):
        TestRecord("iris", "iris-1", "dev", "us-east-1", "smoke", True)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("endpoint update failed: password=hunter2", "password=", "hunter2"),
        ("HF_TOKEN: hf_abcdefghijklmnop in env", "HF_TOKEN", "hf_abcdefghijklmnop"),
        ('db_password = "s3cr3t value"', "db_password", "s3cr3t"),
        ("creds AKIAIOSFODNN7EXAMPLE leaked", "creds", "AKIAIOSFODNN7EXAMPLE"),
        ("apiKey=abc123 region=eu-west-1", "region=eu-west-1", "abc123"),
        ("url: https://b.s3.amazonaws.com/m.tar.gz?X-Amz-Signature=f00d&x=1", "m.tar.gz?X-Amz-Signature=", "f00d"),
        ("pulling https://deploy:pa55word@registry.example.com/iris", "https://deploy:", "pa55word"),
        ('input {"inputs": ["hi"], "api_key": "sk-live-123", \'token\': \'t0k\'}', '"inputs": ["hi"]', "sk-live-123"),
        ('input {"inputs": ["hi"], "api_key": "sk-live-123", \'token\': \'t0k\'}', '"api_key"', "t0k"),
    ],
)
def test_free_text_is_redacted(text: str, kept: str, gone: str) -> None:
    assert gone not in redact(text) and kept in redact(text) and REDACTED in redact(text)
    step = DeploymentStep("iris", "dev", "us-east-1", "iris-1", "failed", "failed", detail=text)
    approval = Approval("iris", "iris-1", "prod", "bob", comment=text)
    test = TestRecord("iris", "iris-1", "dev", "us-east-1", "regression", False, summary=text)
    assert gone not in step.to_json() + approval.to_json() + test.to_json()


@pytest.mark.parametrize("text", [
    "canary baking: 50% on iris-0123456789, p99 12 ms, tokenizer loaded",
    "max_tokens=512 tokenizer: fast, token_count: 7, model_data_url: s3://b/iris.tar.gz",
    "alarm modelops-iris-prod-5xx-rate: ALARM (error rate 0.31 > 0.05)",
])
def test_plain_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_build_urls_lose_their_secrets() -> None:
    build = BuildRecord("iris", "iris-1", "dev", "us-east-1", "img", "https://b/m.tar.gz?X-Amz-Security-Token=zz", "d")
    assert "zz" not in build.to_json() and build.model_data_url.endswith(REDACTED)


def test_a_step_knows_whether_it_is_terminal() -> None:
    assert DeploymentStep("m", "dev", "r", "m-1", "done", SUCCEEDED).is_terminal
    assert isinstance(RECORDS[2], DeploymentStep) and not RECORDS[2].is_terminal
