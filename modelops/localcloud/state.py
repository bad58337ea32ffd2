"""The local cloud's durable state: one SQLite file in the data dir, one JSON document per resource.

Resources (models, endpoint configs, endpoints with their deployment progress, tags, container
instances) live in memory in the server and are written through here on every change of the
control plane or of a rollout step, never on the InvokeEndpoint path. WAL mode keeps a write to a
few milliseconds and lets ``sqlite3`` readers look while the server runs.

Writes come first: a caller changes its memory only after :meth:`Store.write` returned, and one
call writes all the documents of one change in one transaction, so a failed write (a full disk)
leaves both the file and the memory as they were. Such a failure is a :class:`StateUnavailable`,
the ServiceUnavailable the service answers when it cannot do its work right now.

:func:`open_database` is how every state file of the local cloud is opened: a new file appears
complete (made under a temporary name, then linked into place), so a file that exists and is empty
is damaged (a truncation, a disk that filled up at the wrong moment) and is refused, as a truncated
file is, instead of being taken for an empty state.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from modelops.errors import is_disk_full
from modelops.localcloud.protocol import UNAVAILABLE, ServiceError

DB_FILE = "state.sqlite"
DISK_FULL = "The local cloud cannot save its state: the disk holding {path} is full. Free some space, then retry."
CANNOT_SAVE = "The local cloud cannot save its state in {path}: {reason}. Retry; `modelops local logs` tells more."
EMPTY_FILE = "the file is empty (0 bytes), not a database"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,      -- model | endpoint-config | endpoint | tags | instance
    region TEXT NOT NULL,
    name TEXT NOT NULL,      -- lower-cased name (SageMaker names are case-insensitive), ARN for tags
    body TEXT NOT NULL,      -- the JSON document
    PRIMARY KEY (kind, region, name)
)
"""

# One change of a document: (kind, region, name, the document or None to delete it).
Change = tuple[str, str, str, Any]


class DamagedStateError(Exception):
    """A state file SQLite cannot use as a database (truncated, empty, not a database at all)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StateUnavailable(ServiceError):
    """The state could not be written (or read): answered as ServiceUnavailable, the memory unchanged."""

    def __init__(self, path: Path, exc: BaseException):
        message = (DISK_FULL.format(path=path.parent) if is_disk_full(exc, path.parent)
                   else CANNOT_SAVE.format(path=path, reason=exc))
        super().__init__(UNAVAILABLE, message, 503)
        self.disk_full = is_disk_full(exc, path.parent)


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """Open (or create, complete with ``schema``) a state file in WAL mode, for use from any thread.

    Raises DamagedStateError for a file that is no database (an empty one included) and
    StateUnavailable when it cannot be created or opened (a full disk, a read-only directory)."""
    try:
        if not path.exists():
            _create(path, schema)
        if path.stat().st_size == 0:
            raise DamagedStateError(path, EMPTY_FILE)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(schema)
        except BaseException:
            db.close()
            raise
        return db
    except sqlite3.OperationalError as exc:
        raise StateUnavailable(path, exc) from exc
    except sqlite3.DatabaseError as exc:  # not a database, corrupt
        raise DamagedStateError(path, str(exc)) from exc
    except OSError as exc:
        raise StateUnavailable(path, exc) from exc


def _create(path: Path, schema: str) -> None:
    """Make a complete database under a temporary name and link it into place (another process or
    thread that got there first wins; its file is as complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(path: Path, lock: threading.Lock, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction on ``db`` under ``lock``: committed when the block ends, rolled back (and
    raised as StateUnavailable) when SQLite fails."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateUnavailable(path, exc) from exc


class Store:
    """Write-through persistence of the server's in-memory documents (thread-safe)."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / DB_FILE
        self._lock = threading.Lock()
        self._db = open_database(self.path, _SCHEMA)

    def load(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT region, name, body FROM resources WHERE kind = ?", (kind,)).fetchall()
        return {(region, name): json.loads(body) for region, name, body in rows}

    def write(self, changes: Iterable[Change]) -> None:
        """Write every change in one transaction (all or none; StateUnavailable when none)."""
        rows = [(kind, region, name, None if doc is None else json.dumps(doc, separators=(",", ":"), default=str))
                for kind, region, name, doc in changes]
        with writing(self.path, self._lock, self._db) as db:
            for kind, region, name, body in rows:
                if body is None:
                    db.execute("DELETE FROM resources WHERE kind = ? AND region = ? AND name = ?", (kind, region, name))
                else:
                    db.execute("INSERT OR REPLACE INTO resources (kind, region, name, body) VALUES (?, ?, ?, ?)",
                               (kind, region, name, body))

    def put(self, kind: str, region: str, name: str, doc: Any) -> None:
        self.write([(kind, region, name, doc)])

    def delete(self, kind: str, region: str, name: str) -> None:
        self.write([(kind, region, name, None)])

    def close(self) -> None:
        with self._lock:
            self._db.close()
