"""Commands that change nothing say nothing misleading: a rollback that cannot be done is the user's
request (exit 2, one line, a hint), not a cloud failure; plan does not report its throw-away build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.mark.slow
def test_rollback_of_nothing_is_bad_input_not_a_cloud_failure(cloud_repo: Path) -> None:
    absent = run_cli("rollback", "iris", "--env", "prod", "--output", "json", cwd=cloud_repo)
    assert absent.exit_code == 2, absent
    assert absent.json()["error"]["message"] == "iris is not deployed in prod/us-east-1", absent
    assert "modelops deploy iris --env prod" in absent.stderr, absent

    deployed = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert deployed.exit_code == 0, deployed
    release = deployed.json()["release"]
    first = run_cli("rollback", "iris", "--env", "dev", cwd=cloud_repo)
    assert first.exit_code == 2, first
    assert f"error: no release before {release} succeeded in dev/us-east-1" in first.stderr, first
    assert "modelops history iris" in first.stderr, first


@pytest.mark.slow
def test_plan_does_not_report_the_temporary_build_context_it_renders(cloud_repo: Path) -> None:
    result = run_cli("plan", "iris", "--env", "dev", cwd=cloud_repo)
    assert result.exit_code == 0, result
    assert "modelops-plan-" not in result.stderr and "wrote the build context" not in result.stderr, result
    assert "plan: iris -> dev" in result.stderr and "create" in result.stderr, result
