"""The SQLite ledger for real, across processes: lock contention, a holder killed with SIGKILL,
concurrent appends from processes and threads, and a crashed run converging when re-run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.errors import EnvironmentFailedError
from modelops.ledger import SUCCEEDED, DeploymentStep, LockHeldError, ReleaseRecord, TestRecord
from modelops.ledger.sqlite import SqliteLedger
from tests.helpers import PROJECT_ROOT
from tests.ledger.worker import ROLLOUT_STEPS


def worker(*args: str | Path | int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.ledger.worker", *map(str, args)], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> int:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode


def test_a_lock_held_by_another_process_is_refused_until_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    holder = worker("hold", path, "iris", "prod")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == f"held {holder.pid}"
        ledger = SqliteLedger(path, user="ada@example.com")
        with pytest.raises(LockHeldError, match=f"iris in prod is locked by holder@example.com on .* \\(pid {holder.pid}\\)"):
            ledger.acquire_lock("iris", "prod")
    finally:
        holder.send_signal(signal.SIGKILL)
        finish(holder)
    # kill -9 left the lock row behind; its pid is dead, so the next run takes it over.
    stale = ledger.lock_info("iris", "prod")
    assert stale is not None and stale.holder.pid == holder.pid
    with ledger.lock("iris", "prod") as held:
        assert held.took_over is not None and held.took_over.holder.pid == holder.pid
        assert held.info.holder.pid == os.getpid()
    assert ledger.lock_info("iris", "prod") is None


def test_two_processes_contending_for_a_lock_never_overlap(tmp_path: Path) -> None:
    path, counter = tmp_path / "ledger.sqlite", tmp_path / "counter"
    counter.write_text("0")
    SqliteLedger(path)  # create the schema once, so the workers race on the lock only
    procs = [worker("count", path, counter, 25) for _ in range(2)]
    for p in procs:
        assert finish(p) == 0
    assert counter.read_text() == "50"  # a lost update would mean two holders at once


def test_concurrent_appends_from_processes_and_threads_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    # Two processes write the same keyed entries (as a re-run racing a retry would), plus their own.
    procs = [worker("append", path, "shared", 30) for _ in range(2)]
    for p in procs:
        assert finish(p) == 0
    steps = SqliteLedger(path).steps("iris", "dev", "us-east-1")
    keyed = [s.step for s in steps if s.step.startswith("shared-")]
    free = [s.step for s in steps if s.step.startswith("free-")]
    assert sorted(keyed) == sorted(f"shared-{i}" for i in range(30))
    assert len(free) == 60


@pytest.mark.parametrize("crash_after", [1, 3, 5])
def test_a_rollout_killed_mid_way_converges_when_run_again(tmp_path: Path, crash_after: int) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(path)
    ledger.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-1", "succeeded", SUCCEEDED))

    assert finish(worker("rollout", path, crash_after)) == -signal.SIGKILL
    recorded = [s.step for s in ledger.steps("iris", "prod", "us-east-1", release="iris-2")]
    assert recorded == list(ROLLOUT_STEPS[:crash_after])
    assert ledger.current("iris", "prod", "us-east-1").in_progress  # type: ignore[union-attr]
    assert ledger.lock_info("iris", "prod") is not None  # left behind by kill -9

    assert finish(worker("rollout", path, 0)) == 0  # same command again: takes the lock over
    recorded = [s.step for s in ledger.steps("iris", "prod", "us-east-1", release="iris-2")]
    assert recorded == list(ROLLOUT_STEPS)  # none twice, none lost
    state = ledger.current("iris", "prod", "us-east-1")
    assert state is not None and state.release == "iris-2" and not state.in_progress
    assert ledger.lock_info("iris", "prod") is None


def test_the_file_is_wal_and_entries_refuse_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(path)
    ledger.record_release(ReleaseRecord("iris", "iris-1", "c", "cfg", "bld", "ada"))
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE entries SET model = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM entries")
    finally:
        raw.close()
    assert ledger.release("iris-1") is not None


def test_threads_share_one_ledger_object(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ledger = SqliteLedger(tmp_path / "ledger.sqlite")

    def record(i: int) -> bool:
        test = TestRecord("iris", "iris-1", "prod", f"region-{i % 3}", "load", True, metrics={"rps": i})
        return ledger.record_test(test, idempotency_key=f"t{i % 20}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        appended = list(pool.map(record, range(60)))
    assert sum(appended) == 20 and len(ledger.history("iris")) == 20
    ledger.close()
    assert len(ledger.history("iris")) == 20  # reopens on demand


def test_an_unusable_path_is_an_environment_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite").mkdir()
    with pytest.raises(EnvironmentFailedError, match=r"ledger .*ledger\.sqlite: cannot open"):
        SqliteLedger(tmp_path / "ledger.sqlite")


def test_a_ledger_from_a_newer_modelops_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(EnvironmentFailedError, match="written by a newer modelops"):
        SqliteLedger(path)


def test_a_heartbeat_thread_closes_its_connection_when_the_lock_is_released(tmp_path: Path) -> None:
    import time

    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    for _ in range(3):
        with ledger.lock("iris", "dev", ttl=0.04) as held:  # beats every 10 ms
            first = held.info.heartbeat_at
            deadline = time.monotonic() + 10
            while ledger.lock_info("iris", "dev").heartbeat_at == first and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.01)
    assert len(ledger._all) == 1  # only the caller's own connection is left open
