"""The ledger in one SQLite file, for local-cloud environments.

WAL mode lets readers run while one writer writes, from several processes and threads; every
thread gets its own connection, and ``busy_timeout`` makes a writer wait for another instead of
failing. An append is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock, taken up front):
read the model's chain head, insert the entry linked to it, move the head; so appends from any
number of threads and processes form one chain per model. Triggers refuse UPDATE and DELETE on
``entries``, so the history is append-only by construction; only ``locks`` and ``heads`` change.

Schema (version 2; a version 1 file gains the chain columns and ``heads`` when first opened, its
entries left as they are: see :mod:`modelops.ledger.chain` on entries older than the chain)::

    entries(seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- append order
            entry_id TEXT UNIQUE, entry, model, release, environment, region, at REAL,
            idempotency_key TEXT UNIQUE,              -- NULL for keyless appends
            body TEXT,                                -- the record's JSON
            chain_seq INTEGER, prev_hash TEXT, entry_hash TEXT,  -- the model's chain (NULL: older)
            UNIQUE (model, chain_seq))
    heads(model PRIMARY KEY, chain_seq INTEGER, entry_hash TEXT)   -- each model's last link
    locks(model, environment, token, holder TEXT (JSON), acquired_at REAL, heartbeat_at REAL, ttl REAL,
          PRIMARY KEY (model, environment))
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from modelops.errors import EnvironmentFailedError, is_disk_full
from modelops.runtime import Clock

from .base import LedgerBase
from .chain import Head, StoredEntry, entry_hash, genesis_hash
from .records import Entry, LockHolder, LockInfo, entry_from_json

SCHEMA_VERSION = 2
_FILTER_COLUMNS = frozenset({"environment", "region", "release"})
CANNOT_OPEN = "ledger {path}: cannot open ({error})"
CANNOT_OPEN_HINT = "check that the directory is writable and the file is not corrupt"
EMPTY_FILE = "the file is empty, 0 bytes: not a database"
DISK_FULL = "ledger {path}: the disk is full ({error})"
DISK_FULL_HINT = "free space on the disk holding {directory}, then run the command again"
NEWER_SCHEMA = "ledger {path}: written by a newer modelops (schema {found}, this one reads {supported})"
NEWER_SCHEMA_HINT = "upgrade modelops"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    model TEXT NOT NULL,
    release TEXT,
    environment TEXT,
    region TEXT,
    at REAL NOT NULL,
    idempotency_key TEXT UNIQUE,
    body TEXT NOT NULL,
    chain_seq INTEGER,
    prev_hash TEXT,
    entry_hash TEXT
);
CREATE INDEX IF NOT EXISTS entries_by_model ON entries (model, entry, environment, region, seq);
CREATE INDEX IF NOT EXISTS entries_release ON entries (release, seq);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TABLE IF NOT EXISTS locks (
    model TEXT NOT NULL,
    environment TEXT NOT NULL,
    token TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    ttl REAL NOT NULL,
    PRIMARY KEY (model, environment)
);
"""
# The chain's parts: made with a new file, and added to a version 1 file.
_CHAIN = """
CREATE UNIQUE INDEX IF NOT EXISTS entries_chain ON entries (model, chain_seq);
CREATE TABLE IF NOT EXISTS heads (
    model TEXT PRIMARY KEY,
    chain_seq INTEGER NOT NULL,
    entry_hash TEXT NOT NULL
);
"""
_FROM_VERSION_1 = """
ALTER TABLE entries ADD COLUMN chain_seq INTEGER;
ALTER TABLE entries ADD COLUMN prev_hash TEXT;
ALTER TABLE entries ADD COLUMN entry_hash TEXT;
"""


class SqliteLedger(LedgerBase):
    """The ledger in the SQLite file at ``path`` (created with its directory on first use)."""

    def __init__(self, path: Path, *, clock: Clock | None = None, user: str = "unknown",
                 busy_timeout: float = 30.0):
        super().__init__(clock=clock, user=user)
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn()  # fail early on an unusable path

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._create()
            # A new ledger appears complete (_create), so an empty file is a damaged one (truncated, or
            # written when the disk filled up): refused like a truncated file, never read as "no history".
            if self.path.is_file() and self.path.stat().st_size == 0:
                raise EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=EMPTY_FILE),
                                             hint=CANNOT_OPEN_HINT)
            # isolation_level=None: autocommit; each statement below is its own transaction.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise EnvironmentFailedError(
                    NEWER_SCHEMA.format(path=self.path, found=version, supported=SCHEMA_VERSION),
                    hint=NEWER_SCHEMA_HINT)
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Another process may have made the schema while this one waited for the write lock.
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version >= SCHEMA_VERSION:
                        conn.execute("COMMIT")
                        return conn
                    script = _FROM_VERSION_1 if version == 1 else _SCHEMA
                    for statement in _statements(script + _CHAIN):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            return conn
        except (sqlite3.Error, OSError) as exc:
            raise self._failure(exc) from exc

    def _create(self) -> None:
        """Make a complete ledger under a temporary name and link it into place: no reader ever sees
        a half-made (empty) file. Another process that got there first wins; its file is as complete."""
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                for statement in _statements(_SCHEMA + _CHAIN):  # what _open makes of a new file
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            finally:
                conn.close()
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                leftover.unlink(missing_ok=True)

    def _failure(self, exc: BaseException) -> EnvironmentFailedError:
        """What SQLite (or the file system) failing says to the user: a full disk, or a file that cannot be used."""
        error = (exc.strerror or exc) if isinstance(exc, OSError) else exc
        if is_disk_full(exc, self.path.parent):
            return EnvironmentFailedError(DISK_FULL.format(path=self.path, error=error),
                                          hint=DISK_FULL_HINT.format(directory=self.path.parent))
        return EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=error), hint=CANNOT_OPEN_HINT)

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (a persistent setting, so only its first opener changes it).

        SQLite does not call the busy handler for that switch: when processes open a new ledger at
        once, it fails at once with "database is locked", so it is retried up to ``busy_timeout``."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _thread_done(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._all_lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn.close()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise self._failure(exc) from exc

    # -- entries -------------------------------------------------------------------------------
    def _append(self, entry: Entry, idempotency_key: str | None) -> bool:
        conn, body, entry_id = self._conn(), entry.to_json(), uuid.uuid4().hex
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock first: the head read below stays the head
            try:
                if idempotency_key is not None and conn.execute(
                        "SELECT 1 FROM entries WHERE idempotency_key = ?", (idempotency_key,)).fetchone():
                    conn.execute("COMMIT")
                    return False
                head = self._head_in(conn, entry.model)
                if head is None:
                    seq, prev = 1, genesis_hash(entry.model, (b for (b,) in conn.execute(
                        "SELECT body FROM entries WHERE model = ? AND chain_seq IS NULL ORDER BY seq",
                        (entry.model,))))
                else:
                    seq, prev = head.seq + 1, head.hash
                link = entry_hash(model=entry.model, seq=seq, prev_hash=prev, entry_id=entry_id, body=body)
                conn.execute(
                    "INSERT INTO entries (entry_id, entry, model, release, environment, region, at, idempotency_key,"
                    " body, chain_seq, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry_id, entry.KIND, entry.model, entry.release_id, entry.environment_name, entry.region_name,
                     entry.at, idempotency_key, body, seq, prev, link))
                conn.execute("INSERT INTO heads (model, chain_seq, entry_hash) VALUES (?, ?, ?) ON CONFLICT (model)"
                             " DO UPDATE SET chain_seq = excluded.chain_seq, entry_hash = excluded.entry_hash",
                             (entry.model, seq, link))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            # A position already taken: the head was set back or deleted outside modelops.
            self.verify(entry.model).raise_if_broken()
            raise EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=exc), hint=CANNOT_OPEN_HINT) from exc
        except sqlite3.OperationalError as exc:
            raise EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=exc),
                                         hint=CANNOT_OPEN_HINT) from exc
        return True

    @staticmethod
    def _head_in(conn: sqlite3.Connection, model: str) -> Head | None:
        row = conn.execute("SELECT chain_seq, entry_hash FROM heads WHERE model = ?", (model,)).fetchone()
        return Head(int(row[0]), str(row[1])) if row else None

    def _head(self, model: str) -> Head | None:
        try:
            return self._head_in(self._conn(), model)
        except sqlite3.OperationalError as exc:
            raise EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=exc),
                                         hint=CANNOT_OPEN_HINT) from exc

    def _snapshot(self, model: str) -> tuple[list[StoredEntry], Head | None]:
        conn = self._conn()
        try:
            conn.execute("BEGIN")  # one read transaction: WAL gives both reads the same snapshot
            try:
                rows = conn.execute(
                    "SELECT entry_id, body, chain_seq, prev_hash, entry_hash, entry, model, release, environment,"
                    " region FROM entries WHERE model = ? ORDER BY seq", (model,)).fetchall()
                head = self._head_in(conn, model)
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise EnvironmentFailedError(CANNOT_OPEN.format(path=self.path, error=exc),
                                         hint=CANNOT_OPEN_HINT) from exc
        entries = [StoredEntry(entry_id=str(r[0]), body=str(r[1]), seq=r[2], prev_hash=r[3], entry_hash=r[4],
                               columns=dict(zip(("entry", "model", "release", "environment", "region"), r[5:],
                                                strict=True)))
                   for r in rows]
        return entries, head

    @property
    def name(self) -> str:
        return str(self.path)

    def _select(self, column: str, value: str, cls: type[Entry] | None, where: dict[str, str]) -> list[Entry]:
        conditions, params = [f"{column} = ?"], [value]
        if cls is not None:
            conditions.append("entry = ?")
            params.append(cls.KIND)
        for name, wanted in where.items():
            if name not in _FILTER_COLUMNS:
                raise ValueError(f"cannot filter ledger entries by {name!r}")
            conditions.append(f"{name} = ?")
            params.append(wanted)
        rows = self._execute(f"SELECT body FROM entries WHERE {' AND '.join(conditions)} ORDER BY seq",  # fixed column names only
                             tuple(params))
        return [entry_from_json(body) for (body,) in rows]

    def _model_entries(self, model: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        return self._select("model", model, cls, where)

    def _release_entries(self, release: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        return self._select("release", release, cls, where)

    def models(self) -> tuple[str, ...]:
        return tuple(m for (m,) in self._execute("SELECT DISTINCT model FROM entries ORDER BY model"))

    # -- locks ---------------------------------------------------------------------------------
    def lock_info(self, model: str, environment: str) -> LockInfo | None:
        row = self._execute(
            "SELECT token, holder, acquired_at, heartbeat_at, ttl FROM locks WHERE model = ? AND environment = ?",
            (model, environment)).fetchone()
        if row is None:
            return None
        token, holder, acquired_at, heartbeat_at, ttl = row
        return LockInfo(model=model, environment=environment, holder=LockHolder.from_dict(json.loads(holder)),
                        acquired_at=acquired_at, heartbeat_at=heartbeat_at, token=token, ttl=ttl)

    def _lock_insert(self, info: LockInfo) -> bool:
        cur = self._execute(
            "INSERT INTO locks (model, environment, token, holder, acquired_at, heartbeat_at, ttl)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, environment) DO NOTHING",
            (info.model, info.environment, info.token, json.dumps(info.holder.to_dict()), info.acquired_at,
             info.heartbeat_at, info.ttl))
        return cur.rowcount == 1

    def _lock_replace(self, info: LockInfo, expected_token: str) -> bool:
        cur = self._execute(
            "UPDATE locks SET token = ?, holder = ?, acquired_at = ?, heartbeat_at = ?, ttl = ?"
            " WHERE model = ? AND environment = ? AND token = ?",
            (info.token, json.dumps(info.holder.to_dict()), info.acquired_at, info.heartbeat_at, info.ttl,
             info.model, info.environment, expected_token))
        return cur.rowcount == 1

    def _lock_touch(self, info: LockInfo, now: float) -> bool:
        cur = self._execute("UPDATE locks SET heartbeat_at = ? WHERE model = ? AND environment = ? AND token = ?",
                            (now, info.model, info.environment, info.token))
        return cur.rowcount == 1

    def _lock_delete(self, info: LockInfo) -> bool:
        cur = self._execute("DELETE FROM locks WHERE model = ? AND environment = ? AND token = ?",
                            (info.model, info.environment, info.token))
        return cur.rowcount == 1


def _statements(script: str) -> list[str]:
    """``script`` split into statements (triggers keep their ``BEGIN ... END;`` bodies)."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out
