"""Waiting for the ledger's locks: a lock another run holds is waited for (with one progress line per
holder) up to a deadline, instead of failing at once. A region's lock is keyed ``ENV/REGION`` beside
the environment-wide ``(model, environment)`` lock, so the regions of a wave can deploy in parallel
from separate processes while two runs never move the same region."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from modelops.runtime import Runtime

from .base import HeldLock, Ledger, LockHeldError
from .records import LockHolder

LOCK_WAIT = "{key}: waiting for the lock ({reason})"


def region_key(environment: str, region: str) -> str:
    """The lock key of one region of an environment."""
    return f"{environment}/{region}"


@contextmanager
def waiting_lock(ledger: Ledger, model: str, key: str, holder: LockHolder, runtime: Runtime, wait: float, *,
                 poll: float) -> Iterator[HeldLock]:
    """Hold ``(model, key)``'s lock, waiting up to ``wait`` seconds (polling every ``poll``) while
    another run holds it; raises :class:`LockHeldError` (naming the holder) past that."""
    deadline = runtime.clock.monotonic() + wait
    told: str | None = None
    while True:
        try:
            held = ledger.acquire_lock(model, key, holder)
            break
        except LockHeldError as err:
            if runtime.clock.monotonic() >= deadline:
                raise
            if told != err.info.token:  # once per holder
                told = err.info.token
                runtime.progress.step(LOCK_WAIT.format(key=key, reason=err.message))
            runtime.clock.sleep(poll)
    try:
        yield held
    finally:
        held.release()


@contextmanager
def region_locks(ledger: Ledger, model: str, environment: str, regions: Iterable[str], holder: LockHolder,
                 runtime: Runtime, wait: float, *, poll: float) -> Iterator[None]:
    """Hold the lock of each region, taken in sorted order (so two runs cannot deadlock), each waited for."""
    with ExitStack() as stack:
        for region in sorted(regions):
            stack.enter_context(waiting_lock(ledger, model, region_key(environment, region), holder, runtime, wait,
                                             poll=poll))
        yield
