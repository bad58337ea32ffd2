"""CloudWatch's metric store: per-second aggregates, buffered in memory, persisted in SQLite.

A series is (region, namespace, metric name, dimensions). Each second of a series is an aggregate:
sample count, sum, minimum, maximum and, for latency-like metrics, a log-bucketed histogram (1%
wide buckets, so percentiles are within 0.5% of the exact value, clamped to the exact min/max).
Recording is O(1) under one lock and touches no disk; a flush moves completed seconds to SQLite.
Queries merge SQLite rows with the unflushed seconds, so they never miss or double-count data.
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

Dimensions = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
SeriesKey = tuple[str, str, str, Dimensions]  # region, namespace, metric name, dimensions
# One InvokeEndpoint as recorded: its variant's five series keys (Invocations, Invocation4XXErrors,
# Invocation5XXErrors, ModelLatency, OverheadLatency), second, status, model and overhead latency.
VariantKeys = tuple[SeriesKey, SeriesKey, SeriesKey, SeriesKey, SeriesKey]
Invocation = tuple[VariantKeys, int, int, float | None, float | None]

_LOG_BASE = math.log(1.01)
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
RETENTION_SECONDS = 3 * 86400

_SCHEMA = """
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
    _pending: dict[SeriesKey, dict[int, Aggregate]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Invocations not yet folded into ``_pending`` (deque appends and pops are thread-safe).
    _raw: deque[Invocation] = field(default_factory=deque)

    def __post_init__(self) -> None:
        with self.db_lock:
            self.connection.executescript(_SCHEMA)

    def add(self, key: SeriesKey, second: int, value: float, *, histogram: bool, unit: str | None) -> None:
        """Record one sample (the hot path: a dict lookup and a few additions under the lock)."""
        with self._lock:
            seconds = self._pending.get(key)
            if seconds is None:
                seconds = self._pending[key] = {}
            agg = seconds.get(second)
            if agg is None:
                agg = seconds[second] = Aggregate(unit=unit)
            agg.add(value, histogram=histogram)

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
                agg = seconds.get(second)
                if agg is None:
                    agg = seconds[second] = Aggregate(unit="Microseconds" if i >= 3 else "None")
                agg.add(value, histogram=i >= 3)

    def add_aggregate(self, key: SeriesKey, second: int, agg: Aggregate) -> None:
        with self._lock:
            seconds = self._pending.setdefault(key, {})
            if second in seconds:
                seconds[second].merge(agg)
            else:
                seconds[second] = agg

    def flush(self, before: int | None = None) -> int:
        """Persist the seconds before ``before`` (all when None); returns how many rows were written."""
        with self._lock:
            self._fold()
            taken: list[tuple[SeriesKey, int, Aggregate]] = []
            for key, seconds in list(self._pending.items()):
                for second in [s for s in seconds if before is None or s < before]:
                    taken.append((key, second, seconds.pop(second)))
                if not seconds:
                    del self._pending[key]
        if not taken:
            return 0
        rows = [
            (
                key[0], key[1], key[2], json.dumps(key[3]), second, agg.count, agg.total, agg.minimum,
                agg.maximum, json.dumps(agg.histogram) if agg.histogram else None, agg.unit,
            )
            for key, second, agg in taken
        ]  # fmt: skip
        with self.db_lock, self.connection:
            self.connection.executemany("INSERT INTO datapoints VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def purge(self, before: int) -> None:
        with self.db_lock, self.connection:
            self.connection.execute("DELETE FROM datapoints WHERE second < ?", (before,))

    def seconds(self, key: SeriesKey, start: float, end: float) -> list[tuple[int, Aggregate]]:
        """Every per-second aggregate of ``key`` in [start, end), persisted and pending, in time order."""
        region, namespace, metric, dims = key
        with self.db_lock:
            rows = self.connection.execute(
                "SELECT second, count, sum, min, max, hist, unit FROM datapoints WHERE region=? AND "
                "namespace=? AND metric=? AND dimensions=? AND second>=? AND second<? ",
                (region, namespace, metric, json.dumps(dims), math.floor(start), math.ceil(end)),
            ).fetchall()
        out = [
            (
                second,
                Aggregate(
                    count, total, low, high,
                    {int(k): v for k, v in json.loads(hist).items()} if hist else None, unit,
                ),
            )
            for second, count, total, low, high, hist, unit in rows
            if start <= second < end
        ]  # fmt: skip
        with self._lock:
            self._fold()
            for second, agg in self._pending.get(key, {}).items():
                if start <= second < end:
                    copy = Aggregate(agg.count, agg.total, agg.minimum, agg.maximum, None, agg.unit)
                    if agg.histogram:
                        copy.histogram = dict(agg.histogram)
                    out.append((second, copy))
        out.sort(key=lambda item: item[0])
        return out

    def window(self, key: SeriesKey, start: float, end: float) -> Aggregate:
        """All samples of ``key`` in [start, end) merged into one aggregate."""
        total = Aggregate()
        for _, agg in self.seconds(key, start, end):
            total.merge(agg)
        return total

    def periods(self, key: SeriesKey, start: float, end: float, period: int) -> dict[int, Aggregate]:
        """Aggregates per period (aligned to multiples of ``period`` since the epoch) in [start, end)."""
        out: dict[int, Aggregate] = {}
        for second, agg in self.seconds(key, start, end):
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
