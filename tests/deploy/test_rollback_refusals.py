"""A rollback that cannot be done is the user's request (exit 2, one line, a hint), not a cloud failure."""

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
