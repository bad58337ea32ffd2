"""The whole pipeline on the real local cloud: dev -> staging -> three prod regions in two waves with a
canary; a release answering 500s rolled back automatically; a killed deploy converging on re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import EXPLODING_PREDICT
from tests.helpers import commit_all, run_cli

pytestmark = pytest.mark.slow

REVIEWER = {"MODELOPS_USER": "reviewer@example.com"}  # not the commits' author (ada@example.com)
PROD_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def _ledger(repo: Path, env_name: str) -> Any:
    from modelops.clients import clients_for
    from modelops.config import Workspace, load_environments
    from modelops.ledger import open_ledger
    from modelops.runtime import Runtime

    runtime = Runtime.from_environment()
    env = load_environments(Workspace.discover(repo)).get(env_name)
    return open_ledger(clients_for(env, runtime), runtime)


def given_tests_passed(repo: Path, release: str, env_name: str) -> None:
    """Given: the release's tests passed in ``env_name`` (as `modelops test` would have recorded)."""
    from modelops.ledger.records import LOAD, REGRESSION, TestRecord

    ledger = _ledger(repo, env_name)
    try:
        for kind in (REGRESSION, LOAD):
            ledger.record_test(TestRecord(model="iris", release=release, environment=env_name, region="us-east-1",
                                          kind=kind, passed=True, summary="given"))
    finally:
        ledger.close()


def prod_rows(repo: Path) -> dict[str, dict[str, Any]]:
    result = run_cli("status", "iris", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return {row["region"]: row for row in result.json()["endpoints"] if row["env"] == "prod"}


def _in_prod_already(repo: Path) -> str:
    """Given: an earlier release serves prod (created there: a first deploy has no canary to run)."""
    dev = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert dev.exit_code == 0, dev
    earlier = str(dev.json()["release"])
    given_tests_passed(repo, earlier, "staging")
    assert run_cli("approve", earlier, "--env", "prod", cwd=repo, env=REVIEWER).exit_code == 0
    created = run_cli("deploy", "models/iris", "--env", "prod", "--output", "json", cwd=repo)
    assert created.exit_code == 0, created
    return earlier


def test_a_release_goes_through_prod_and_a_failing_one_rolls_back_in_the_first_wave(cloud_repo: Path) -> None:
    earlier = _in_prod_already(cloud_repo)
    inference = cloud_repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + "\n# the next release\n")
    commit_all(cloud_repo, "the next release")

    # When: a release goes through dev and staging (tested in dev on the way) and is approved for prod...
    first = run_cli("deploy", "models/iris", "--through", "staging", "--output", "json", cwd=cloud_repo)
    assert first.exit_code == 0, first
    release = first.json()["release"]
    assert [(d["env"], d["status"]) for d in first.json()["deployments"]] == [
        ("dev", "succeeded"), ("staging", "succeeded")]

    # --through prod without an approval: dev and staging converge (nothing to do), staging's tests run
    # and pass, and the prod gate stops it before anything in prod is touched.
    unapproved = run_cli("deploy", "models/iris", "--through", "prod", cwd=cloud_repo)
    assert unapproved.exit_code == 1, unapproved
    assert f"release {release} needs an approval for prod" in unapproved.stderr
    assert {r["release"] for r in prod_rows(cloud_repo).values()} == {earlier}

    # The author is no release reviewer (pipelines/access.yaml); four-eyes would refuse her too
    # (tests/deploy/test_access.py makes her one to show it).
    self_approval = run_cli("approve", release, "--env", "prod", cwd=cloud_repo, env={"MODELOPS_USER": "ada@example.com"})
    assert self_approval.exit_code == 1, self_approval
    assert "access: ada@example.com ($MODELOPS_USER, unauthenticated) may not approve in prod" in self_approval.stderr

    approved = run_cli("approve", release, "--env", "prod", "--comment", "looks good", cwd=cloud_repo, env=REVIEWER)
    assert approved.exit_code == 0, approved

    # ...then --through prod converges dev and staging (already there; staging tested) and rolls out prod.
    prod = run_cli("deploy", "models/iris", "--through", "prod", "--output", "json", cwd=cloud_repo)
    assert prod.exit_code == 0, prod
    doc = prod.json()
    assert doc["result"] == "succeeded"
    assert [(d["env"], d["region"], d["status"]) for d in doc["deployments"]] == [
        ("dev", "us-east-1", "succeeded"), ("staging", "us-east-1", "succeeded"),
        *[("prod", r, "succeeded") for r in PROD_REGIONS]]
    assert "prod/us-east-1" in prod.stderr and "prod/ap-southeast-2" in prod.stderr  # rollout steps shown

    for d in doc["deployments"]:  # the issue's --output json shape
        assert {"env", "region", "endpoint", "status"} <= set(d) and d["endpoint"] == f"iris-{d['env']}"

    # Two waves: wave 2's regions start after wave 1 succeeded, and run side by side; every prod region
    # rolled out by a canary (an update whose green fleet took part of the traffic first).
    steps = {r: _steps(cloud_repo, r, release) for r in PROD_REGIONS}
    at = {r: {s.step: s.at for s in steps[r]} for r in PROD_REGIONS}
    assert at["us-east-1"]["succeeded"] <= min(at["eu-west-1"]["started"], at["ap-southeast-2"]["started"])
    assert at["eu-west-1"]["started"] < at["ap-southeast-2"]["succeeded"]
    assert at["ap-southeast-2"]["started"] < at["eu-west-1"]["succeeded"]
    for region in PROD_REGIONS:
        assert "update-endpoint" in at[region], steps[region]
        assert any(s.step == "observed" and "green" in s.detail and "weight 0.5 of" in s.detail
                   for s in steps[region]), [(s.step, s.detail) for s in steps[region]]

    rows = prod_rows(cloud_repo)
    assert sorted(rows) == sorted(PROD_REGIONS)
    assert {r["release"] for r in rows.values()} == {release}
    assert all(r["status"] == "InService" and r["weights"] for r in rows.values())
    for row in rows.values():  # the status --output json shape
        assert {"env", "region", "endpoint", "release", "weights"} <= set(row)
        assert {"weight", "desired_weight"} <= set(row["weights"][0])

    history = run_cli("history", "iris", "--output", "json", cwd=cloud_repo)
    kinds = [(e["entry"], e.get("environment"), e.get("status"), e.get("release"))
             for e in history.json()["entries"]]
    assert ("approval", "prod", None, release) in kinds
    assert sum(1 for k in kinds if k == ("step", "prod", "succeeded", release)) == 3
    [approval] = [e for e in history.json()["entries"] if e["entry"] == "approval" and e["release"] == release]
    assert (approval["release"], approval["by"], approval["comment"]) == (release, "reviewer@example.com", "looks good")
    assert (approval["source"], approval["authenticated"]) == ("env", False)
    started = [e for e in history.json()["entries"] if e["entry"] == "step" and e["step"] == "started"
               and e["release"] == release and e["environment"] == "prod"]
    assert len(started) == 3 and all(  # who rolled it out, and where that identity came from
        e["detail"].endswith(" by tester@example.com ($MODELOPS_USER, unauthenticated)") for e in started), started
    [built] = [e for e in history.json()["entries"] if e["entry"] == "release" and e["release"] == release]
    assert (built["author"], built["created_by"], built["source"]) == ("ada@example.com", "tester@example.com", "env")
    text = run_cli("history", "iris", cwd=cloud_repo)
    assert text.exit_code == 0 and "history of iris" in text.stderr and "approval" in text.stderr, text

    # Given: a second release whose handler answers 500s, built (dev) and, for this scenario, tested in
    # staging and approved (so the canary in prod is what catches it).
    inference.write_text(inference.read_text() + EXPLODING_PREDICT)
    commit_all(cloud_repo, "a release that answers 500s")
    dev = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert dev.exit_code == 0, dev
    bad = dev.json()["release"]
    assert bad != release
    given_tests_passed(cloud_repo, bad, "staging")
    assert run_cli("approve", bad, "--env", "prod", cwd=cloud_repo, env=REVIEWER).exit_code == 0

    # When: it is deployed to prod
    rollout = run_cli("deploy", "iris", "--env", "prod", "--output", "json", cwd=cloud_repo)

    # Then: the canary in the first wave trips the 5xx alarm, the update rolls back, the second wave is
    # untouched, the command exits 1 and says why.
    assert rollout.exit_code == 1, rollout
    doc = rollout.json()
    assert doc["result"] == "rolled_back"
    by_region = {d["region"]: d for d in doc["deployments"]}
    assert by_region["us-east-1"]["status"] == "rolled_back"
    assert "5xx-rate" in by_region["us-east-1"]["detail"]
    # ...with the figures that tripped the alarm (CloudWatch's datapoints against the threshold).
    assert "Threshold Crossed: " in by_region["us-east-1"]["detail"] and "threshold (0.05)" in \
        by_region["us-east-1"]["detail"], by_region["us-east-1"]["detail"]
    assert by_region["eu-west-1"]["status"] == by_region["ap-southeast-2"]["status"] == "skipped"
    assert "rolled back in prod/us-east-1" in doc["message"] and "not touched" in doc["message"]
    assert {r["release"] for r in prod_rows(cloud_repo).values()} == {release}
    ledger = _ledger(cloud_repo, "prod")
    try:
        assert ledger.current("iris", "prod", "us-east-1").release == release
        assert ledger.steps("iris", "prod", "eu-west-1", release=bad) == ()
    finally:
        ledger.close()


def _steps(repo: Path, region: str, release: str) -> list[Any]:
    ledger = _ledger(repo, "prod")
    try:
        return list(ledger.steps("iris", "prod", region, release=release))
    finally:
        ledger.close()


def test_a_deploy_killed_mid_rollout_converges_when_run_again(cloud_repo: Path) -> None:
    # Given: a release built in dev, tested in staging and approved for prod
    dev = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert dev.exit_code == 0, dev
    release = dev.json()["release"]
    given_tests_passed(cloud_repo, release, "staging")
    assert run_cli("approve", release, "--env", "prod", cwd=cloud_repo, env=REVIEWER).exit_code == 0

    # When: the deploy to prod is killed (SIGKILL) once the first wave's endpoint is being created...
    proc = subprocess.Popen([sys.executable, "-m", "modelops", "deploy", "iris", "--env", "prod"], cwd=cloud_repo,
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(s.step == "create-endpoint" for s in _steps(cloud_repo, "us-east-1", release)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the deploy finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(s.is_terminal for s in _steps(cloud_repo, "us-east-1", release))

    # ...then the same command converges: every region serves the release, nothing was made twice and no
    # ledger entry of the first run is lost or repeated.
    again = run_cli("deploy", "iris", "--env", "prod", "--output", "json", cwd=cloud_repo)
    assert again.exit_code == 0, again
    assert [d["status"] for d in again.json()["deployments"]] == ["succeeded"] * 3
    assert {r["release"] for r in prod_rows(cloud_repo).values()} == {release}

    import boto3

    from modelops import localcloud

    info = localcloud.status(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]))
    assert info is not None
    for region in PROD_REGIONS:
        sm = boto3.client("sagemaker", region_name=region, endpoint_url=info.url, aws_access_key_id="x",
                          aws_secret_access_key="x")
        # (dev and staging share us-east-1 on the local cloud: only prod's resources are counted)
        assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if "-prod" in e["EndpointName"]] == [
            "iris-prod"]
        assert len([m for m in sm.list_models()["Models"] if m["ModelName"].startswith("iris-prod")]) == 1
    steps = [s.step for s in _steps(cloud_repo, "us-east-1", release)]
    for once in ("started", "create-model", "create-endpoint-config", "create-endpoint", "succeeded"):
        assert steps.count(once) == 1, steps
