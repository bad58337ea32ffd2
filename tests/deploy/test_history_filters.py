"""`modelops history` filters (--env, --region, --release, --since, --limit, --kind) on a real ledger,
its JSON document the same shape as unfiltered; bad filter values are one-line errors (exit 2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelops.ledger import sqlite_ledger
from modelops.ledger.records import (
    ABORT,
    IN_PROGRESS,
    ROLLED_BACK,
    SUCCEEDED,
    BuildRecord,
    DeploymentStep,
    ReleaseBlock,
    ReleaseRecord,
    RolloutIntent,
)
from modelops.runtime import Runtime
from tests.helpers import run_cli

HOUR = 3600.0


@pytest.fixture
def kinds_of_history(repo: Path) -> Path:
    """Given: iris-1 built 5 h ago and serving dev; iris-2 rolled out in prod an hour ago, aborted and blocked."""
    now = time.time()
    ledger = sqlite_ledger(Runtime.from_environment())
    for entry in (
        ReleaseRecord("iris", "iris-1", "c" * 40, "cfg", "bld", "ada@example.com", at=now - 5 * HOUR),
        BuildRecord("iris", "iris-1", "dev", "us-east-1", "img:1", "s3://b/1", "d1", at=now - 5 * HOUR),
        DeploymentStep("iris", "dev", "us-east-1", "iris-1", "succeeded", SUCCEEDED, at=now - 4 * HOUR),
        ReleaseRecord("iris", "iris-2", "e" * 40, "cfg", "bld", "ada@example.com", at=now - 2 * HOUR),
        DeploymentStep("iris", "prod", "eu-west-1", "iris-2", "update-endpoint", IN_PROGRESS, at=now - HOUR),
        RolloutIntent("iris", "prod", "eu-west-1", "iris-2", ABORT, "bob@example.com", "bad answers", at=now - 0.9 * HOUR),
        DeploymentStep("iris", "prod", "eu-west-1", "iris-2", "rolled_back", ROLLED_BACK, at=now - 0.8 * HOUR),
        ReleaseBlock("iris", "iris-2", "prod", True, "bob@example.com", "aborted", region="eu-west-1", at=now - 0.8 * HOUR),
    ):
        ledger.append(entry)
    ledger.close()
    return repo


def entries(repo: Path, *args: str) -> list[tuple[str, str | None, str | None]]:
    result = run_cli("history", "iris", *args, "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    doc = result.json()
    assert set(doc) == {"model", "entries"} and doc["model"] == "iris", doc  # the unfiltered shape
    return [(e["entry"], e.get("release"), e.get("region")) for e in doc["entries"]]


def test_each_filter_narrows_the_history_and_they_combine(kinds_of_history: Path) -> None:
    repo = kinds_of_history
    assert len(entries(repo)) == 8
    # Release records name no environment or region: they stay under --env and --region, as in the ledger.
    assert entries(repo, "--env", "dev") == [("release", "iris-1", None), ("build", "iris-1", "us-east-1"),
                                             ("step", "iris-1", "us-east-1"), ("release", "iris-2", None)]
    assert [e[0] for e in entries(repo, "--env", "prod", "--region", "eu-west-1", "--kind", "step")] == ["step", "step"]
    assert {e[1] for e in entries(repo, "--release", "iris-2")} == {"iris-2"}
    assert [e[0] for e in entries(repo, "--since", "90m")] == ["step", "intent", "step", "block"]
    assert [e[0] for e in entries(repo, "--kind", "block", "--kind", "intent")] == ["intent", "block"]
    assert entries(repo, "--limit", "2") == [("step", "iris-2", "eu-west-1"), ("block", "iris-2", "eu-west-1")]
    assert entries(repo, "--since", "2000-01-01", "--kind", "release", "--limit", "1") == [("release", "iris-2", None)]
    text = run_cli("history", "iris", "--kind", "block", "--kind", "intent", cwd=repo)
    assert "abort asked by bob@example.com: bad answers" in text.stderr, text
    assert "blocked by bob@example.com: aborted" in text.stderr, text


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "yesterday"), "--since yesterday: not a duration (45s, 30m, 2h, 7d, 2w) or a UTC date or time"),
    (("--kind", "judgement"), "--kind judgement: not a kind of ledger entry (release, build, step, test, approval, "
                              "block, intent, judgment)"),
    (("--limit", "0"), "--limit 0: give a number of entries above 0"),
    (("--env", "qa"), "unknown environment"),
])
def test_a_bad_filter_is_one_line_exit_2(kinds_of_history: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli("history", "iris", *args, "--output", "json", cwd=kinds_of_history)
    assert result.exit_code == 2, result
    assert message in result.json()["error"]["message"], result
