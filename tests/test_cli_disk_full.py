"""A full disk is said to be full, in one line and exit 3, wherever modelops meets it."""

from __future__ import annotations

from pathlib import Path

from modelops.cli.app import DISK_FULL, DISK_FULL_HINT
from tests.faults import fill, in_small_filesystem
from tests.helpers import init_repo, run_cli


def test_a_build_into_a_full_disk_says_the_disk_is_full_not_an_internal_error(tmp_path: Path) -> None:
    # A write() that fails with ENOSPC names no file: it was reported as "internal error: OSError:
    # [Errno 28] No space left on device ... this is a bug in modelops".
    in_small_filesystem(build_scenario, tmp_path / "disk", size_mb=4)


def build_scenario(disk: Path) -> None:
    repo = init_repo(disk.parent / "repo")
    fill(disk)
    result = run_cli("build", "iris", "--output", "json", cwd=repo,
                     env={"MODELOPS_DATA_DIR": str(disk / "data"), "MODELOPS_LOCAL_DATA_DIR": str(disk / "local")})
    assert result.exit_code == 3, result
    error = result.json()["error"]
    prefix, suffix = DISK_FULL.split("{path}")
    assert error["message"].startswith(prefix) and error["message"].endswith(suffix), result
    assert error["hint"] == DISK_FULL_HINT and "internal error" not in result.stderr, result
