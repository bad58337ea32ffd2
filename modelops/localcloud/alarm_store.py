"""CloudWatch's alarms as stored: one row per alarm in ``cloudwatch.sqlite``, beside the metrics.

A row holds the alarm's configuration (the PutMetricAlarm request, tags apart), its tags, its last
evaluated state with reason and reason data, and when a SetAlarmState stops holding. Every method is
one transaction (StateUnavailable when SQLite fails: nothing changed).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.localcloud.state import writing

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    region TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
    reason_data TEXT, state_updated REAL NOT NULL, config_updated REAL NOT NULL,
    forced_until REAL NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (region, name)
);
"""
_COLUMNS = "name, config, state, reason, reason_data, state_updated, config_updated, forced_until, tags"


@dataclass(frozen=True)
class AlarmRow:
    name: str
    config_json: str
    state: str
    reason: str
    reason_data: str | None
    state_updated: float
    config_updated: float
    forced_until: float
    tags_json: str

    @property
    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.config_json))

    @property
    def tags(self) -> list[dict[str, str]]:
        return list(json.loads(self.tags_json))


class AlarmStore:
    """The alarms of every region (thread-safe: one lock with the metric store over one connection)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, path: Path):
        self._db = db
        self._lock = lock
        self.path = path
        with lock:  # alarms tables of earlier versions had no tags column
            columns = {row[1] for row in db.execute("PRAGMA table_info(alarms)")}
        if "tags" not in columns:
            with writing(path, lock, db) as tx:
                tx.execute("ALTER TABLE alarms ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'")

    def get(self, region: str, name: str) -> AlarmRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE region=? AND name=?", (region, name)).fetchone()
        return AlarmRow(*row) if row else None

    def list(self, region: str | None = None) -> list[tuple[str, AlarmRow]]:
        """(region, alarm) of every alarm, of one region when given, by region and name."""
        with self._lock:
            rows = self._db.execute(f"SELECT region, {_COLUMNS} FROM alarms WHERE ? IS NULL OR region=? "
                                    "ORDER BY region, name", (region, region)).fetchall()
        return [(row[0], AlarmRow(*row[1:])) for row in rows]

    def put(self, region: str, name: str, config: dict[str, Any], tags: Sequence[dict[str, str]], now: float,
            *, state: str, reason: str) -> bool:
        """Create the alarm (with ``tags``, ``state`` and ``reason``) or update its configuration (its
        tags and state stay, as PutMetricAlarm on an existing alarm does); True when created."""
        with writing(self.path, self._lock, self._db) as db:
            updated = db.execute("UPDATE alarms SET config=?, config_updated=? WHERE region=? AND name=?",
                                 (json.dumps(config), now, region, name)).rowcount
            if not updated:
                db.execute("INSERT INTO alarms (region, name, config, state, reason, reason_data, state_updated, "
                           "config_updated, tags) VALUES (?,?,?,?,?,?,?,?,?)",
                           (region, name, json.dumps(config), state, reason, None, now, now, json.dumps(list(tags))))
        return not updated

    def delete(self, region: str, names: Sequence[str]) -> None:
        with writing(self.path, self._lock, self._db) as db:
            db.executemany("DELETE FROM alarms WHERE region=? AND name=?", [(region, n) for n in names])

    def set_state(self, region: str, name: str, state: str, reason: str, reason_data: str | None, now: float, *,
                  forced_until: float = 0.0, config_updated: float | None = None) -> bool:
        """Record a state; with ``config_updated``, only if the configuration is still that one (an
        evaluation must not overwrite the state of an alarm changed meanwhile). True when recorded."""
        with writing(self.path, self._lock, self._db) as db:
            return bool(db.execute(
                "UPDATE alarms SET state=?, reason=?, reason_data=?, state_updated=?, forced_until=? WHERE region=? "
                "AND name=? AND (? IS NULL OR config_updated=?)",
                (state, reason, reason_data, now, forced_until, region, name, config_updated, config_updated)).rowcount)

    def set_actions_enabled(self, region: str, names: Sequence[str], enabled: bool) -> None:
        with writing(self.path, self._lock, self._db) as db:
            for name in names:
                row = db.execute("SELECT config FROM alarms WHERE region=? AND name=?", (region, name)).fetchone()
                if row is not None:
                    config = {**json.loads(row[0]), "ActionsEnabled": enabled}
                    db.execute("UPDATE alarms SET config=? WHERE region=? AND name=?",
                               (json.dumps(config), region, name))

    def set_tags(self, region: str, name: str, tags: Sequence[dict[str, str]]) -> bool:
        """Replace the alarm's tags; False when there is no such alarm."""
        with writing(self.path, self._lock, self._db) as db:
            return bool(db.execute("UPDATE alarms SET tags=? WHERE region=? AND name=?",
                                   (json.dumps(list(tags)), region, name)).rowcount)
