"""The ledger's interface, the queries both backends share, and lock staleness.

A backend stores entries and locks through a handful of primitives (append with an optional
idempotency key, read a model's or a release's entries in order, conditional lock writes);
everything a caller asks (serving release, last good release, gates, baselines) is derived here
from the entries, so SQLite and DynamoDB answer alike.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

from modelops.errors import GateError
from modelops.runtime import Clock, SystemClock

from .chain import ChainProblem, Head, ModelChain, StoredEntry, Verification, verify_copies, verify_model
from .records import (
    LOAD,
    ROLLED_BACK,
    SUCCEEDED,
    TEST_KINDS,
    Approval,
    BuildRecord,
    DeploymentStep,
    Entry,
    JudgmentRecord,
    LockHolder,
    LockInfo,
    RegionState,
    ReleaseBlock,
    ReleaseRecord,
    RolloutControl,
    RolloutIntent,
    TestRecord,
    stamped,
)

# A lock held from another host is stale when its heartbeat is older than this; the holder's
# heartbeat thread refreshes it every DEFAULT_LOCK_TTL / 4 seconds.
DEFAULT_LOCK_TTL = 300.0

LOCK_HELD = "{model} in {environment} is locked by {user} on {host} (pid {pid}) for {age}"
LOCK_HELD_HINT = (
    "another modelops run is changing this model in this environment; wait for it to finish. "
    "A lock whose process died is taken over on this host at once, from other hosts after "
    "{ttl} without a heartbeat"
)
LOCK_LOST = "lost the lock on {model} in {environment}: {user} on {host} (pid {pid}) took it over"
LOCK_LOST_HINT = "this run was paused longer than the lock's expiry; run the command again"

_MAX_KEY = 200
E = TypeVar("E", bound=Entry)


class LockHeldError(GateError):
    """Another run holds the lock on (model, environment). Carries the :class:`LockInfo`."""

    def __init__(self, info: LockInfo, now: float):
        super().__init__(
            LOCK_HELD.format(model=info.model, environment=info.environment, user=info.holder.user,
                             host=info.holder.host, pid=info.holder.pid, age=format_age(info.age(now))),
            hint=LOCK_HELD_HINT.format(ttl=format_age(info.ttl)),
        )
        self.info = info


class LockLostError(GateError):
    """The lock this run held was taken over (its heartbeat stopped for longer than the expiry)."""

    def __init__(self, info: LockInfo):
        super().__init__(
            LOCK_LOST.format(model=info.model, environment=info.environment, user=info.holder.user,
                             host=info.holder.host, pid=info.holder.pid),
            hint=LOCK_LOST_HINT,
        )
        self.info = info


def format_age(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def idempotency_key(*parts: object) -> str:
    """A key from the parts that identify one append (``deploy:iris:prod:us-east-1:iris-ab12:1:canary``).

    Long keys are hashed so they fit every backend's key limits.
    """
    key = ":".join(str(p) for p in parts)
    return key if len(key) <= _MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def is_process_alive(pid: int) -> bool:
    """Whether ``pid`` names a live (not zombie) process on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError as exc:  # pragma: no cover - other platforms
        return exc.errno != errno.ESRCH
    # A process killed with SIGKILL stays a zombie until its parent reaps it; it holds nothing.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in {"Z", "X"}
    except (OSError, IndexError):
        return True


def is_lock_stale(info: LockInfo, now: float, *, host: str | None = None) -> bool:
    """A lock is stale when its holder is on this host and its pid is dead, or it is on another
    host and its heartbeat is older than the expiry the holder declared (``info.ttl`` seconds)."""
    if info.holder.host == (host or socket.gethostname()):
        return not is_process_alive(info.holder.pid)
    return now - info.heartbeat_at > info.ttl


class HeldLock:
    """A lock this process holds; a daemon thread refreshes its heartbeat until released."""

    def __init__(self, ledger: LedgerBase, info: LockInfo, *,
                 took_over: LockInfo | None, heartbeat: bool):
        self.ledger = ledger
        self.info = info
        self.took_over = took_over  # the stale lock this one replaced, if any
        self._stop = threading.Event()
        self._lost: LockInfo | None = None
        self._thread: threading.Thread | None = None
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name=f"ledger-lock-{info.model}", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.info.ttl / 4):
                try:
                    if not self.ledger._lock_touch(self.info, self.ledger.clock.now()):
                        self._lost = self.ledger.lock_info(self.info.model, self.info.environment)
                        return
                except Exception:  # a missed beat is retried; the expiry is generous
                    continue
        finally:
            self.ledger._thread_done()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def check(self) -> None:
        """Raise :class:`LockLostError` if another run took the lock over (call between steps)."""
        current = self.ledger.lock_info(self.info.model, self.info.environment)
        if current is None or current.token != self.info.token:
            raise LockLostError(current or self._lost or self.info)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.ledger._lock_delete(self.info)


class Ledger(Protocol):
    """What build, deploy and verify use; see the package docstring for the semantics."""

    clock: Clock

    def record_release(self, record: ReleaseRecord, *, idempotency_key: str | None = None) -> bool: ...
    def record_build(self, record: BuildRecord, *, idempotency_key: str | None = None) -> bool: ...
    def record_step(self, record: DeploymentStep, *, idempotency_key: str | None = None) -> bool: ...
    def record_test(self, record: TestRecord, *, idempotency_key: str | None = None) -> bool: ...
    def record_approval(self, record: Approval, *, idempotency_key: str | None = None) -> bool: ...
    def record_block(self, record: ReleaseBlock) -> bool: ...
    def record_intent(self, record: RolloutIntent) -> bool: ...
    def append(self, entry: Entry, *, idempotency_key: str | None = None) -> bool: ...

    def models(self) -> tuple[str, ...]: ...
    def history(self, model: str, *, environment: str | None = None, region: str | None = None,
                release: str | None = None) -> tuple[Entry, ...]: ...
    def release(self, release_id: str) -> ReleaseRecord | None: ...
    def releases(self, model: str) -> tuple[ReleaseRecord, ...]: ...
    def builds(self, release: str, environment: str | None = None) -> tuple[BuildRecord, ...]: ...
    def steps(self, model: str, environment: str, region: str, *,
              release: str | None = None) -> tuple[DeploymentStep, ...]: ...
    def current(self, model: str, environment: str, region: str) -> RegionState | None: ...
    def status(self, model: str | None = None) -> tuple[RegionState, ...]: ...
    def last_good(self, model: str, environment: str, region: str, *, before: str | None = None) -> str | None: ...
    def rollout_attempt(self, model: str, environment: str, region: str, release: str) -> int: ...
    def test_results(self, release: str, environment: str) -> tuple[TestRecord, ...]: ...
    def tests_passed(self, release: str, environment: str, *, regions: Sequence[str] | None = None,
                     kinds: Sequence[str] = TEST_KINDS) -> bool: ...
    def baseline(self, model: str, environment: str, region: str, *, exclude_release: str) -> TestRecord | None: ...
    def load_runs(self, model: str, environment: str, region: str, *, last: int) -> tuple[TestRecord, ...]: ...
    def record_judgment(self, record: JudgmentRecord, *, idempotency_key: str | None = None) -> bool: ...
    def judgments(self, release: str, environment: str | None = None) -> tuple[JudgmentRecord, ...]: ...
    def approvals(self, release: str, environment: str) -> tuple[Approval, ...]: ...
    def block(self, release: str, environment: str) -> ReleaseBlock | None: ...
    def rollout_control(self, model: str, environment: str, region: str, release: str) -> RolloutControl: ...
    def verify(self, model: str | None = None, *, releases: Sequence[str] = ()) -> Verification: ...

    def lock(self, model: str, environment: str, holder: LockHolder | None = None, *,
             ttl: float = DEFAULT_LOCK_TTL,
             heartbeat: bool = True) -> contextlib.AbstractContextManager[HeldLock]: ...
    def acquire_lock(self, model: str, environment: str, holder: LockHolder | None = None, *,
                     ttl: float = DEFAULT_LOCK_TTL, heartbeat: bool = True) -> HeldLock: ...
    def lock_info(self, model: str, environment: str) -> LockInfo | None: ...
    def break_lock(self, model: str, environment: str) -> LockInfo | None: ...
    def close(self) -> None: ...


class LedgerBase:
    """Queries and locking over a backend's primitives (the ``_`` methods below)."""

    def __init__(self, *, clock: Clock | None = None, user: str = "unknown"):
        self.clock: Clock = clock or SystemClock()
        self.user = user

    # -- backend primitives ------------------------------------------------------------------
    def _append(self, entry: Entry, idempotency_key: str | None) -> bool:
        raise NotImplementedError

    def _model_entries(self, model: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        """The entries of ``model`` in the order appended; only of type ``cls`` and with the given
        ``environment``/``region``/``release`` when asked (backends filter where they store)."""
        raise NotImplementedError

    def _release_entries(self, release: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        """The entries naming ``release`` in the order appended, filtered like :meth:`_model_entries`."""
        raise NotImplementedError

    def models(self) -> tuple[str, ...]:
        """Every model with an entry, sorted."""
        raise NotImplementedError

    def _snapshot(self, model: str) -> tuple[list[StoredEntry], Head | None]:
        """A model's stored entries (older ones first, then the chain by position) and its head, as of
        one moment: no append may fall between the two reads."""
        raise NotImplementedError

    #: Whether the backend keeps a copy of each entry under its release (DynamoDB: its release
    #: queries read those, so verification checks them against the model's history).
    keeps_release_copies = False

    def _release_copies(self, release: str) -> list[StoredEntry]:
        """The per-release copies of entries (backends that keep them)."""
        raise NotImplementedError

    def _head(self, model: str) -> Head | None:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """How messages name this ledger (its file, or its table and region)."""
        return repr(self)

    def lock_info(self, model: str, environment: str) -> LockInfo | None:
        """The lock on (model, environment) as stored, held or stale; None when free."""
        raise NotImplementedError

    def _lock_insert(self, info: LockInfo) -> bool:
        """Store ``info`` if no lock exists for its (model, environment)."""
        raise NotImplementedError

    def _lock_replace(self, info: LockInfo, expected_token: str) -> bool:
        """Store ``info`` if the stored lock still has ``expected_token``."""
        raise NotImplementedError

    def _lock_touch(self, info: LockInfo, now: float) -> bool:
        """Set the heartbeat if the stored lock still has ``info.token``."""
        raise NotImplementedError

    def _lock_delete(self, info: LockInfo) -> bool:
        """Delete the lock if the stored one still has ``info.token``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (the ledger stays usable; they reopen on demand)."""

    def _thread_done(self) -> None:
        """A thread of this ledger (a lock's heartbeat) ends: drop what it holds."""

    def __enter__(self) -> LedgerBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- appends -----------------------------------------------------------------------------
    def append(self, entry: Entry, *, idempotency_key: str | None = None) -> bool:
        """Append ``entry`` (``at`` stamped from the clock when 0). With an ``idempotency_key`` already
        in the ledger nothing is appended. Returns whether the entry was appended."""
        return self._append(stamped(entry, self.clock.now()), idempotency_key)

    def record_release(self, record: ReleaseRecord, *, idempotency_key: str | None = None) -> bool:
        """Record a built release (key defaults to ``release:<release id>``: once per release)."""
        return self.append(record, idempotency_key=idempotency_key or f"release:{record.release}")

    def record_build(self, record: BuildRecord, *, idempotency_key: str | None = None) -> bool:
        """Record a release's build for one environment and region (key defaults to
        ``build:<release>:<environment>:<region>:<digest>``)."""
        return self.append(record, idempotency_key=idempotency_key or idempotency_key_for_build(record))

    def record_step(self, record: DeploymentStep, *, idempotency_key: str | None = None) -> bool:
        """Record a rollout step. Pass a key naming the attempt (see :meth:`rollout_attempt`) when a
        re-run must not repeat it."""
        return self.append(record, idempotency_key=idempotency_key)

    def record_test(self, record: TestRecord, *, idempotency_key: str | None = None) -> bool:
        """Record a regression or load test result."""
        return self.append(record, idempotency_key=idempotency_key)

    def record_judgment(self, record: JudgmentRecord, *, idempotency_key: str | None = None) -> bool:
        """Record a judged canary's step with its figures (a re-run judges again and records again)."""
        return self.append(record, idempotency_key=idempotency_key)

    def record_approval(self, record: Approval, *, idempotency_key: str | None = None) -> bool:
        """Record an approval (key defaults to ``approval:<release>:<environment>:<by>``: once per person)."""
        key = idempotency_key or f"approval:{record.release}:{record.environment}:{record.by}"
        return self.append(record, idempotency_key=key)

    def record_block(self, record: ReleaseBlock) -> bool:
        """Block a release in an environment (``record.blocked``) or unblock it. Only a change is
        appended: blocking a blocked release (a rollback seen by several regions or processes) or
        unblocking one that is not blocked appends nothing and returns False. The key counts the
        block entries before it, so two processes recording the same change append it once."""
        current = self.block(record.release, record.environment)
        if (current is not None) == record.blocked:
            return False
        earlier = len(self._release_entries(record.release, ReleaseBlock, environment=record.environment))
        key = idempotency_key("block", record.release, record.environment, earlier)
        return self.append(record, idempotency_key=key)

    def record_intent(self, record: RolloutIntent) -> bool:
        """Record what someone asks of a rollout in flight (pause, resume, abort, promote)."""
        return self.append(record)

    # -- queries -----------------------------------------------------------------------------
    def history(self, model: str, *, environment: str | None = None, region: str | None = None,
                release: str | None = None) -> tuple[Entry, ...]:
        """Entries of ``model`` in time order, optionally only one environment/region/release
        (release records and approvals have no region and pass a region filter)."""
        return tuple(
            e for e in self._model_entries(model)
            if (environment is None or e.environment_name in (None, environment))
            and (region is None or e.region_name in (None, region))
            and (release is None or e.release_id == release)
        )

    def releases(self, model: str) -> tuple[ReleaseRecord, ...]:
        """Releases of ``model`` in the order they were built."""
        return tuple(_only(self._model_entries(model, ReleaseRecord), ReleaseRecord))

    def release(self, release_id: str) -> ReleaseRecord | None:
        """The release record of ``release_id``; None when it was never recorded."""
        return next(_only(self._release_entries(release_id, ReleaseRecord), ReleaseRecord), None)

    def builds(self, release: str, environment: str | None = None) -> tuple[BuildRecord, ...]:
        """The latest build record per (environment, region) of ``release``."""
        latest: dict[tuple[str, str], BuildRecord] = {}
        where = {"environment": environment} if environment else {}
        for b in _only(self._release_entries(release, BuildRecord, **where), BuildRecord):
            latest[(b.environment, b.region)] = b
        return tuple(latest.values())

    def steps(self, model: str, environment: str, region: str, *,
              release: str | None = None) -> tuple[DeploymentStep, ...]:
        """Rollout steps in (environment, region), oldest first."""
        where = {"environment": environment, "region": region, **({"release": release} if release else {})}
        return tuple(_only(self._model_entries(model, DeploymentStep, **where), DeploymentStep))

    def current(self, model: str, environment: str, region: str) -> RegionState | None:
        """The serving release and latest step in (environment, region); None if never deployed."""
        steps = self.steps(model, environment, region)
        return _region_state(model, environment, region, steps) if steps else None

    def status(self, model: str | None = None) -> tuple[RegionState, ...]:
        """:meth:`current` for every (model, environment, region) with steps, sorted."""
        states: list[RegionState] = []
        for name in (model,) if model else self.models():
            by_place: dict[tuple[str, str], list[DeploymentStep]] = {}
            for s in _only(self._model_entries(name, DeploymentStep), DeploymentStep):
                by_place.setdefault((s.environment, s.region), []).append(s)
            states.extend(_region_state(name, env, region, steps)
                          for (env, region), steps in sorted(by_place.items()))
        return tuple(states)

    def last_good(self, model: str, environment: str, region: str, *, before: str | None = None) -> str | None:
        """The rollback target: the latest release other than ``before`` whose latest rollout in
        (environment, region) succeeded. A release rolled back or failed since is not good."""
        outcomes: dict[str, str] = {}
        for s in self.steps(model, environment, region):
            _note_outcome(outcomes, s)
        return _last_succeeded(outcomes, other_than=before)

    def rollout_attempt(self, model: str, environment: str, region: str, release: str) -> int:
        """1 + the number of finished rollouts of ``release`` in (environment, region).

        Put it in the idempotency keys of a rollout's steps: a re-run after a crash (no terminal
        step yet) gets the same number and its repeated steps are not appended twice, while a later
        deploy of the same release (say after a rollback) is a new attempt with its own steps.
        """
        done = sum(1 for s in self.steps(model, environment, region, release=release) if s.is_terminal)
        return done + 1

    def test_results(self, release: str, environment: str) -> tuple[TestRecord, ...]:
        """The latest test result per (region, kind) of ``release`` in ``environment``."""
        latest: dict[tuple[str, str], TestRecord] = {}
        for t in _only(self._release_entries(release, TestRecord, environment=environment), TestRecord):
            latest[(t.region, t.kind)] = t
        return tuple(latest[k] for k in sorted(latest))

    def tests_passed(self, release: str, environment: str, *, regions: Sequence[str] | None = None,
                     kinds: Sequence[str] = TEST_KINDS) -> bool:
        """Whether the latest result of every kind in ``kinds`` passed in every region of ``regions``
        (default: the regions with any result). Fails closed: no result is not a pass."""
        latest = {(t.region, t.kind): t for t in self.test_results(release, environment)}
        wanted = list(regions) if regions is not None else sorted({region for region, _ in latest})
        if not wanted or not kinds:
            return False
        return all((r, k) in latest and latest[(r, k)].passed for r in wanted for k in kinds)

    def baseline(self, model: str, environment: str, region: str, *, exclude_release: str) -> TestRecord | None:
        """The latest passing load test with figures (``metrics`` not empty; a skipped load test has
        none) of ``model`` in (environment, region) of a release other than ``exclude_release``:
        what a new release's figures are shown beside (history, not a gate)."""
        tests = self._model_entries(model, TestRecord, environment=environment, region=region)
        for t in reversed(list(_only(tests, TestRecord))):
            if t.kind == LOAD and t.passed and t.metrics and t.release != exclude_release:
                return t
        return None

    def load_runs(self, model: str, environment: str, region: str, *, last: int) -> tuple[TestRecord, ...]:
        """The ``last`` load tests with figures of ``model`` in (environment, region), of any release,
        passed or not, oldest first: the trend ``modelops test`` shows."""
        tests = self._model_entries(model, TestRecord, environment=environment, region=region)
        runs = [t for t in _only(tests, TestRecord) if t.kind == LOAD and t.metrics]
        return tuple(runs[-last:]) if last > 0 else ()

    def judgments(self, release: str, environment: str | None = None) -> tuple[JudgmentRecord, ...]:
        """The judged canary steps of ``release`` (in ``environment``, or anywhere), oldest first."""
        where = {"environment": environment} if environment else {}
        return tuple(_only(self._release_entries(release, JudgmentRecord, **where), JudgmentRecord))

    def approvals(self, release: str, environment: str) -> tuple[Approval, ...]:
        """Approvals of ``release`` for ``environment``, oldest first."""
        return tuple(_only(self._release_entries(release, Approval, environment=environment), Approval))

    def block(self, release: str, environment: str) -> ReleaseBlock | None:
        """The block in force on ``release`` in ``environment`` (its latest block entry, when that
        one blocks), else None."""
        entries = list(_only(self._release_entries(release, ReleaseBlock, environment=environment), ReleaseBlock))
        return entries[-1] if entries and entries[-1].blocked else None

    def rollout_control(self, model: str, environment: str, region: str, release: str) -> RolloutControl:
        """The intents in force for the current attempt of ``release`` in (environment, region): those
        recorded since its last attempt there ended and since the release was last unblocked in the
        environment (an abort blocks the release; unblocking starts afresh), in append order. A region
        of a later wave has no attempt yet, so a pause recorded for it while earlier waves ran holds it."""
        in_force: list[RolloutIntent] = []
        for e in self._release_entries(release, environment=environment):
            ends = (isinstance(e, DeploymentStep) and e.region == region and e.is_terminal) or (
                isinstance(e, ReleaseBlock) and not e.blocked)
            if ends:
                in_force = []
            elif isinstance(e, RolloutIntent) and e.region == region and e.model == model:
                in_force.append(e)
        return RolloutControl.of(in_force)

    # -- tamper evidence ----------------------------------------------------------------------
    def verify(self, model: str | None = None, *, releases: Sequence[str] = ()) -> Verification:
        """Check the hash chain of ``model`` (every model when None; see :mod:`modelops.ledger.chain`)
        and, where the backend keeps per-release copies, those of ``releases`` (every release of the
        model when verifying all). :meth:`Verification.raise_if_broken` turns a problem into
        :class:`~modelops.ledger.chain.LedgerTamperedError`."""
        chains: list[ModelChain] = []
        for name in (model,) if model else self.models():
            wanted: tuple[str, ...] = ()
            if self.keeps_release_copies:
                wanted = tuple(releases) if model else tuple(dict.fromkeys(
                    r for r in (_release_of(e) for e in self._snapshot(name)[0]) if r))
            before = self._head(name)  # read before the copies: entries after it may lack theirs yet
            copies = {r: self._release_copies(r) for r in wanted}
            entries, head = self._snapshot(name)
            chain = verify_model(name, entries, head)
            for release, found in copies.items():
                problem = verify_copies(name, release, found, entries, head_before=before.seq if before else 0)
                if chain.ok and problem:
                    chain = replace(chain, problem=ChainProblem(name, problem))
            chains.append(chain)
        return Verification(self.name, tuple(chains))

    # -- locks -------------------------------------------------------------------------------
    def acquire_lock(self, model: str, environment: str, holder: LockHolder | None = None, *,
                     ttl: float = DEFAULT_LOCK_TTL, heartbeat: bool = True) -> HeldLock:
        """Take the lock on (model, environment) or raise :class:`LockHeldError`. A stale lock
        (see :func:`is_lock_stale`) is taken over; ``HeldLock.took_over`` then names it. ``ttl`` is
        this holder's expiry for other hosts, stored with the lock; ``heartbeat`` starts the
        thread that refreshes it every ``ttl / 4`` seconds."""
        holder = holder or LockHolder.current(self.user)
        for _ in range(10):  # each pass loses only to another process winning a race
            now = self.clock.now()
            info = LockInfo(model=model, environment=environment, holder=holder, acquired_at=now,
                            heartbeat_at=now, token=uuid.uuid4().hex, ttl=ttl)
            if self._lock_insert(info):
                return HeldLock(self, info, took_over=None, heartbeat=heartbeat)
            existing = self.lock_info(model, environment)
            if existing is None:
                continue
            if not is_lock_stale(existing, now):
                raise LockHeldError(existing, now)
            if self._lock_replace(info, existing.token):
                return HeldLock(self, info, took_over=existing, heartbeat=heartbeat)
        existing = self.lock_info(model, environment)
        raise LockHeldError(existing or info, self.clock.now())

    def lock(self, model: str, environment: str, holder: LockHolder | None = None, *,
             ttl: float = DEFAULT_LOCK_TTL, heartbeat: bool = True) -> HeldLock:
        """``with ledger.lock(model, env) as held:`` - held for the block, released after it
        (also on errors). A run killed inside the block leaves the lock stale, not stuck. The lock
        is taken by this call (it is :meth:`acquire_lock`; a :class:`HeldLock` is its own context)."""
        return self.acquire_lock(model, environment, holder, ttl=ttl, heartbeat=heartbeat)

    def break_lock(self, model: str, environment: str) -> LockInfo | None:
        """Remove the lock on (model, environment) whoever holds it; returns what was removed."""
        info = self.lock_info(model, environment)
        if info is not None and self._lock_delete(info):
            return info
        return None


def _release_of(entry: StoredEntry) -> str | None:
    try:
        release = json.loads(entry.body).get("release")
    except (ValueError, AttributeError):
        return None
    return str(release) if release else None


def idempotency_key_for_build(record: BuildRecord) -> str:
    return idempotency_key("build", record.release, record.environment, record.region, record.digest)


def _only(entries: Iterable[Entry], cls: type[E]) -> Iterator[E]:
    return (e for e in entries if isinstance(e, cls))


def _region_state(model: str, environment: str, region: str, steps: Sequence[DeploymentStep]) -> RegionState:
    return RegionState(model=model, environment=environment, region=region, release=serving_release(steps),
                       last_step=steps[-1] if steps else None)


def serving_release(steps: Sequence[DeploymentStep]) -> str | None:
    """The release serving after ``steps`` (one region, oldest first), step by step; only terminal
    steps count (``STARTED``/``IN_PROGRESS`` change nothing):

    - ``SUCCEEDED`` of release R: R serves.
    - ``FAILED``: what served before still serves (also when the failed step names the serving release).
    - ``ROLLED_BACK`` of a release that is not serving (an update SageMaker rolled back): nothing changes.
    - ``ROLLED_BACK`` of the serving release R: its ``previous_release`` P serves when set and not R
      (set equal to R, R keeps serving). Deploy writes this step only once the move back to P has
      completed (the endpoint is in service on P's config), so the step itself is the record that P
      serves, even when this region's history never saw P succeed (an endpoint older than the
      ledger, or a table that was recreated). Without P: the release other than R whose latest
      terminal step here is the most recent ``SUCCEEDED`` one, else None.

    ``last_good`` is stricter: a release that serves only because a rollback returned to it, with no
    succeeded rollout of its own here, is no rollback target."""
    serving: str | None = None
    outcomes: dict[str, str] = {}
    for s in steps:
        _note_outcome(outcomes, s)
        if s.status == SUCCEEDED:
            serving = s.release
        elif s.status == ROLLED_BACK and serving == s.release:
            # previous_release == s.release keeps it; None falls back to the last good other one.
            serving = s.previous_release or _last_succeeded(outcomes, other_than=s.release)
    return serving


def _note_outcome(outcomes: dict[str, str], step: DeploymentStep) -> None:
    """Keep ``outcomes`` as release -> status of its latest terminal step, in the order of those steps."""
    if step.is_terminal:
        outcomes.pop(step.release, None)  # re-inserted last: dicts keep insertion order
        outcomes[step.release] = step.status


def _last_succeeded(outcomes: dict[str, str], *, other_than: str | None) -> str | None:
    """The release whose latest terminal step is the most recent ``SUCCEEDED`` one, ``other_than`` aside."""
    return next((r for r in reversed(outcomes) if r != other_than and outcomes[r] == SUCCEEDED), None)

