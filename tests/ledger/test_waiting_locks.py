"""Region locks of single-region deploys, against a real SQLite ledger: a held lock is waited for
(with one progress line naming its holder) and taken once released; held past the wait, it fails
naming the holder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelops.ledger import LockHeldError, sqlite_ledger
from modelops.ledger.locks import waiting_lock
from modelops.ledger.records import LockHolder
from modelops.runtime import Runtime


class _Clock:
    """Real wall time for the ledger; monotonic time that moves only when the waiter sleeps."""

    def __init__(self, on_sleep: Any = None):
        self.mono = 0.0
        self.on_sleep = on_sleep

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += 10.0
        if self.on_sleep is not None:
            self.on_sleep()


class _Steps:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def start(self, task: str, total: float | None = None) -> None: ...
    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None: ...
    def finish(self, task: str) -> None: ...


def _runtime(tmp_path: Path, clock: _Clock, progress: _Steps) -> Runtime:
    return Runtime(cwd=tmp_path, data_dir=tmp_path / "data", environ={"MODELOPS_LOCAL_DATA_DIR": str(tmp_path / "lc")},
                   clock=clock, progress=progress)


def test_a_held_region_lock_is_waited_for_then_taken(tmp_path: Path) -> None:
    other = LockHolder(user="ci-eu@example.com", host="ci-1", pid=1)
    me = LockHolder.current("ci-ap@example.com")
    releases: list[Any] = []
    clock, steps = _Clock(on_sleep=lambda: releases and releases.pop().release()), _Steps()
    runtime = _runtime(tmp_path, clock, steps)
    with sqlite_ledger(runtime) as ledger:
        # another host's live lock (fresh heartbeat): not stale, so it must be waited for
        releases.append(ledger.acquire_lock("iris", "prod/eu-west-1", other, heartbeat=False))
        with waiting_lock(ledger, "iris", "prod/eu-west-1", me, runtime, 60.0, poll=1.0) as held:
            info = ledger.lock_info("iris", "prod/eu-west-1")
            assert info is not None and info.holder == me
            assert held.info.holder == me
        assert ledger.lock_info("iris", "prod/eu-west-1") is None  # released after the block
        # a lock on another region of the same model and environment does not wait at all
        with waiting_lock(ledger, "iris", "prod/us-east-1", me, runtime, 60.0, poll=1.0):
            pass
    assert len(steps.lines) == 1
    assert steps.lines[0].startswith("prod/eu-west-1: waiting for the lock (iris in prod/eu-west-1 is locked by "
                                     "ci-eu@example.com on ci-1 (pid 1)")


def test_a_region_lock_held_past_the_wait_fails_naming_the_holder(tmp_path: Path) -> None:
    other = LockHolder(user="ci-eu@example.com", host="ci-1", pid=1)
    clock, steps = _Clock(), _Steps()
    runtime = _runtime(tmp_path, clock, steps)
    with sqlite_ledger(runtime) as ledger:
        held = ledger.acquire_lock("iris", "prod/eu-west-1", other, heartbeat=False)
        with pytest.raises(LockHeldError) as err, waiting_lock(
                ledger, "iris", "prod/eu-west-1", LockHolder.current("me@example.com"), runtime, 25.0, poll=1.0):
            pass
        held.release()
    assert "locked by ci-eu@example.com on ci-1 (pid 1)" in err.value.message
    assert clock.mono == 30.0  # waited (three polls of 10 s on this clock) until past the 25 s limit
