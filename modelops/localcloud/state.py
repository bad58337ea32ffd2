"""The local cloud's durable state: one SQLite file in the data dir, one JSON document per resource.

Resources (models, endpoint configs, endpoints with their deployment progress, tags, container
instances) live in memory in the server and are written through here on every change of the
control plane or of a rollout step, never on the InvokeEndpoint path. WAL mode keeps a write to a
few milliseconds and lets ``sqlite3`` readers look while the server runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

DB_FILE = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,      -- model | endpoint-config | endpoint | tags | instance
    region TEXT NOT NULL,
    name TEXT NOT NULL,      -- lower-cased name (SageMaker names are case-insensitive), ARN for tags
    body TEXT NOT NULL,      -- the JSON document
    PRIMARY KEY (kind, region, name)
)
"""


class Store:
    """Write-through persistence of the server's in-memory documents (thread-safe)."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / DB_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def load(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT region, name, body FROM resources WHERE kind = ?", (kind,)).fetchall()
        return {(region, name): json.loads(body) for region, name, body in rows}

    def put(self, kind: str, region: str, name: str, doc: Any) -> None:
        body = json.dumps(doc, separators=(",", ":"), default=str)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO resources (kind, region, name, body) VALUES (?, ?, ?, ?)",
                             (kind, region, name, body))

    def delete(self, kind: str, region: str, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE kind = ? AND region = ? AND name = ?", (kind, region, name))

    def close(self) -> None:
        with self._lock:
            self._db.close()
