"""An approval shows the answer diff of a release whose model declares its answers change
(``spec.answers.expect_change``), on the real local cloud with real containers and a real git repo:
before any judgment it says plainly that none exists; after a judged canary in dev (the diff reported,
not gated) ``approve --show``, ``status`` (the release awaiting its approval) and ``approve`` show the
agreement figures and the worst disagreements with their inputs, against the release serving prod,
read from the judgment recorded in the ledger."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scripts.demo_wrong_answers import WRONG_ANSWERS  # ~1 input in 20 answered wrongly, fast
from tests.deploy.test_pipeline_e2e import REVIEWER, given_tests_passed
from tests.helpers import commit_all, judged_iris_repo, run_cli

pytestmark = pytest.mark.slow

PROD = """\
  prod:
    cloud: local
    regions: [us-east-1]
    approval: {required: true, four_eyes: true}
    rollout: {strategy: all_at_once, wait_interval_seconds: 0, max_execution_timeout_seconds: 600}
    security:
      kms_key: "arn:aws:kms:{region}:{account}:alias/modelops-prod"
      vpc:
        us-east-1: {subnets: [subnet-0a1b2c3d4e5f61001, subnet-0a1b2c3d4e5f61002], security_groups: [sg-0a1b2c3d4e5f61001]}
"""


@pytest.fixture
def repo(tmp_path: Path):
    from modelops import localcloud

    repo = judged_iris_repo(tmp_path / "repo", steps="[100]", more=PROD, promotion="[dev, prod]")
    try:
        yield repo
    finally:
        localcloud.stop(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]))


def test_an_approval_shows_the_answer_diff_of_a_release_expected_to_change(repo: Path) -> None:
    # Given: release A serves dev and prod.
    first = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert first.exit_code == 0, first
    serving = first.json()["release"]
    given_tests_passed(repo, serving, "dev")
    assert run_cli("approve", serving, "--env", "prod", cwd=repo, env=REVIEWER).exit_code == 0
    assert run_cli("deploy", "models/iris", "--env", "prod", cwd=repo).exit_code == 0

    # A new model version: it declares its answers change, and they do (about 1 input in 20).
    model = repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace("expect_change: false", "expect_change: true"))
    inference = repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + WRONG_ANSWERS)
    commit_all(repo, "iris v2: answers expected to change")
    built = run_cli("build", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert built.exit_code == 0, built
    release = built.json()["release"]

    # Before any judgment, the approval says so plainly.
    early = run_cli("approve", release, "--env", "prod", "--show", cwd=repo)
    assert early.exit_code == 0, early
    assert (f"answers of {release} (spec.answers.expect_change: expected to change; the diff is reported, not "
            "gated): no judgment of this release yet: deploy it to dev with a judged canary first") in early.stderr
    assert "is not approved for prod by this" in early.stderr

    # The judged canary in dev reports the disagreements without failing on them.
    judged = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert judged.exit_code == 0, judged
    [step] = judged.json()["deployments"][0]["judgments"]
    agreement = next(v for v in step["verdicts"] if v["metric"] == "agreement")
    assert agreement["gated"] is False and agreement["candidate"] < 1.0 and step["worst"], step

    # approve --show (nothing recorded) and --output json: the diff against what serves prod.
    shown = run_cli("approve", release, "--env", "prod", "--show", "--output", "json", cwd=repo)
    assert shown.exit_code == 0, shown
    doc = shown.json()
    assert doc["shown_only"] is True and doc["recorded"] is False
    answers = doc["answers"]
    assert answers["expect_change"] is True and answers["serving"] == [serving] and answers["against_serving"]
    assert answers["judged_in"] == "dev/us-east-1" and answers["percent"] == 100
    assert answers["agreement"]["samples"] == agreement["samples"] and answers["agreement"]["gated"] is False
    assert answers["worst"] == step["worst"][:5]
    first_worst = answers["worst"][0]
    assert json.loads(first_worst["request"]), first_worst  # the input, as sent
    assert "label" in first_worst["detail"] or "probabilities" in first_worst["detail"], first_worst

    # status shows the release awaiting its approval, with the same diff, once its tests passed in dev.
    assert run_cli("status", "iris", "--output", "json", cwd=repo).json()["awaiting_approval"] == []
    given_tests_passed(repo, release, "dev")
    status = run_cli("status", "iris", "--output", "json", cwd=repo)
    assert status.exit_code == 0, status
    [waiting] = status.json()["awaiting_approval"]
    assert (waiting["release"], waiting["env"], waiting["tested_in"]) == (release, "prod", "dev")
    assert waiting["answers"]["agreement"] == answers["agreement"] and waiting["answers"]["worst"] == answers["worst"]
    text = run_cli("status", "iris", cwd=repo)
    assert (f"iris {release} awaits an approval for prod (tests passed in dev): modelops approve {release} "
            "--env prod") in text.stderr, text.stderr
    assert f"    {serving} serves prod: this is the diff the approval lets in" in text.stderr

    # The approval itself shows the same lines above who approved.
    approved = run_cli("approve", release, "--env", "prod", cwd=repo, env=REVIEWER)
    assert approved.exit_code == 0, approved
    lines = approved.stderr.splitlines()
    assert lines[0].startswith(f"answers of {release} (spec.answers.expect_change") and \
        f"judged in dev/us-east-1 at 100% of the traffic against {serving}" in lines[0], lines
    assert f"{serving} serves prod: this is the diff the approval lets in" in approved.stderr
    assert any(line.strip().startswith(f"agreement {agreement['candidate']:.1%} of ") and
               line.endswith("(reported, not gated)") for line in lines), lines
    assert any(line.strip().startswith("differs: ") and "; input " in line for line in lines), lines
    assert lines[-1] == f"{release} approved for prod by reviewer@example.com"
    assert run_cli("status", "iris", "--output", "json", cwd=repo).json()["awaiting_approval"] == []

    # The ledger holds the judgment with the rollout's steps; history shows it in one line.
    history = run_cli("history", "iris", "--env", "dev", cwd=repo)
    assert history.exit_code == 0, history
    assert any(" judgment " in line and "100%: judgment pass" in line for line in history.stderr.splitlines()), \
        history.stderr
