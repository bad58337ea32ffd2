"""A separate process using the SQLite ledger, for the multi-process tests (``python -m tests.ledger.worker``).

    hold PATH MODEL ENV          take the lock, print "held <pid>", then wait to be killed
    count PATH COUNTER ROUNDS    ROUNDS times: take the lock (retrying), bump the number in COUNTER
                                 with a read-sleep-write that races without the lock, release
    append PATH TAG N            N keyed appends (keys TAG:0..N-1) and N keyless ones, from 2 threads
    rollout PATH CRASH_AFTER     record the 6 steps of a rollout with idempotency keys; SIGKILL
                                 itself right after recording step CRASH_AFTER (0: never)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from modelops.ledger import (
    IN_PROGRESS,
    STARTED,
    SUCCEEDED,
    DeploymentStep,
    LockHeldError,
    idempotency_key,
)
from modelops.ledger.sqlite import SqliteLedger

ROLLOUT_STEPS = ("started", "model-created", "config-created", "endpoint-updating", "canary-baking", "succeeded")


def hold(path: str, model: str, env: str) -> None:
    ledger = SqliteLedger(Path(path), user="holder@example.com")
    ledger.acquire_lock(model, env)
    print(f"held {os.getpid()}", flush=True)
    while True:
        time.sleep(60)


def count(path: str, counter: str, rounds: int) -> None:
    ledger = SqliteLedger(Path(path), user=f"counter-{os.getpid()}")
    target = Path(counter)
    done = 0
    while done < rounds:
        try:
            held = ledger.acquire_lock("iris", "dev", heartbeat=False)
        except LockHeldError:
            time.sleep(0.001)
            continue
        value = int(target.read_text())
        time.sleep(0.002)  # widen the race a missing lock would lose
        target.write_text(str(value + 1))
        held.release()
        done += 1


def append(path: str, tag: str, n: int) -> None:
    ledger = SqliteLedger(Path(path))

    def work(offset: int) -> None:
        for i in range(offset, n, 2):
            s = DeploymentStep("iris", "dev", "us-east-1", "iris-1", f"{tag}-{i}", IN_PROGRESS)
            ledger.record_step(s, idempotency_key=f"{tag}:{i}")
            ledger.record_step(DeploymentStep("iris", "dev", "us-east-1", "iris-1", f"free-{tag}-{i}", IN_PROGRESS))

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def rollout(path: str, crash_after: int) -> None:
    ledger = SqliteLedger(Path(path))
    with ledger.lock("iris", "prod"):
        attempt = ledger.rollout_attempt("iris", "prod", "us-east-1", "iris-2")
        for n, name in enumerate(ROLLOUT_STEPS, start=1):
            status = STARTED if n == 1 else SUCCEEDED if n == len(ROLLOUT_STEPS) else IN_PROGRESS
            key = idempotency_key("step", "iris", "prod", "us-east-1", "iris-2", attempt, name)
            ledger.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-2", name, status,
                                              previous_release="iris-1"), idempotency_key=key)
            if n == crash_after:
                os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "hold":
        hold(*args)
    elif command == "count":
        count(args[0], args[1], int(args[2]))
    elif command == "append":
        append(args[0], args[1], int(args[2]))
    elif command == "rollout":
        rollout(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown command {command}")
