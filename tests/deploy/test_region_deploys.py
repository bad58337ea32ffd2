"""`deploy --env prod --region R` as CI runs it: one process per region, the regions of a wave in
parallel (per-region locks, nobody fails on a lock), and a region that rolls back taking the other
regions that already serve the release back with it (roll_back_completed_regions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import predict_exploding_once
from tests.deploy.test_pipeline_e2e import REVIEWER, given_tests_passed, prod_rows
from tests.helpers import commit_all, run_cli

pytestmark = pytest.mark.slow


def _release_in_dev_tested_and_approved(repo: Path) -> str:
    dev = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=repo)
    assert dev.exit_code == 0, dev
    release = str(dev.json()["release"])
    given_tests_passed(repo, release, "staging")
    assert run_cli("approve", release, "--env", "prod", cwd=repo, env=REVIEWER).exit_code == 0
    return release


def test_regions_deploy_one_per_process_and_a_rollback_takes_the_moved_regions_back(cloud_repo: Path,
                                                                                     tmp_path: Path) -> None:
    good = _release_in_dev_tested_and_approved(cloud_repo)

    # When: wave 1 deploys its one region, then wave 2's two regions run as two parallel processes
    first = run_cli("deploy", "models/iris", "--env", "prod", "--region", "us-east-1", "--output", "json",
                    cwd=cloud_repo)
    assert first.exit_code == 0, first
    assert [(d["region"], d["status"]) for d in first.json()["deployments"]] == [("us-east-1", "succeeded")]
    procs = {region: subprocess.Popen(
        [sys.executable, "-m", "modelops", "deploy", "models/iris", "--env", "prod", "--region", region,
         "--output", "json"], cwd=cloud_repo, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for region in ("eu-west-1", "ap-southeast-2")}
    done = {region: p.communicate(timeout=600) for region, p in procs.items()}

    # Then: both succeed (neither fails on a lock) and every region serves the release
    for region, (out, err) in done.items():
        assert procs[region].returncode == 0, err
        assert [(d["region"], d["status"]) for d in json.loads(out)["deployments"]] == [(region, "succeeded")]
    assert {r["release"] for r in prod_rows(cloud_repo).values()} == {good}

    # Given: a release that serves well in us-east-1 and answers 500s by the time it reaches eu-west-1
    sentinel = tmp_path / "explode-now"
    inference = cloud_repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + predict_exploding_once(sentinel))
    commit_all(cloud_repo, "a release that starts answering 500s")
    bad = _release_in_dev_tested_and_approved(cloud_repo)
    assert bad != good
    east = run_cli("deploy", "models/iris", "--env", "prod", "--region", "us-east-1", "--output", "json",
                   cwd=cloud_repo)
    assert east.exit_code == 0, east
    assert prod_rows(cloud_repo)["us-east-1"]["release"] == bad
    sentinel.write_text("")

    # When: wave 2 deploys eu-west-1
    west = run_cli("deploy", "models/iris", "--env", "prod", "--region", "eu-west-1", "--output", "json",
                   cwd=cloud_repo)

    # Then: eu-west-1 rolls back by its alarm, us-east-1 (moved before) is taken back to the good release,
    # ap-southeast-2 is not touched; the command exits 1 and says why
    assert west.exit_code == 1, west
    doc = west.json()
    assert doc["result"] == "rolled_back"
    by_region = {d["region"]: d for d in doc["deployments"]}
    assert sorted(by_region) == ["eu-west-1", "us-east-1"]
    assert by_region["eu-west-1"]["status"] == "rolled_back" and "5xx-rate" in by_region["eu-west-1"]["detail"]
    assert by_region["us-east-1"]["status"] == "rolled_back"
    assert by_region["us-east-1"]["serving"] == good
    assert "rolled back in prod/eu-west-1" in doc["message"]
    assert {r["release"] for r in prod_rows(cloud_repo).values()} == {good}


def test_region_must_belong_to_the_environment_and_cannot_go_with_through(cloud_repo: Path) -> None:
    unknown = run_cli("deploy", "models/iris", "--env", "prod", "--region", "mars-1", cwd=cloud_repo)
    assert unknown.exit_code == 2, unknown
    assert "environment prod has no region mars-1 (it has us-east-1, eu-west-1, ap-southeast-2)" in unknown.stderr
    through = run_cli("deploy", "models/iris", "--through", "prod", "--region", "us-east-1", cwd=cloud_repo)
    assert through.exit_code == 2, through
    assert "--region deploys regions of one environment" in through.stderr
