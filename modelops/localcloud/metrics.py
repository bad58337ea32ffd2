"""CloudWatch's metric store: per-second aggregates, buffered in memory, persisted in SQLite.

A series is (region, namespace, metric name, dimensions). Each second of a series holds one
aggregate per unit (CloudWatch keeps data published with different units apart: a query that names
a unit sees only that unit's data, one that names none sees all of it): sample count, sum, minimum,
maximum and, for latency-like metrics, a log-bucketed histogram (1% wide buckets, so percentiles are
within 0.5% of the exact value, clamped to the exact min/max). Recording is O(1) under one lock and
touches no disk; a flush moves completed seconds to SQLite, and puts them back if the write fails (a
full disk), so they are written by a later flush. Queries merge SQLite rows with the unflushed
seconds, so they never miss or double-count data.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelops.localcloud.state import writing

Dimensions = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
SeriesKey = tuple[str, str, str, Dimensions]  # region, namespace, metric name, dimensions
Slot = tuple[int, str | None]  # a second of a series and the unit of its data
# One InvokeEndpoint as recorded: its variant's five series keys (Invocations, Invocation4XXErrors,
# Invocation5XXErrors, ModelLatency, OverheadLatency), second, status, model and overhead latency.
VariantKeys = tuple[SeriesKey, SeriesKey, SeriesKey, SeriesKey, SeriesKey]
Invocation = tuple[VariantKeys, int, int, float | None, float | None]

_LOG_BASE = math.log(1.01)
# The units of an invocation's five samples (SageMaker's: counts have none, latencies are in microseconds).
_INVOCATION_UNITS = ("None", "None", "None", "Microseconds", "Microseconds")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
RETENTION_SECONDS = 3 * 86400

SCHEMA = """
CREATE TABLE IF NOT EXISTS datapoints (
    region TEXT NOT NULL, namespace TEXT NOT NULL, metric TEXT NOT NULL, dimensions TEXT NOT NULL,
    second INTEGER NOT NULL, count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
    max REAL NOT NULL, hist TEXT, unit TEXT
);
CREATE INDEX IF NOT EXISTS datapoints_series
    ON datapoints (region, namespace, metric, dimensions, second);
"""


@dataclass
class Aggregate:
    """Samples of one series over some time: enough for every CloudWatch statistic."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    histogram: dict[int, float] | None = None
    unit: str | None = None

    def add(self, value: float, *, histogram: bool) -> None:
        self.count += 1
        self.total += value
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if histogram:
            if self.histogram is None:
                self.histogram = {}
            index = _bucket(value)
            self.histogram[index] = self.histogram.get(index, 0.0) + 1

    def add_values(self, values: Sequence[float], counts: Sequence[float] | None, *, histogram: bool) -> None:
        for i, value in enumerate(values):
            weight = counts[i] if counts else 1.0
            self.count += weight
            self.total += value * weight
            self.minimum = min(self.minimum, value)
            self.maximum = max(self.maximum, value)
            if histogram:
                if self.histogram is None:
                    self.histogram = {}
                index = _bucket(value)
                self.histogram[index] = self.histogram.get(index, 0.0) + weight

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.unit = self.unit or other.unit
        if other.histogram:
            if self.histogram is None:
                self.histogram = {}
            for index, weight in other.histogram.items():
                self.histogram[index] = self.histogram.get(index, 0.0) + weight

    def statistic(self, name: str) -> float | None:
        """A CloudWatch statistic (SampleCount, Average, Sum, Minimum, Maximum, pNN); None without data."""
        if self.count <= 0:
            return None
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Average":
            return self.total / self.count
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        match = PERCENTILE.match(name)
        if match is None:
            raise ValueError(name)
        return self._percentile(float(match.group(1)))

    def _percentile(self, percent: float) -> float:
        if percent >= 100:
            return self.maximum
        if not self.histogram:
            # No histogram (a counter such as Invocations): every sample has the same weight; the
            # best answer from min/max/average alone is the average, clamped.
            return _clamp(self, self.total / self.count)
        rank = max(1.0, math.ceil(percent / 100 * self.count))
        seen = 0.0
        for index in sorted(self.histogram):
            seen += self.histogram[index]
            if seen >= rank:
                return _clamp(self, _bucket_value(index))
        return self.maximum


def _bucket(value: float) -> int:
    if value < 1:
        return 0 if value >= 0 else -1
    return 1 + int(math.log(value) / _LOG_BASE)


def _bucket_value(index: int) -> float:
    if index <= 0:
        return 0.0
    return math.exp((index - 0.5) * _LOG_BASE)


def _clamp(agg: Aggregate, value: float) -> float:
    return min(max(value, agg.minimum), agg.maximum)


def dimensions_key(dimensions: Iterable[tuple[str, str]]) -> Dimensions:
    return tuple(sorted((str(name), str(value)) for name, value in dimensions))


@dataclass
class MetricStore:
    """Per-second aggregates of every series; thread-safe. ``flush()`` persists completed seconds."""

    connection: sqlite3.Connection
    db_lock: threading.Lock
    path: Path  # the database file (named in errors)
    _pending: dict[SeriesKey, dict[Slot, Aggregate]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Invocations not yet folded into ``_pending`` (deque appends and pops are thread-safe).
    _raw: deque[Invocation] = field(default_factory=deque)

    def add_invocation(
        self,
        keys: VariantKeys,
        second: int,
        status_code: int,
        model_latency: float | None,
        overhead_latency: float | None,
    ) -> None:
        """One InvokeEndpoint's five samples (Invocations, 4XX, 5XX, ModelLatency, OverheadLatency).

        The runtime's hot path, so it only appends to a deque (no lock, no aggregate): every reader
        and the flush fold what is queued into the per-second aggregates first, so no query misses it.
        """
        self._raw.append((keys, second, status_code, model_latency, overhead_latency))

    def _fold(self) -> None:
        """Fold the queued invocations into ``_pending`` (called with ``_lock`` held)."""
        raw = self._raw
        pending = self._pending
        for _ in range(len(raw)):
            keys, second, status_code, model_latency, overhead_latency = raw.popleft()
            error_4xx = 1.0 if 400 <= status_code < 500 else 0.0
            error_5xx = 1.0 if status_code >= 500 else 0.0
            values = (1.0, error_4xx, error_5xx, model_latency, overhead_latency)
            for i in range(5):
                value = values[i]
                if value is None:
                    continue
                key = keys[i]
                seconds = pending.get(key)
                if seconds is None:
                    seconds = pending[key] = {}
                unit = _INVOCATION_UNITS[i]
                agg = seconds.get((second, unit))
                if agg is None:
                    agg = seconds[(second, unit)] = Aggregate(unit=unit)
                agg.add(value, histogram=i >= 3)

    def add_aggregate(self, key: SeriesKey, second: int, agg: Aggregate) -> None:
        """Record samples put together (PutMetricData), under their own unit."""
        with self._lock:
            self._merge(key, (second, agg.unit), agg)

    def _merge(self, key: SeriesKey, slot: Slot, agg: Aggregate) -> None:
        seconds = self._pending.setdefault(key, {})
        if slot in seconds:
            seconds[slot].merge(agg)
        else:
            seconds[slot] = agg

    def flush(self, before: int | None = None) -> int:
        """Persist the seconds before ``before`` (all when None); returns how many rows were written.
        When SQLite fails, the seconds go back to the buffer (merged with what came meanwhile) and the
        error is raised: nothing recorded is lost."""
        with self._lock:
            self._fold()
            taken: list[tuple[SeriesKey, Slot, Aggregate]] = []
            for key, seconds in list(self._pending.items()):
                for slot in [s for s in seconds if before is None or s[0] < before]:
                    taken.append((key, slot, seconds.pop(slot)))
                if not seconds:
                    del self._pending[key]
        if not taken:
            return 0
        rows = [
            (
                key[0], key[1], key[2], json.dumps(key[3]), slot[0], agg.count, agg.total, agg.minimum,
                agg.maximum, json.dumps(agg.histogram) if agg.histogram else None, slot[1],
            )
            for key, slot, agg in taken
        ]  # fmt: skip
        try:
            with writing(self.path, self.db_lock, self.connection) as db:
                db.executemany("INSERT INTO datapoints VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        except BaseException:
            with self._lock:
                for key, slot, agg in taken:
                    self._merge(key, slot, agg)
            raise
        return len(rows)

    def purge(self, before: int) -> None:
        with writing(self.path, self.db_lock, self.connection) as db:
            db.execute("DELETE FROM datapoints WHERE second < ?", (before,))

    def seconds(self, key: SeriesKey, start: float, end: float, unit: str | None = None) -> list[tuple[int, Aggregate]]:
        """Every per-second aggregate of ``key`` in [start, end), persisted and pending, in time order;
        only the data of ``unit`` when one is given."""
        region, namespace, metric, dims = key
        with self.db_lock:
            rows = self.connection.execute(
                "SELECT second, count, sum, min, max, hist, unit FROM datapoints WHERE region=? AND "
                "namespace=? AND metric=? AND dimensions=? AND second>=? AND second<? AND (? IS NULL OR unit=?)",
                (region, namespace, metric, json.dumps(dims), math.floor(start), math.ceil(end), unit, unit),
            ).fetchall()
        out = [
            (
                second,
                Aggregate(
                    count, total, low, high,
                    {int(k): v for k, v in json.loads(hist).items()} if hist else None, row_unit,
                ),
            )
            for second, count, total, low, high, hist, row_unit in rows
            if start <= second < end
        ]  # fmt: skip
        with self._lock:
            self._fold()
            for (second, slot_unit), agg in self._pending.get(key, {}).items():
                if start <= second < end and (unit is None or slot_unit == unit):
                    copy = Aggregate(agg.count, agg.total, agg.minimum, agg.maximum, None, agg.unit)
                    if agg.histogram:
                        copy.histogram = dict(agg.histogram)
                    out.append((second, copy))
        out.sort(key=lambda item: item[0])
        return out

    def window(self, key: SeriesKey, start: float, end: float, unit: str | None = None) -> Aggregate:
        """All samples of ``key`` (of ``unit``, if given) in [start, end) merged into one aggregate."""
        total = Aggregate()
        for _, agg in self.seconds(key, start, end, unit):
            total.merge(agg)
        return total

    def periods(self, key: SeriesKey, start: float, end: float, period: int,
                unit: str | None = None) -> dict[int, Aggregate]:
        """Aggregates per period (aligned to multiples of ``period`` since the epoch) in [start, end)."""
        out: dict[int, Aggregate] = {}
        for second, agg in self.seconds(key, start, end, unit):
            bucket = second - second % period
            if bucket in out:
                out[bucket].merge(agg)
            else:
                out[bucket] = agg
        return out

    def list_series(self, region: str) -> list[SeriesKey]:
        with self.db_lock:
            rows = self.connection.execute(
                "SELECT DISTINCT namespace, metric, dimensions FROM datapoints WHERE region=?", (region,)
            ).fetchall()
        keys = {(region, ns, metric, tuple(tuple(pair) for pair in json.loads(dims))) for ns, metric, dims in rows}
        with self._lock:
            self._fold()
            keys.update(key for key in self._pending if key[0] == region)
        return sorted(keys)
