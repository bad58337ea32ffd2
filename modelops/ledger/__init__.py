"""Append-only history of releases, builds, rollout steps, test results, approvals, and locks.

Build, deploy and verify write it; deploy's gates, ``status``, ``history`` and ``rollback`` read
it. It decides nothing: it stores what happened and derives what is true now.

Opening::

    from modelops.ledger import open_ledger
    ledger = open_ledger(clients, runtime)   # clients: modelops.clients.Clients of the environment
    # local env -> SqliteLedger(runtime.local_cloud_dir / "ledger.sqlite")
    # aws env   -> DynamoLedger(clients.client("dynamodb", region), table "modelops-ledger")
    #              region: $MODELOPS_LEDGER_REGION, else the environment's first region;
    #              table: $MODELOPS_LEDGER_TABLE, else "modelops-ledger" (created on first use if missing)

Each environment's clients open that environment's ledger (all local environments share one file;
aws accounts each have their table). A gate about the previous environment reads the ledger of the
previous environment: ``open_ledger(clients_for(previous_env, runtime), runtime)``.

Records (frozen dataclasses in :mod:`modelops.ledger.records`; ``.to_dict()`` is JSON-ready,
``entry_from_dict`` reads it back; ``at`` left at 0.0 is stamped from ``runtime.clock``)::

    ReleaseRecord(model, release, commit, config_digest, build_digest, created_by, at=0.0, author="", source="")
    BuildRecord(model, release, environment, region, image_uri, model_data_url, digest, at=0.0)
    DeploymentStep(model, environment, region, release, step, status, detail="", endpoint="",
                   previous_release=None, at=0.0)
        status: STARTED | IN_PROGRESS | SUCCEEDED | ROLLED_BACK | FAILED (the last three are terminal)
    TestRecord(model, release, environment, region, kind, passed, summary="", metrics={}, at=0.0)
        kind: REGRESSION | LOAD; metrics: p50_ms, p95_ms, p99_ms, rps, error_rate (floats)
    Approval(model, release, environment, by, comment="", at=0.0, source="", authenticated=False, principal="")
    ReleaseBlock(model, release, environment, blocked, by, reason="", region=None, at=0.0)
        # blocked: rolled back there (nothing rolls it out there again); not blocked: unblocked
    RolloutIntent(model, environment, region, release, action, by, reason="", at=0.0)
        action: PAUSE | RESUME | ABORT | PROMOTE (what someone asks of a rollout in flight)
    JudgmentRecord(model, release, environment, region, reference, percent, outcome, judgment={}, at=0.0)
        # a judged canary's step: judgment = Judgment.to_dict() (verdicts, worst disagreements with inputs)
    Entry = ReleaseRecord | BuildRecord | DeploymentStep | TestRecord | Approval | ReleaseBlock | RolloutIntent
            | JudgmentRecord
    RolloutControl(paused, abort, promote): the intents in force for a rollout in one region
    LockHolder(user, host, pid); LockHolder.current(runtime.user)
    LockInfo(model, environment, holder, acquired_at, heartbeat_at, token, ttl); .age(now)
    RegionState(model, environment, region, release, last_step); .in_progress

The :class:`Ledger` protocol (both backends; every append returns True if appended, False if its
idempotency key was already there)::

    record_release(ReleaseRecord, *, idempotency_key=None) -> bool   # default key: once per release
    record_build(BuildRecord, *, idempotency_key=None) -> bool       # default key: release/env/region/digest
    record_step(DeploymentStep, *, idempotency_key=None) -> bool
    record_test(TestRecord, *, idempotency_key=None) -> bool
    record_approval(Approval, *, idempotency_key=None) -> bool       # default key: once per (release, env, by)
    record_block(ReleaseBlock) -> bool   # appends only a change (block an unblocked release or the reverse)
    record_intent(RolloutIntent) -> bool
    record_judgment(JudgmentRecord, *, idempotency_key=None) -> bool
    append(Entry, *, idempotency_key=None) -> bool
    models() -> tuple[str, ...]
    history(model, *, environment=None, region=None, release=None) -> tuple[Entry, ...]   # time order
    release(release_id) -> ReleaseRecord | None
    releases(model) -> tuple[ReleaseRecord, ...]
    builds(release, environment=None) -> tuple[BuildRecord, ...]     # latest per (env, region)
    steps(model, environment, region, *, release=None) -> tuple[DeploymentStep, ...]
    current(model, environment, region) -> RegionState | None       # .release = serving release
    status(model=None) -> tuple[RegionState, ...]                   # every (model, env, region) deployed
    last_good(model, environment, region, *, before=None) -> str | None
        # rollback target: latest release != before whose latest rollout there succeeded
    rollout_attempt(model, environment, region, release) -> int     # 1 + finished rollouts of it there
    test_results(release, environment) -> tuple[TestRecord, ...]   # latest per (region, kind)
    tests_passed(release, environment, *, regions=None, kinds=(REGRESSION, LOAD)) -> bool  # fails closed
    baseline(model, environment, region, *, exclude_release) -> TestRecord | None
        # the last passing load test with metrics (a skipped one has none) of another release
    load_runs(model, environment, region, *, last) -> tuple[TestRecord, ...]  # the last load tests, oldest first
    judgments(release, environment=None) -> tuple[JudgmentRecord, ...]  # judged canary steps, oldest first
    approvals(release, environment) -> tuple[Approval, ...]
    block(release, environment) -> ReleaseBlock | None             # the block in force, if any
    rollout_control(model, environment, region, release) -> RolloutControl
        # intents since the release's last attempt there ended (and since its last unblock)
    verify(model=None, *, releases=()) -> Verification   # the hash chain (see "Tamper evidence")
        # .ok, .problems, .models (ModelChain: entries, legacy, head, problem), .raise_if_broken()
        #   -> LedgerTamperedError (exit 3): "ledger <file or table>: iris: entry 7 (approval of ...) was changed ..."
    lock(model, environment, holder=None, *, ttl=300, heartbeat=True) -> ContextManager[HeldLock]
        # raises LockHeldError (a GateError): "iris in prod is locked by ada@x on host1 (pid 42) for 3m12s"
        # HeldLock: .info, .took_over (the stale LockInfo it replaced, or None), .check() -> LockLostError
    acquire_lock(...) -> HeldLock; HeldLock.release() (HeldLock is also a context manager)
    lock_info(model, environment) -> LockInfo | None
    break_lock(model, environment) -> LockInfo | None
    close()

Idempotency. A run that may crash and be re-run passes keys naming what it appends, e.g.
``idempotency_key("step", model, env, region, release, ledger.rollout_attempt(...), step)``. The
re-run of a crashed rollout sees no terminal step yet, so gets the same attempt number and the same
keys: steps recorded before the crash are not repeated, steps not recorded are appended (none
lost). A later rollout of the same release after it finished is a new attempt with new keys.

Locks, one per (model, environment), holder (user, host, pid), acquired-at and heartbeat. A lock is
stale, and the next ``lock()`` takes it over, when its holder is on this host and its pid is dead
(so ``kill -9`` and a re-run converge at once), or its holder is on another host and its heartbeat
is older than the ``ttl`` its holder declared (default 300 s, stored with the lock; the holder's
daemon thread refreshes the heartbeat every ``ttl / 4``). A live holder on this host is never
expired, including this very process: locks are not re-entrant. Locks are the only mutable state;
they are not history. Ordering: a model's history is in append order on both backends (its hash
chain's order; entries from before the chain, on DynamoDB, in the order of their ``at``).

Tamper evidence. Every entry of a model links to the one before it by hash, and each backend keeps
the model's head; appends move the head atomically, conditional on the head they read, so concurrent
appenders never fork a chain. ``verify`` finds an entry edited, deleted (in the middle or at the end),
reordered or inserted outside modelops, and on DynamoDB a per-release copy that does not match the
history. Deploy verifies the model's chain before it reads the gates. Details and limits in
:mod:`modelops.ledger.chain`.

Derived state. ``current(...).release`` is the serving release, from the region's terminal steps in
order: a ``SUCCEEDED`` step serves its release; a ``FAILED`` step leaves what served before; a
``ROLLED_BACK`` step of a release that is not serving changes nothing; a ``ROLLED_BACK`` step of the
serving release returns to its ``previous_release`` (else to the most recent other release whose
latest terminal step there is ``SUCCEEDED``, else None). ``previous_release`` is taken as written
even if the ledger never saw it succeed there: deploy writes ``ROLLED_BACK`` only once the move back
has completed, so that step is the record that it serves (e.g. an endpoint older than the ledger).
``last_good`` (the rollback target) is stricter: its own latest rollout there must have succeeded.

Secrets: records have fixed fields and no place for configs; ``detail``, ``summary``, ``comment``
and build URLs pass through :func:`redact` (values of secret-named settings such as ``HF_TOKEN=``,
URL passwords, presigned signatures and AWS access key ids are masked).

Backends: :class:`SqliteLedger` (WAL, several processes and threads; see ``sqlite.py`` for the
schema) and :class:`DynamoLedger` (one table; key design in ``dynamo.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .base import (
    DEFAULT_LOCK_TTL,
    LOCK_HELD,
    LOCK_HELD_HINT,
    LOCK_LOST,
    HeldLock,
    Ledger,
    LedgerBase,
    LockHeldError,
    LockLostError,
    format_age,
    idempotency_key,
    is_lock_stale,
    is_process_alive,
    serving_release,
)
from .chain import ChainProblem, LedgerTamperedError, ModelChain, Verification
from .records import (
    ABORT,
    ENTRY_KINDS,
    FAILED,
    IN_PROGRESS,
    INTENT_ACTIONS,
    LOAD,
    PAUSE,
    PROMOTE,
    REGRESSION,
    RESUME,
    ROLLED_BACK,
    STARTED,
    STEP_STATUSES,
    SUCCEEDED,
    TERMINAL_STATUSES,
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
    entry_from_dict,
    entry_from_json,
    redact,
)

if TYPE_CHECKING:
    from modelops.runtime import Runtime

    from .dynamo import DynamoLedger
    from .sqlite import SqliteLedger

LEDGER_FILE = "ledger.sqlite"
DEFAULT_TABLE = "modelops-ledger"

__all__ = [
    "ABORT", "DEFAULT_LOCK_TTL", "DEFAULT_TABLE", "ENTRY_KINDS", "FAILED", "INTENT_ACTIONS", "IN_PROGRESS",
    "LEDGER_FILE", "LOAD", "LOCK_HELD", "LOCK_HELD_HINT", "LOCK_LOST", "PAUSE", "PROMOTE", "REGRESSION",
    "RESUME", "ROLLED_BACK", "STARTED", "STEP_STATUSES", "SUCCEEDED", "TERMINAL_STATUSES", "TEST_KINDS",
    "Approval", "BuildRecord", "ChainProblem", "DeploymentStep", "DynamoLedger", "Entry", "HeldLock", "JudgmentRecord", "Ledger",
    "LedgerBase", "LedgerTamperedError", "LockHeldError", "LockHolder", "LockInfo", "LockLostError",
    "ModelChain", "RegionState", "ReleaseBlock", "ReleaseRecord", "RolloutControl", "RolloutIntent",
    "SqliteLedger", "TestRecord", "Verification", "entry_from_dict", "entry_from_json", "format_age",
    "idempotency_key", "is_lock_stale", "is_process_alive", "open_ledger", "redact", "serving_release",
    "sqlite_ledger",
]


class EnvironmentClients(Protocol):
    """What the ledger needs of an environment's clients (a :class:`modelops.clients.Clients`): its
    cloud, a client per (service, region). The ledger sits below config and clients in the layers, so
    it names the shape, not the class."""

    @property
    def cloud(self) -> str: ...

    def client(self, service: str, region: str) -> Any: ...


def open_ledger(clients: EnvironmentClients, runtime: Runtime) -> Ledger:
    """The ledger of the environment ``clients`` serves; aws needs ``clients.environment.regions`` or
    ``$MODELOPS_LEDGER_REGION``."""
    if clients.cloud == "local":
        return sqlite_ledger(runtime)
    from .dynamo import DynamoLedger

    region = runtime.environ.get("MODELOPS_LEDGER_REGION") or _first_region(clients)
    table = runtime.environ.get("MODELOPS_LEDGER_TABLE") or DEFAULT_TABLE
    return DynamoLedger(clients.client("dynamodb", region), table=table, clock=runtime.clock,
                        user=runtime.user, region=region)


def sqlite_ledger(runtime: Runtime, path: Path | None = None) -> SqliteLedger:
    """The local ledger: ``path``, else ``runtime.local_cloud_dir / "ledger.sqlite"``."""
    from .sqlite import SqliteLedger

    return SqliteLedger(path or runtime.local_cloud_dir / LEDGER_FILE, clock=runtime.clock, user=runtime.user)


def _first_region(clients: EnvironmentClients) -> str:
    environment = getattr(clients, "environment", None)
    regions = getattr(environment, "regions", None) or ()
    if not regions:
        from modelops.errors import InputError

        raise InputError("the ledger's region is unknown: the environment lists no regions",
                         hint="set MODELOPS_LEDGER_REGION or give the environment regions")
    return str(regions[0])


def __getattr__(name: str) -> Any:
    # The backends load on first use: `modelops --help` must not import sqlite3 or boto3 for them.
    if name == "SqliteLedger":
        from .sqlite import SqliteLedger

        return SqliteLedger
    if name == "DynamoLedger":
        from .dynamo import DynamoLedger

        return DynamoLedger
    raise AttributeError(name)
