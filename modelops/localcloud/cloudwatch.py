"""CloudWatch for the local cloud: metric alarms and the ``AWS/SageMaker`` metrics of real traffic.

Protocols. CloudWatch's service model lists smithy-rpc-v2-cbor, json and query. botocore 1.44.8,
installed here, ranks json before CBOR (``botocore.utils.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS``),
so stock clients send json 1.0 (``POST /``, ``X-Amz-Target: GraniteServiceVersion20100801.<Op>``,
``x-amzn-query-mode: true``); a botocore that ranks CBOR first sends
``POST /service/GraniteServiceVersion20100801/operation/<Op>`` with ``smithy-protocol: rpc-v2-cbor``.
Both are served, errors included: the service is "query compatible", so an error carries the query
protocol's code in ``x-amzn-query-error`` (``ResourceNotFound;Sender``) and botocore reports that code.

Alarm evaluation. CloudWatch evaluates aligned, complete periods, about a minute behind. Bake
periods of rollouts here last seconds to minutes, so the local cloud evaluates an alarm at most once
a second, when someone looks (DescribeAlarms, ``alarms_in_alarm``), over sliding windows of
``Period`` seconds ending now: window 0 is the last Period, window 1 the one before, and so on for
EvaluationPeriods windows; DatapointsToAlarm of them must breach. TreatMissingData applies to
windows without samples. SetAlarmState forces a state for one Period, after which the alarm is
evaluated again (CloudWatch: "until the next period").
"""

from __future__ import annotations

import ast
import base64
import contextlib
import datetime as dt
import json
import math
import operator
import re
import sqlite3
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.localcloud.metrics import (
    PERCENTILE,
    RETENTION_SECONDS,
    STATISTICS,
    Aggregate,
    MetricStore,
    SeriesKey,
    VariantKeys,
    dimensions_key,
)
from modelops.runtime import Clock, SystemClock

SERVICE = "GraniteServiceVersion20100801"
CBOR_PATH_PREFIX = f"/service/{SERVICE}/operation/"
ACCOUNT = "000000000000"  # the local cloud's one account (modelops.localcloud.LOCAL_ACCOUNT)
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
_COMPARISON_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
MAX_DATAPOINTS = 1440
MAX_ALARMS_PER_PAGE = 100

# Error codes as the query protocol names them (what botocore reports), and their shapes' names.
_ERROR_SHAPES = {
    "ResourceNotFound": ("ResourceNotFound", 404),
    "InvalidParameterValue": ("InvalidParameterValueException", 400),
    "MissingParameter": ("MissingRequiredParameterException", 400),
    "InvalidParameterCombination": ("InvalidParameterCombinationException", 400),
    "LimitExceeded": ("LimitExceededFault", 400),
    "InvalidNextToken": ("InvalidNextToken", 400),
    "InvalidFormat": ("InvalidFormatFault", 400),
    "ValidationError": ("ValidationError", 400),
    "UnknownOperationException": ("UnknownOperationException", 400),
    "SerializationException": ("SerializationException", 400),
    "InternalServiceError": ("InternalServiceFault", 500),
}


class CloudWatchError(Exception):
    """An error answered in the service's shape: the query code, its message, its HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.shape, default_status = _ERROR_SHAPES.get(code, (code, 400))
        self.status = status or default_status




class CloudWatch:
    """The CloudWatch service of the local cloud, one instance per server, every region in it.

    ``data_dir`` holds ``cloudwatch.sqlite`` (alarms and persisted metrics). Metrics recorded with
    :meth:`record` stay in memory until the background flush (every ``flush_interval`` seconds,
    None: only on :meth:`flush`) writes the completed seconds.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        flush_interval: float | None = 1.0,
        evaluation_interval: float = 1.0,
    ):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._clock = clock or SystemClock()
        self._db = sqlite3.connect(Path(data_dir) / "cloudwatch.sqlite", check_same_thread=False, timeout=30)
        self._db_lock = threading.Lock()
        with self._db_lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS alarms (region TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL,"
                " state TEXT NOT NULL, reason TEXT NOT NULL, reason_data TEXT, state_updated REAL NOT NULL,"
                " config_updated REAL NOT NULL, forced_until REAL NOT NULL DEFAULT 0,"
                " PRIMARY KEY (region, name))"
            )
        self.store = MetricStore(self._db, self._db_lock)
        self._samples: dict[tuple[str, str, str], VariantKeys] = {}
        self._evaluated: dict[tuple[str, str], float] = {}
        self._evaluation_interval = evaluation_interval
        self._alarm_lock = threading.Lock()
        self._operations: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            "PutMetricAlarm": self._put_metric_alarm,
            "DescribeAlarms": self._describe_alarms,
            "DeleteAlarms": self._delete_alarms,
            "SetAlarmState": self._set_alarm_state,
            "GetMetricStatistics": self._get_metric_statistics,
            "GetMetricData": self._get_metric_data,
            "PutMetricData": self._put_metric_data,
            "ListMetrics": self._list_metrics,
        }
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_loop, args=(flush_interval,), name="cloudwatch-flush", daemon=True
            )
            self._flusher.start()

    # --- what the server calls -------------------------------------------------------------------

    def handles(self, path: str, headers: Mapping[str, str]) -> bool:
        """True when the request is for CloudWatch (either protocol)."""
        if path.startswith(CBOR_PATH_PREFIX):
            return True
        target = _header(headers, "x-amz-target") or ""
        return target.startswith(SERVICE + ".")

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, region: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one CloudWatch request: (HTTP status, response header pairs, body without its length)."""
        cbor = path.startswith(CBOR_PATH_PREFIX)
        request_id = str(uuid.uuid4())
        try:
            if cbor:
                name = path[len(CBOR_PATH_PREFIX) :].split("?")[0].strip("/")
            else:
                name = (_header(headers, "x-amz-target") or "").split(".", 1)[-1]
            if method != "POST":
                raise CloudWatchError("UnknownOperationException", f"{method} is not supported; use POST")
            operation = self._operations.get(name)
            if operation is None:
                raise CloudWatchError("UnknownOperationException", f"Operation {name or '(none)'} is not supported.")
            params = _decode(body, cbor=cbor)
            _validate(name, params)
            result = operation(region, params)
            return 200, _response_headers(cbor, request_id), _encode(result, cbor=cbor)
        except CloudWatchError as exc:
            error_headers = _response_headers(cbor, request_id)
            error_headers.append(("x-amzn-query-error", f"{exc.code};{'Sender' if exc.status < 500 else 'Receiver'}"))
            error_headers.append(("x-amzn-ErrorType", exc.shape))
            document = {"__type": f"com.amazonaws.cloudwatch#{exc.shape}", "message": exc.message}
            return exc.status, error_headers, _encode(document, cbor=cbor)
        except Exception as exc:  # a bug here must not take the server down or leak a traceback
            traceback.print_exc(file=sys.stderr)
            error_headers = _response_headers(cbor, request_id)
            error_headers.append(("x-amzn-query-error", "InternalServiceError;Receiver"))
            document = {"__type": "com.amazonaws.cloudwatch#InternalServiceFault", "message": type(exc).__name__}
            return 500, error_headers, _encode(document, cbor=cbor)

    def record(
        self,
        region: str,
        endpoint: str,
        variant: str,
        *,
        status_code: int,
        model_latency_us: int | None,
        overhead_latency_us: int | None,
    ) -> None:
        """Record one InvokeEndpoint as SageMaker does (the runtime's hot path: memory only, O(1)).

        Invocations counts every request; Invocation4XXErrors and Invocation5XXErrors are 0 or 1 per
        request (their Sum counts errors, their Average is the error rate); the latencies are in
        microseconds and None when the container was not reached.
        """
        sample = self._samples.get((region, endpoint, variant))
        if sample is None:
            sample = self._samples.setdefault((region, endpoint, variant), _sample_keys(region, endpoint, variant))
        self.store.add_invocation(
            sample, int(self._clock.now()), status_code,
            None if model_latency_us is None else float(model_latency_us),
            None if overhead_latency_us is None else float(overhead_latency_us),
        )  # fmt: skip

    def alarms_in_alarm(self, region: str, names: list[str] | tuple[str, ...]) -> list[str]:
        """The alarms among ``names`` whose state is ALARM now (each evaluated at most once a second)."""
        firing = []
        for name in names:
            row = self._alarm_row(region, name)
            if row is not None and self._current_state(region, row)["state"] == "ALARM":
                firing.append(name)
        return firing

    def flush(self) -> None:
        """Persist every recorded second now (the background flush writes completed seconds only)."""
        self.store.flush()

    def close(self) -> None:
        """Stop the flusher, persist what is buffered, close the database."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.store.flush()
        with self._db_lock:
            self._db.close()

    def _flush_loop(self, interval: float) -> None:
        last_purge = 0.0
        while not self._stop.wait(interval):
            try:
                now = self._clock.now()
                self.store.flush(before=int(now))
                if now - last_purge > 600:
                    self.store.purge(int(now) - RETENTION_SECONDS)
                    last_purge = now
            except sqlite3.Error:
                traceback.print_exc(file=sys.stderr)  # try again next time; the samples stay buffered

    # --- alarms ----------------------------------------------------------------------------------

    def _put_metric_alarm(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        config = _check_alarm(params)
        now = self._clock.now()
        name = config["AlarmName"]
        with self._alarm_lock, self._db_lock, self._db:
            updated = self._db.execute(
                "UPDATE alarms SET config=?, config_updated=? WHERE region=? AND name=?",
                (json.dumps(config), now, region, name),
            ).rowcount
            if not updated:
                self._db.execute(
                    "INSERT INTO alarms (region, name, config, state, reason, reason_data, state_updated,"
                    " config_updated) VALUES (?,?,?,?,?,?,?,?)",
                    (region, name, json.dumps(config), "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation",
                     None, now, now),
                )  # fmt: skip
        self._evaluated.pop((region, name), None)
        return {}

    def _describe_alarms(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        types = params.get("AlarmTypes")
        if types and "MetricAlarm" not in types:
            return {"MetricAlarms": [], "CompositeAlarms": []}
        max_records = int(params.get("MaxRecords", 50))
        if not 1 <= max_records <= MAX_ALARMS_PER_PAGE:
            raise CloudWatchError("ValidationError", f"MaxRecords must be between 1 and {MAX_ALARMS_PER_PAGE}.")
        with self._db_lock:
            rows = self._db.execute(
                "SELECT name, config, state, reason, reason_data, state_updated, config_updated, forced_until"
                " FROM alarms WHERE region=? ORDER BY name",
                (region,),
            ).fetchall()
        names = params.get("AlarmNames")
        prefix = params.get("AlarmNamePrefix")
        if names and prefix:
            raise CloudWatchError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be combined.")
        selected = [
            _AlarmRow(*row)
            for row in rows
            if (not names or row[0] in names) and (not prefix or row[0].startswith(prefix))
        ]
        start = 0
        if params.get("NextToken"):
            start = _decode_token(params["NextToken"], len(selected))
        alarms = []
        consumed = len(selected)
        for index in range(start, len(selected)):
            row = selected[index]
            current = self._current_state(region, row)
            if params.get("StateValue") and current["state"] != params["StateValue"]:
                continue
            if params.get("ActionPrefix") and not any(
                action.startswith(params["ActionPrefix"])
                for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
                for action in row.config.get(key, [])
            ):
                continue
            alarms.append(_describe_alarm(region, row, current))
            if len(alarms) == max_records:
                consumed = index + 1
                break
        result: dict[str, Any] = {"MetricAlarms": alarms, "CompositeAlarms": []}
        if consumed < len(selected):
            result["NextToken"] = _encode_token(consumed)
        return result

    def _delete_alarms(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        # Names that do not exist are ignored (deleting is idempotent), as moto and, in practice,
        # the service do; nothing is half-deleted either way.
        names = params.get("AlarmNames") or []
        if len(names) > 100:
            raise CloudWatchError("ValidationError", "AlarmNames may hold at most 100 names.")
        with self._alarm_lock, self._db_lock, self._db:
            self._db.executemany("DELETE FROM alarms WHERE region=? AND name=?", [(region, n) for n in names])
        for name in names:
            self._evaluated.pop((region, name), None)
        return {}

    def _set_alarm_state(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AlarmName"]
        state = params["StateValue"]
        if state not in STATES:
            raise CloudWatchError("ValidationError", f"StateValue {state!r} is not one of {', '.join(STATES)}.")
        reason_data = params.get("StateReasonData")
        if reason_data is not None:
            try:
                json.loads(reason_data)
            except ValueError as exc:
                raise CloudWatchError("InvalidFormat", "StateReasonData is not valid JSON.") from exc
        row = self._alarm_row(region, name)
        if row is None:
            raise CloudWatchError("ResourceNotFound", f"Alarm {name} not found")
        now = self._clock.now()
        with self._alarm_lock, self._db_lock, self._db:
            self._db.execute(
                "UPDATE alarms SET state=?, reason=?, reason_data=?, state_updated=?, forced_until=?"
                " WHERE region=? AND name=?",
                (state, params["StateReason"], reason_data, now, now + _alarm_period(row.config), region, name),
            )
        self._evaluated[(region, name)] = now
        return {}

    def _alarm_row(self, region: str, name: str) -> _AlarmRow | None:
        with self._db_lock:
            row = self._db.execute(
                "SELECT name, config, state, reason, reason_data, state_updated, config_updated, forced_until"
                " FROM alarms WHERE region=? AND name=?",
                (region, name),
            ).fetchone()
        return _AlarmRow(*row) if row else None

    def _current_state(self, region: str, row: _AlarmRow) -> dict[str, Any]:
        """The alarm's state now, evaluating it (and persisting a change) when it is due."""
        stored = {"state": row.state, "reason": row.reason, "reason_data": row.reason_data,
                  "updated": row.state_updated}  # fmt: skip
        now = self._clock.now()
        if now < row.forced_until:
            return stored  # SetAlarmState holds until the next evaluation period
        last = self._evaluated.get((region, row.name))
        if last is not None and now - last < self._evaluation_interval:
            return stored
        self._evaluated[(region, row.name)] = now
        state, reason, reason_data = self._evaluate(region, row.config, row.state, now)
        if state == row.state:
            return stored
        with self._alarm_lock, self._db_lock, self._db:
            self._db.execute(
                "UPDATE alarms SET state=?, reason=?, reason_data=?, state_updated=? WHERE region=? AND name=?"
                " AND config_updated=?",
                (state, reason, reason_data, now, region, row.name, row.config_updated),
            )
        return {"state": state, "reason": reason, "reason_data": reason_data, "updated": now}

    def _evaluate(self, region: str, config: dict[str, Any], current: str, now: float) -> tuple[str, str, str]:
        period = _alarm_period(config)
        periods = int(config["EvaluationPeriods"])
        needed = int(config.get("DatapointsToAlarm") or periods)
        treat = config.get("TreatMissingData") or "missing"
        compare = COMPARISONS[config["ComparisonOperator"]]
        threshold = float(config["Threshold"])
        values = [
            self._alarm_value(region, config, now - (i + 1) * period, now - i * period) for i in range(periods)
        ]
        present = [v for v in values if v is not None]
        breaching = sum(1 for v in present if compare(v, threshold))
        if treat == "breaching":
            breaching += len(values) - len(present)
        if breaching >= needed:
            state = "ALARM"
        elif not present and treat == "ignore":
            state = current
        elif not present and treat == "missing":
            state = "INSUFFICIENT_DATA"
        else:
            state = "OK"
        shown = ", ".join(f"{v:g}" for v in present[:10])
        words = _COMPARISON_WORDS[config["ComparisonOperator"]]
        if state == "INSUFFICIENT_DATA":
            reason = f"Insufficient Data: {periods} datapoint(s) were unknown."
        elif state == "ALARM":
            reason = (f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] were "
                      f"{words} the threshold ({threshold:g}) (minimum {needed} datapoints for OK -> ALARM transition).")  # fmt: skip
        else:
            reason = (f"Threshold Crossed: {len(present) - min(breaching, len(present))} out of the last {periods} "
                      f"datapoints [{shown}] were not {words} the threshold ({threshold:g}) "
                      f"(minimum {needed} datapoints for ALARM -> OK transition).")  # fmt: skip
        reason_data = json.dumps({
            "version": "1.0",
            "queryDate": _iso(now),
            "statistic": config.get("Statistic") or config.get("ExtendedStatistic"),
            "period": period,
            "recentDatapoints": present,
            "threshold": threshold,
            "evaluatedDatapoints": [
                {"timestamp": _iso(now - (i + 1) * period), **({"value": v} if v is not None else {})}
                for i, v in enumerate(values)
            ],
        })  # fmt: skip
        return state, reason, reason_data

    def _alarm_value(self, region: str, config: dict[str, Any], start: float, end: float) -> float | None:
        """The alarm's datapoint over [start, end): its statistic, or its metric math expression."""
        if not config.get("Metrics"):
            key = _series_key(region, config["Namespace"], config["MetricName"], config.get("Dimensions"))
            stat = config.get("Statistic") or config["ExtendedStatistic"]
            return self.store.window(key, start, end).statistic(stat)
        scalars: dict[str, float | None] = {}
        returned: str | None = None
        for query in config["Metrics"]:
            if query.get("ReturnData", True) and returned is None:
                returned = query["Id"]
            stat = query.get("MetricStat")
            if stat is not None:
                metric = stat["Metric"]
                key = _series_key(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"))
                scalars[query["Id"]] = self.store.window(key, start, end).statistic(stat["Stat"])
        for query in config["Metrics"]:
            if query.get("Expression"):
                scalars[query["Id"]] = _scalar_expression(query["Expression"], scalars)
        return scalars.get(returned or config["Metrics"][-1]["Id"])

    # --- metrics ---------------------------------------------------------------------------------

    def _get_metric_statistics(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        statistics = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not statistics and not extended:
            raise CloudWatchError(
                "MissingParameter", "Must specify either Statistics or ExtendedStatistics, but not both."
            )
        for name in statistics:
            if name not in STATISTICS:
                raise CloudWatchError("InvalidParameterValue", f"The parameter Statistics has an invalid value {name}.")
        for name in extended:
            if not PERCENTILE.match(name):
                raise CloudWatchError(
                    "InvalidParameterValue", f"The parameter ExtendedStatistics has an invalid value {name}."
                )
        start, end = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        period = int(params["Period"])
        _check_query_period(period, "Period")
        if end <= start:
            raise CloudWatchError("InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
        if (end - start) / period > MAX_DATAPOINTS:
            raise CloudWatchError(
                "InvalidParameterCombination",
                f"You have requested up to {math.ceil((end - start) / period)} datapoints, which exceeds the "
                f"limit of {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or "
                "decreasing the time range.",
            )
        key = _series_key(region, params["Namespace"], params["MetricName"], params.get("Dimensions"))
        unit = params.get("Unit")
        datapoints = []
        for bucket, agg in sorted(self.store.periods(key, start, end, period).items()):
            if unit and agg.unit and unit != agg.unit:
                continue
            point: dict[str, Any] = {"Timestamp": _datetime(bucket), "Unit": agg.unit or "None"}
            for name in statistics:
                point[name] = agg.statistic(name)
            if extended:
                point["ExtendedStatistics"] = {name: agg.statistic(name) for name in extended}
            datapoints.append(point)
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def _get_metric_data(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        queries = params["MetricDataQueries"]
        start, end = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        if end <= start:
            raise CloudWatchError("ValidationError", "The parameter StartTime must be less than the parameter EndTime.")
        ids = [q["Id"] for q in queries]
        if len(set(ids)) != len(ids):
            raise CloudWatchError("ValidationError", "The values for parameter id in MetricDataQueries are not unique.")
        series: dict[str, dict[int, float]] = {}
        for query in queries:
            if not re.match(r"^[a-z][a-zA-Z0-9_]*$", query["Id"]):
                raise CloudWatchError(
                    "ValidationError", f"The value {query['Id']} for parameter MetricDataQueries.Id is not valid."
                )
            stat = query.get("MetricStat")
            if stat is None and not query.get("Expression"):
                raise CloudWatchError(
                    "ValidationError", f"Query {query['Id']} needs exactly one of MetricStat and Expression."
                )
            if stat is None:
                continue
            period = int(stat.get("Period") or query.get("Period") or 60)
            _check_query_period(period, "Period")
            name = stat["Stat"]
            if name not in STATISTICS and not PERCENTILE.match(name):
                raise CloudWatchError("ValidationError", f"The value {name} for parameter Stat is not valid.")
            metric = stat["Metric"]
            key = _series_key(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"))
            values = {}
            for bucket, agg in self.store.periods(key, start, end, period).items():
                value = agg.statistic(name)
                if value is not None:
                    values[bucket] = value
            series[query["Id"]] = values
        for query in queries:
            if query.get("Expression"):
                series[query["Id"]] = _series_expression(query["Expression"], series)
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = []
        for query in queries:
            if not query.get("ReturnData", True):
                continue
            points = sorted(series[query["Id"]].items(), reverse=descending)
            label = query.get("Label") or (
                query["MetricStat"]["Metric"]["MetricName"] if query.get("MetricStat") else query["Id"]
            )
            results.append({
                "Id": query["Id"],
                "Label": label,
                "Timestamps": [_datetime(t) for t, _ in points],
                "Values": [v for _, v in points],
                "StatusCode": "Complete",
            })  # fmt: skip
        return {"MetricDataResults": results, "Messages": []}

    def _put_metric_data(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        namespace = params["Namespace"]
        if namespace.startswith("AWS/"):
            raise CloudWatchError("InvalidParameterValue", "The value AWS/ for parameter Namespace is invalid.")
        now = self._clock.now()
        for datum in params.get("MetricData") or []:
            key = _series_key(region, namespace, datum["MetricName"], datum.get("Dimensions"))
            second = int(_epoch(datum["Timestamp"])) if datum.get("Timestamp") is not None else int(now)
            unit = datum.get("Unit")
            agg = Aggregate(unit=unit)
            if "StatisticValues" in datum:
                sv = datum["StatisticValues"]
                agg.count, agg.total = float(sv["SampleCount"]), float(sv["Sum"])
                agg.minimum, agg.maximum = float(sv["Minimum"]), float(sv["Maximum"])
            elif "Values" in datum:
                counts = datum.get("Counts")
                if counts is not None and len(counts) != len(datum["Values"]):
                    raise CloudWatchError(
                        "InvalidParameterValue", "The Values and Counts lists must have the same length."
                    )
                agg.add_values([float(v) for v in datum["Values"]], counts, histogram=True)
            elif "Value" in datum:
                agg.add(float(datum["Value"]), histogram=True)
            else:
                raise CloudWatchError(
                    "MissingParameter", "One of Value, Values or StatisticValues must be given in MetricData."
                )
            self.store.add_aggregate(key, second, agg)
        return {}

    def _list_metrics(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        wanted = {(d["Name"], d.get("Value")) for d in params.get("Dimensions") or []}
        metrics = []
        for _, namespace, metric, dims in self.store.list_series(region):
            if params.get("Namespace") and namespace != params["Namespace"]:
                continue
            if params.get("MetricName") and metric != params["MetricName"]:
                continue
            names = dict(dims)
            if any(name not in names or (value is not None and names[name] != value) for name, value in wanted):
                continue
            metrics.append({
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
            })  # fmt: skip
        return {"Metrics": metrics}


# --- alarm configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _AlarmRow:
    name: str
    config_json: str
    state: str
    reason: str
    reason_data: str | None
    state_updated: float
    config_updated: float
    forced_until: float

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)


def _check_alarm(params: dict[str, Any]) -> dict[str, Any]:
    """The alarm's configuration as stored, after the service's own rules (ValidationError otherwise)."""
    config = {k: v for k, v in params.items() if k != "Tags"}
    name = config["AlarmName"]
    if not 1 <= len(name) <= 255:
        raise CloudWatchError("ValidationError", "AlarmName must be between 1 and 255 characters long.")
    if config.get("EvaluationCriteria") is not None:
        raise CloudWatchError("ValidationError", "EvaluationCriteria alarms are not emulated by the local cloud.")
    for required in ("EvaluationPeriods", "ComparisonOperator"):
        if config.get(required) is None:
            raise CloudWatchError("ValidationError", f"{required} must be specified for a metric alarm.")
    if config["ComparisonOperator"] not in COMPARISONS:
        raise CloudWatchError(
            "ValidationError",
            f"ComparisonOperator {config['ComparisonOperator']} is not supported by the local cloud "
            "(anomaly detection bands are not emulated); use one of " + ", ".join(COMPARISONS) + ".",
        )
    if "Threshold" not in config:
        raise CloudWatchError("ValidationError", "Threshold must be specified for a static threshold alarm.")
    periods = int(config["EvaluationPeriods"])
    if periods < 1:
        raise CloudWatchError("ValidationError", "EvaluationPeriods must be at least 1.")
    needed = config.get("DatapointsToAlarm")
    if needed is not None and not 1 <= int(needed) <= periods:
        raise CloudWatchError(
            "ValidationError", "DatapointsToAlarm must be between 1 and the value of EvaluationPeriods."
        )
    treat = config.get("TreatMissingData")
    if treat is not None and treat not in TREAT_MISSING:
        raise CloudWatchError(
            "ValidationError", f"TreatMissingData {treat!r} is not one of " + ", ".join(TREAT_MISSING) + "."
        )
    if config.get("Metrics"):
        if any(config.get(k) for k in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions")):
            raise CloudWatchError(
                "ValidationError", "Metrics cannot be combined with MetricName, Namespace, Statistic or Dimensions."
            )
        returned = [q for q in config["Metrics"] if q.get("ReturnData", True)]
        if len(returned) != 1:
            raise CloudWatchError("ValidationError", "Exactly one element of Metrics must have ReturnData set to true.")
        for query in config["Metrics"]:
            stat = query.get("MetricStat")
            if stat is not None:
                _check_alarm_period(int(stat["Period"]), periods)
                if stat["Stat"] not in STATISTICS and not PERCENTILE.match(stat["Stat"]):
                    raise CloudWatchError("ValidationError", f"Stat {stat['Stat']} is not a valid statistic.")
            elif query.get("Expression"):
                _scalar_expression(query["Expression"], {})  # syntax check
            else:
                raise CloudWatchError("ValidationError", "Each element of Metrics needs MetricStat or Expression.")
        return config
    for required in ("MetricName", "Namespace", "Period"):
        if config.get(required) is None:
            raise CloudWatchError("ValidationError", f"{required} must be specified for a single-metric alarm.")
    statistic, extended = config.get("Statistic"), config.get("ExtendedStatistic")
    if (statistic is None) == (extended is None):
        raise CloudWatchError("ValidationError", "Exactly one of Statistic and ExtendedStatistic must be specified.")
    if statistic is not None and statistic not in STATISTICS:
        raise CloudWatchError("ValidationError", f"Statistic {statistic} is not one of " + ", ".join(STATISTICS) + ".")
    if extended is not None and not PERCENTILE.match(extended):
        raise CloudWatchError("ValidationError", f"ExtendedStatistic {extended} is not a percentile such as p99.")
    _check_alarm_period(int(config["Period"]), periods)
    return config


def _check_alarm_period(period: int, periods: int) -> None:
    if period not in (10, 20, 30) and (period < 60 or period % 60):
        raise CloudWatchError("ValidationError", "Period must be 10, 20, 30 or a multiple of 60.")
    if period * periods > 86400:
        raise CloudWatchError(
            "ValidationError", "The evaluation period (Period x EvaluationPeriods) must not exceed one day."
        )


def _check_query_period(period: int, name: str) -> None:
    if period < 1 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
        raise CloudWatchError(
            "InvalidParameterValue", f"The parameter {name} must be 1, 5, 10, 20, 30 or a multiple of 60."
        )


def _alarm_period(config: dict[str, Any]) -> int:
    if config.get("Metrics"):
        return min(int(q["MetricStat"]["Period"]) for q in config["Metrics"] if q.get("MetricStat")) if any(
            q.get("MetricStat") for q in config["Metrics"]
        ) else 60
    return int(config["Period"])


def _describe_alarm(region: str, row: _AlarmRow, current: dict[str, Any]) -> dict[str, Any]:
    config = row.config
    alarm: dict[str, Any] = {
        "AlarmName": row.name,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{row.name}",
        "AlarmConfigurationUpdatedTimestamp": _datetime(row.config_updated),
        "ActionsEnabled": config.get("ActionsEnabled", True),
        "OKActions": config.get("OKActions", []),
        "AlarmActions": config.get("AlarmActions", []),
        "InsufficientDataActions": config.get("InsufficientDataActions", []),
        "StateValue": current["state"],
        "StateReason": current["reason"],
        "StateUpdatedTimestamp": _datetime(current["updated"]),
        "StateTransitionedTimestamp": _datetime(current["updated"]),
        "EvaluationPeriods": config["EvaluationPeriods"],
        "Threshold": float(config["Threshold"]),
        "ComparisonOperator": config["ComparisonOperator"],
        "TreatMissingData": config.get("TreatMissingData", "missing"),
    }
    if current.get("reason_data"):
        alarm["StateReasonData"] = current["reason_data"]
    for key in ("AlarmDescription", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Period",
                "Unit", "DatapointsToAlarm", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId"):  # fmt: skip
        if config.get(key) is not None:
            alarm[key] = config[key]
    if "Namespace" in config:
        alarm["Dimensions"] = config.get("Dimensions") or []
    return alarm


# --- metric math --------------------------------------------------------------------------------------

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _parse_expression(expression: str) -> ast.expr:
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise CloudWatchError("ValidationError", f"Invalid metric math expression: {expression}") from exc
    for node in ast.walk(tree):
        if not isinstance(node, ast.BinOp | ast.UnaryOp | ast.Name | ast.Constant | ast.Load | ast.USub | ast.UAdd) and (
            type(node) not in _BINARY
        ):
            raise CloudWatchError(
                "ValidationError",
                f"Unsupported metric math expression: {expression} (the local cloud does arithmetic on query ids)",
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise CloudWatchError("ValidationError", f"Invalid metric math expression: {expression}")
    return tree


def _scalar_expression(expression: str, values: Mapping[str, float | None]) -> float | None:
    """Arithmetic over query ids (``errors / invocations * 100``) for one datapoint; None if any is missing."""
    tree = _parse_expression(expression)

    def walk(node: ast.expr) -> float | None:
        if isinstance(node, ast.Constant):
            return float(node.value) if isinstance(node.value, int | float) else None
        if isinstance(node, ast.Name):
            return values.get(node.id)
        if isinstance(node, ast.UnaryOp):
            inner = walk(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        assert isinstance(node, ast.BinOp)
        left, right = walk(node.left), walk(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div) and right == 0:
            return None  # CloudWatch drops datapoints that divide by zero
        return _BINARY[type(node.op)](left, right)

    return walk(tree)


def _series_expression(expression: str, series: Mapping[str, dict[int, float]]) -> dict[int, float]:
    """The expression at every timestamp where all the series it names have a value."""
    tree = _parse_expression(expression)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    unknown = names - set(series)
    if unknown:
        raise CloudWatchError("ValidationError", f"Metric math expression {expression} names unknown ids: {sorted(unknown)}")
    stamps: set[int] | None = None
    for name in names:
        stamps = set(series[name]) if stamps is None else stamps & set(series[name])
    out: dict[int, float] = {}
    for stamp in sorted(stamps or ()):
        value = _scalar_expression(expression, {name: series[name].get(stamp) for name in names})
        if value is not None:
            out[stamp] = value
    return out


# --- the wire ---------------------------------------------------------------------------------------

_MODEL_LOCK = threading.Lock()
_MODEL: Any = None


def _service_model() -> Any:
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            from modelops.localcloud import botocore_session

            _MODEL = botocore_session().get_service_model("cloudwatch")
        return _MODEL


def _validate(operation: str, params: dict[str, Any]) -> None:
    """Check the request against botocore's model of the operation, as the service does first."""
    from botocore.validate import ParamValidator

    shape = _service_model().operation_model(operation).input_shape
    if shape is None:
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        lines = report.generate_report().splitlines()
        errors = [line.strip() for line in lines[1:] if line.strip()] or lines
        raise CloudWatchError(
            "ValidationError",
            f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} detected: " + "; ".join(errors),
        )


def _decode(body: bytes, *, cbor: bool) -> dict[str, Any]:
    if not body:
        return {}
    try:
        if cbor:
            import cbor2

            document = cbor2.loads(body)
        else:
            document = json.loads(body)
    except Exception as exc:  # cbor2 and json raise several kinds for a malformed body
        raise CloudWatchError("SerializationException", "The request body could not be parsed.") from exc
    if not isinstance(document, dict):
        raise CloudWatchError("SerializationException", "The request body is not an object.")
    return document


def _encode(document: dict[str, Any], *, cbor: bool) -> bytes:
    if cbor:
        import cbor2

        return cbor2.dumps(_cbor_ready(document))
    return json.dumps(document, default=_json_default, separators=(",", ":")).encode("utf-8")


def _cbor_ready(value: Any) -> Any:
    import cbor2

    if isinstance(value, dt.datetime):
        return cbor2.CBORTag(1, value.timestamp())  # epoch-seconds timestamps, as rpc-v2-cbor wants
    if isinstance(value, dict):
        return {k: _cbor_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cbor_ready(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(type(value).__name__)


def _response_headers(cbor: bool, request_id: str) -> list[tuple[str, str]]:
    if cbor:
        return [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("x-amzn-RequestId", request_id)]
    return [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
        try:
            return _epoch(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError as exc:
            raise CloudWatchError("InvalidParameterValue", f"{value!r} is not a timestamp.") from exc
    raise CloudWatchError("InvalidParameterValue", f"{value!r} is not a timestamp.")


def _datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _iso(epoch: float) -> str:
    return _datetime(epoch).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str, limit: int) -> int:
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CloudWatchError("InvalidNextToken", "The service couldn't process the NextToken.") from exc
    if not 0 <= offset <= limit:
        raise CloudWatchError("InvalidNextToken", "The service couldn't process the NextToken.")
    return offset


def _series_key(region: str, namespace: str, metric: str, dimensions: Any) -> SeriesKey:
    return (region, namespace, metric, dimensions_key((d["Name"], d["Value"]) for d in dimensions or []))


def _sample_keys(region: str, endpoint: str, variant: str) -> VariantKeys:
    dims = dimensions_key([("EndpointName", endpoint), ("VariantName", variant)])
    metrics = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency")
    a, b, c, d, e = ((region, SAGEMAKER_NAMESPACE, metric, dims) for metric in metrics)
    return (a, b, c, d, e)
