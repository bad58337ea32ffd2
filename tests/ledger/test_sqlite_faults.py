"""The SQLite ledger when its file or its disk fails: an empty file is damage, a full disk is said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.errors import EnvironmentFailedError
from modelops.ledger import ReleaseRecord
from modelops.ledger.sqlite import CANNOT_OPEN, CANNOT_OPEN_HINT, DISK_FULL_HINT, EMPTY_FILE, SqliteLedger
from tests.faults import fill, in_small_filesystem
from tests.helpers import init_repo, run_cli


def test_an_empty_ledger_file_is_refused_as_damaged_not_read_as_no_history(tmp_path: Path, repo: Path) -> None:
    # A zero-byte ledger.sqlite was taken as an empty ledger: `history` said "no history" and a deploy
    # rolled out as if nothing had ever been released.
    path = tmp_path / "ledger.sqlite"
    path.touch()
    with pytest.raises(EnvironmentFailedError) as refused:
        SqliteLedger(path)
    assert (refused.value.message, refused.value.hint) == (CANNOT_OPEN.format(path=path, error=EMPTY_FILE),
                                                           CANNOT_OPEN_HINT)
    assert path.stat().st_size == 0  # left as found, for the user to look at

    local = tmp_path / "localcloud"
    local.mkdir()
    (local / "ledger.sqlite").touch()
    result = run_cli("history", "iris", cwd=repo, env={"MODELOPS_LOCAL_DATA_DIR": str(local)})
    assert result.exit_code == 3, result
    assert f"ledger {local / 'ledger.sqlite'}: cannot open (the file is empty, 0 bytes: not a database)" in result.stderr


def test_a_new_ledger_is_complete_when_it_appears(tmp_path: Path) -> None:
    # Made under a temporary name and linked into place: no other process ever sees an empty file.
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.close()
    assert (tmp_path / "ledger.sqlite").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]  # no temporary file left


def test_a_full_disk_is_said_to_be_full_not_a_directory_that_is_not_writable(tmp_path: Path) -> None:
    # Reported: "ledger ...: cannot open (disk I/O error)", hint "check that the directory is writable and
    # the file is not corrupt" - for a disk that was full.
    in_small_filesystem(full_disk_scenario, tmp_path / "disk", size_mb=4)


def full_disk_scenario(disk: Path) -> None:
    repo = init_repo(disk.parent / "repo")
    existing, fresh = disk / "existing", disk / "fresh"
    ledger = SqliteLedger(existing / "ledger.sqlite")
    ledger.record_release(ReleaseRecord(model="iris", release="iris-1", commit="c" * 40, config_digest="d" * 64,
                                        build_digest="b" * 64, created_by="ada@example.com", at=1.0))
    ledger.close()
    fill(disk)

    # An existing ledger: SQLite cannot make its shared memory ("disk I/O error"); a new one: "database or disk is full".
    for local, error in ((existing, "disk I/O error"), (fresh, "database or disk is full")):
        result = run_cli("history", "iris", cwd=repo, env={"MODELOPS_LOCAL_DATA_DIR": str(local)})
        assert result.exit_code == 3, result
        assert f"error: ledger {local / 'ledger.sqlite'}: the disk is full ({error})" in result.stderr, result
        assert DISK_FULL_HINT.format(directory=local) in result.stderr, result
        assert "writable" not in result.stderr, result
