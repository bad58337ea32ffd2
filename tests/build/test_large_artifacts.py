"""Large artifacts: validate warns past the policy's size limit, and build shows its progress while it
hashes, packs and stores them (a 1.5 GB artifact used to validate silently, then build said nothing
for 35 s)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.helpers import commit_all, run_cli

BIG = 40 * 1000 * 1000  # over the 32 MiB under which artifacts hash in a blink and show no bar


def _add_big_artifact(repo: Path) -> None:
    data = os.urandom(BIG)
    (repo / "models/iris/artifacts/extra.bin").write_bytes(data)
    model = repo / "models/iris/model.yaml"
    model.write_text(model.read_text().replace(
        "      parameters: 15\n",
        "      parameters: 15\n"
        f"    - path: artifacts/extra.bin\n      sha256: {hashlib.sha256(data).hexdigest()}\n", 1))


def test_validate_warns_when_artifacts_exceed_the_policy_limit(repo: Path) -> None:
    _add_big_artifact(repo)
    policy = repo / "pipelines/policy.yaml"
    policy.write_text(policy.read_text() + "artifact_max_size_mb: 30\n")
    commit_all(repo, "a 40 MB artifact, a 30 MB limit")
    result = run_cli("validate", "models/iris", "--no-bandit", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result  # a warning: the check passes
    [finding] = [f for f in result.json()["findings"] if f["rule"] == "capacity.artifact-size"]
    assert finding["severity"] == "warning" and finding["file"] == "models/iris/model.yaml", finding
    assert finding["message"].startswith("the artifact files of iris total 40 MB, more than the policy's 30 MB"), finding
    assert finding["path"] == "$.spec.artifacts[1].path", finding  # the largest one

    policy.write_text(policy.read_text().replace("artifact_max_size_mb: 30\n", ""))
    quiet = run_cli("validate", "models/iris", "--no-bandit", "--output", "json", cwd=repo)
    assert [f for f in quiet.json()["findings"] if f["rule"] == "capacity.artifact-size"] == []  # default 1024 MB


def test_build_shows_progress_while_hashing_packing_and_storing_large_artifacts(repo: Path) -> None:
    _add_big_artifact(repo)
    commit_all(repo, "a 40 MB artifact")
    result = run_cli("build", "models/iris", cwd=repo)
    assert result.exit_code == 0, result
    # Not a terminal: each task is a line as it starts (a terminal gets bars).
    for line in ("hashing the artifacts of iris (40 MB) ...", "packing the model data of iris (40 MB) ...",
                 "checking the model data of iris (40 MB) ...", "us-east-1: storing the model data ("):
        assert line in result.stderr, result
