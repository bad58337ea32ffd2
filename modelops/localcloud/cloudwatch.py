"""CloudWatch for the local cloud: metric alarms and the ``AWS/SageMaker`` metrics of real traffic.

Protocols. CloudWatch's service model lists smithy-rpc-v2-cbor, json and query. botocore 1.44,
installed here, ranks json before CBOR (``botocore.utils.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS``),
so stock clients send json 1.0 (``POST /``, ``X-Amz-Target: GraniteServiceVersion20100801.<Op>``,
``x-amzn-query-mode: true``); a botocore that ranks CBOR first sends
``POST /service/GraniteServiceVersion20100801/operation/<Op>`` with ``smithy-protocol: rpc-v2-cbor``.
Both are served, errors included (``protocol.CLOUDWATCH_JSON`` and ``CLOUDWATCH_CBOR``).

The pieces: this module holds the operations; ``alarms`` the alarms' rules and their pure
evaluation; ``metric_math`` the expressions; ``metrics`` (the per-second metric store) and
``alarm_store`` the storage, both in ``cloudwatch.sqlite``.

Alarm evaluation. CloudWatch evaluates aligned, complete periods, about a minute behind. Bake periods
of rollouts here last seconds to minutes, so the local cloud evaluates every alarm once a second, in
the background, over sliding windows of ``Period`` seconds ending now (window 0 is the last Period,
window 1 the one before, and so on for EvaluationPeriods windows), and records each change of state:
an endpoint that starts failing puts its alarms in ALARM within a second, whether or not anybody is
deploying or looking. SetAlarmState forces a state for one Period, after which the alarm is evaluated
again (CloudWatch: "until the next period").
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelops.localcloud import alarm_store, alarms, metric_math, metrics
from modelops.localcloud.alarm_store import AlarmRow, AlarmStore
from modelops.localcloud.alarms import Datapoint
from modelops.localcloud.lifecycle import LOCAL_ACCOUNT
from modelops.localcloud.metrics import (
    PERCENTILE,
    RETENTION_SECONDS,
    STATISTICS,
    Aggregate,
    MetricStore,
    SeriesKey,
)
from modelops.localcloud.protocol import (
    CLOUDWATCH_CBOR,
    CLOUDWATCH_CBOR_PREFIX,
    CLOUDWATCH_JSON,
    CLOUDWATCH_SERVICE,
    Response,
    ServiceError,
    epoch,
    number_text,
    partition_of,
)
from modelops.localcloud.service import Service
from modelops.localcloud.state import StateUnavailable, open_database
from modelops.runtime import Clock

log = logging.getLogger("modelops.localcloud.cloudwatch")

DB_FILE = "cloudwatch.sqlite"
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
MAX_DATAPOINTS = 1440  # GetMetricStatistics
MAX_QUERIES = 500  # GetMetricData
MAX_METRICS_PER_PUT = 1000
MAX_VALUES_PER_DATUM = 150
MAX_TAGS = 50
VALUE_LIMIT = 2.0**360  # "Values must be in the range of -2^360 to 2^360"
PAST_LIMIT_S = 14 * 86400  # PutMetricData takes data of the past two weeks ...
FUTURE_LIMIT_S = 2 * 3600  # ... and up to two hours ahead
LIST_METRICS_PAGE = 500
BAND_HISTORY = 60  # periods of history an anomaly band is drawn from
QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")

# Messages. Where the real service's words are known (reported from it), they are its words; the
# others follow its forms and are marked "inferred" where they are used.
INVALID_VALUE = "The value {value} for parameter {name} is invalid."
BOTH_GIVEN = "The parameters {a} and {b} are mutually exclusive and you have specified both."
SAME_SIZE = "The parameters {a} and {b} must be of the same size."
TOO_MANY = "The collection {name} must not have a size greater than {limit}."
TIMESTAMP_RANGE = "The parameter {name} must specify a time within the past two weeks."
RESERVED_NAMESPACE = "The value AWS/ for parameter Namespace is invalid."
NEED_STATISTICS = "Must specify either Statistics or ExtendedStatistics"
START_AFTER_END = "The parameter StartTime must be less than the parameter EndTime."
END_BEFORE_START = "The parameter EndTime must be greater than StartTime."
START_IS_END = "The parameter StartTime must not equal parameter EndTime."
BAD_PERIOD = "The parameter {name} must be 1, 5, 10, 20, 30 or a multiple of 60."
BAD_TOKEN = "Request parameter NextToken is invalid"
NO_SUCH_ALARM = "Alarm {name} not found"
NO_SUCH_RESOURCE = "The resource {arn} does not exist."
BAD_ARN = "The value {arn} for parameter ResourceARN is not the ARN of a CloudWatch alarm."
NOT_EMULATED = "{what} is not emulated by the local cloud."


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


class CloudWatch(Service):
    """The CloudWatch service of the local cloud, one instance per server, every region in it.

    ``data_dir`` holds ``cloudwatch.sqlite`` (alarms and persisted metrics). Metrics recorded with
    :meth:`record` stay in memory until the background thread (every ``flush_interval`` seconds;
    None: no thread, only :meth:`flush`, and alarms are evaluated when read) writes the completed
    seconds; the same thread evaluates every alarm every ``evaluation_interval`` seconds.
    """

    MODEL = "cloudwatch"
    OPERATIONS = ("PutMetricAlarm", "DescribeAlarms", "DescribeAlarmsForMetric", "DeleteAlarms", "SetAlarmState",
                  "EnableAlarmActions", "DisableAlarmActions", "TagResource", "UntagResource", "ListTagsForResource",
                  "GetMetricStatistics", "GetMetricData", "PutMetricData", "ListMetrics")
    VALIDATION_CODE = "ValidationError"
    INTERNAL_CODE = "InternalServiceError"
    FINITE_FLOATS = False  # a NaN value is InvalidParameterValue, said by each operation

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, flush_interval: float | None = 1.0,
                 evaluation_interval: float = 1.0):
        super().__init__(clock)
        path = Path(data_dir) / DB_FILE
        self._db = open_database(path, metrics.SCHEMA + alarm_store.SCHEMA)
        self._db_lock = threading.Lock()
        self.store = MetricStore(self._db, self._db_lock, path)
        self.alarms = AlarmStore(self._db, self._db_lock, path)
        self._samples: dict[tuple[str, str, str], metrics.VariantKeys] = {}
        self._evaluated: dict[tuple[str, str], float] = {}
        self._evaluation_interval = evaluation_interval
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        if flush_interval is not None:
            self._worker = threading.Thread(target=self._background, args=(flush_interval,), name="cloudwatch",
                                            daemon=True)
            self._worker.start()

    # --- what the server calls -------------------------------------------------------------------

    @staticmethod
    def handles(path: str, headers: Mapping[str, str]) -> bool:
        """True when the request is for CloudWatch (either protocol; header names in any case)."""
        return path.startswith(CLOUDWATCH_CBOR_PREFIX) or _target(headers).startswith(CLOUDWATCH_SERVICE + ".")

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes, region: str) -> Response:
        """Answer one CloudWatch request in its protocol."""
        if path.startswith(CLOUDWATCH_CBOR_PREFIX):
            wire, name = CLOUDWATCH_CBOR, path[len(CLOUDWATCH_CBOR_PREFIX):].split("?")[0].strip("/")
        else:
            wire, name = CLOUDWATCH_JSON, _target(headers).split(".", 1)[-1]
        if method != "POST":
            return wire.error(ServiceError("UnknownOperationException", f"{method} is not supported; use POST."))
        return self.call(name, body, wire, region)

    def record(self, region: str, endpoint: str, variant: str, *, status_code: int, model_latency_us: int | None,
               overhead_latency_us: int | None) -> None:
        """Record one InvokeEndpoint as SageMaker does (the runtime's hot path: memory only, O(1)).

        Invocations counts every request; Invocation4XXErrors and Invocation5XXErrors are 0 or 1 per
        request (their Sum counts errors, their Average is the error rate); the latencies are in
        microseconds and None when the container was not reached.
        """
        sample = self._samples.get((region, endpoint, variant))
        if sample is None:
            sample = self._samples.setdefault((region, endpoint, variant), _sample_keys(region, endpoint, variant))
        self.store.add_invocation(
            sample, int(self.clock.now()), status_code,
            None if model_latency_us is None else float(model_latency_us),
            None if overhead_latency_us is None else float(overhead_latency_us),
        )  # fmt: skip

    def alarms_in_alarm(self, region: str, names: Sequence[str]) -> list[str]:
        """The alarms among ``names`` whose state is ALARM now (each evaluated at most once a second)."""
        firing = []
        for name in names:
            row = self.alarms.get(region, name)
            if row is not None and self._current_state(region, row)["state"] == "ALARM":
                firing.append(name)
        return firing

    def flush(self) -> None:
        """Persist every recorded second now (the background flush writes completed seconds only)."""
        self.store.flush()

    def evaluate_all(self) -> None:
        """Evaluate every alarm that is due (what the background thread does every second)."""
        for region, row in self.alarms.list():
            self._current_state(region, row)

    def close(self) -> None:
        """Stop the background thread, persist what is buffered, close the database."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
        try:
            self.store.flush()
        finally:
            with self._db_lock:
                self._db.close()

    def _background(self, flush_interval: float) -> None:
        last_purge = last_flush = 0.0
        while not self._stop.wait(min(flush_interval, self._evaluation_interval)):
            now = self.clock.now()
            try:
                if time.monotonic() - last_flush >= flush_interval:
                    last_flush = time.monotonic()
                    self.store.flush(before=int(now))
                if now - last_purge > 600:
                    self.store.purge(int(now) - RETENTION_SECONDS)
                    last_purge = now
            except (StateUnavailable, sqlite3.Error) as exc:  # the samples stay buffered: tried again next time
                log.warning("cannot persist CloudWatch metrics: %s", exc)
            try:
                self.evaluate_all()
            except Exception:  # one bad evaluation must not stop the others for good
                log.exception("alarm evaluation failed")

    # --- alarms ----------------------------------------------------------------------------------

    def put_metric_alarm(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        config = alarms.alarm_config(params)
        tags = params.get("Tags") or []
        _check_tags(tags)
        name = config["AlarmName"]
        self.alarms.put(region, name, config, tags, self.clock.now(), state="INSUFFICIENT_DATA",
                        reason=alarms.INITIAL_REASON)
        self._evaluated.pop((region, name), None)
        return {}

    def describe_alarms(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        types = params.get("AlarmTypes")
        if (types and "MetricAlarm" not in types) or params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName"):
            return {"MetricAlarms": [], "CompositeAlarms": []}  # no composite alarms here
        names = params.get("AlarmNames")
        prefix = params.get("AlarmNamePrefix")
        if names and prefix:
            raise _error("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be combined.")
        selected = [row for _, row in self.alarms.list(region)
                    if (not names or row.name in names) and (not prefix or row.name.startswith(prefix))]
        max_records = int(params.get("MaxRecords") or 50)
        start = _decode_token(params["NextToken"], len(selected)) if params.get("NextToken") else 0
        found = []
        consumed = len(selected)
        for index in range(start, len(selected)):
            row = selected[index]
            current = self._current_state(region, row)
            if params.get("StateValue") and current["state"] != params["StateValue"]:
                continue
            if params.get("ActionPrefix") and not any(
                    action.startswith(params["ActionPrefix"])
                    for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
                    for action in row.config.get(key, [])):
                continue
            found.append(alarms.describe_alarm(region, LOCAL_ACCOUNT, row, current))
            if len(found) == max_records:
                consumed = index + 1
                break
        result: dict[str, Any] = {"MetricAlarms": found, "CompositeAlarms": []}
        if consumed < len(selected):
            result["NextToken"] = _encode_token(consumed)
        return result

    def describe_alarms_for_metric(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """Single-metric alarms on the metric (not metric-math ones that read it, as the service documents)."""
        if params.get("Period") is not None:
            _check_query_period(int(params["Period"]), "Period")
        wanted = _dimensions(params.get("Dimensions"))
        found = []
        for _, row in self.alarms.list(region):
            config = row.config
            if config.get("Metrics") or config.get("Namespace") != params["Namespace"] \
                    or config.get("MetricName") != params["MetricName"]:
                continue
            if params.get("Dimensions") is not None and _dimensions(config.get("Dimensions")) != wanted:
                continue
            if any(params.get(k) is not None and config.get(k) != params[k]
                   for k in ("Statistic", "ExtendedStatistic", "Period", "Unit")):
                continue
            found.append(alarms.describe_alarm(region, LOCAL_ACCOUNT, row, self._current_state(region, row)))
        return {"MetricAlarms": found}

    def delete_alarms(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        # Names that do not exist are ignored (deleting is idempotent), as the service does.
        names = params.get("AlarmNames") or []
        self.alarms.delete(region, names)
        for name in names:
            self._evaluated.pop((region, name), None)
        return {}

    def set_alarm_state(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AlarmName"]
        reason_data = params.get("StateReasonData")
        if reason_data is not None:
            try:
                json.loads(reason_data)
            except ValueError as exc:
                raise _error("InvalidFormat", "StateReasonData is not valid JSON.") from exc
        row = self.alarms.get(region, name)
        if row is None:
            raise _error("ResourceNotFound", NO_SUCH_ALARM.format(name=name))
        now = self.clock.now()
        self.alarms.set_state(region, name, params["StateValue"], params["StateReason"], reason_data, now,
                              forced_until=now + alarms.alarm_period(row.config))
        self._evaluated[(region, name)] = now
        return {}

    def enable_alarm_actions(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        self.alarms.set_actions_enabled(region, params["AlarmNames"], True)  # unknown names are ignored
        return {}

    def disable_alarm_actions(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        self.alarms.set_actions_enabled(region, params["AlarmNames"], False)
        return {}

    def tag_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        row = self._tagged(region, params["ResourceARN"])
        tags = {t["Key"]: t for t in row.tags}
        tags.update({t["Key"]: {"Key": t["Key"], "Value": t["Value"]} for t in params["Tags"]})
        _check_tags(list(tags.values()))
        self.alarms.set_tags(region, row.name, list(tags.values()))
        return {}

    def untag_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        row = self._tagged(region, params["ResourceARN"])
        drop = set(params["TagKeys"])
        self.alarms.set_tags(region, row.name, [t for t in row.tags if t["Key"] not in drop])
        return {}

    def list_tags_for_resource(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": self._tagged(region, params["ResourceARN"]).tags}

    def _tagged(self, region: str, arn: str) -> AlarmRow:
        """The alarm an ARN names (ResourceNotFoundException when there is none in this region)."""
        parts = arn.split(":", 6)
        if len(parts) != 7 or parts[0] != "arn" or parts[2] != "cloudwatch" or parts[5] not in ("alarm", "insight-rule"):
            raise _error("InvalidParameterValue", BAD_ARN.format(arn=arn))  # inferred wording
        row = None
        if parts[5] == "alarm" and (parts[1], parts[3], parts[4]) == (partition_of(region), region, LOCAL_ACCOUNT):
            row = self.alarms.get(region, parts[6])
        if row is None:  # insight rules are not emulated: none exists
            raise ServiceError("ResourceNotFoundException", NO_SUCH_RESOURCE.format(arn=arn), 404)
        return row

    def _current_state(self, region: str, row: AlarmRow) -> dict[str, Any]:
        """The alarm's state now, evaluating it (and recording a change) when it is due."""
        stored = {"state": row.state, "reason": row.reason, "reason_data": row.reason_data,
                  "updated": row.state_updated}
        now = self.clock.now()
        if now < row.forced_until:
            return stored  # SetAlarmState holds until the next evaluation period
        last = self._evaluated.get((region, row.name))
        if last is not None and now - last < self._evaluation_interval:
            return stored
        self._evaluated[(region, row.name)] = now
        config = row.config
        evaluation = alarms.evaluate(config, self._datapoints(region, config, now), row.state, now)
        if evaluation.state == row.state:
            return stored
        try:
            self.alarms.set_state(region, row.name, evaluation.state, evaluation.reason, evaluation.reason_data,
                                  now, config_updated=row.config_updated)
        except StateUnavailable as exc:  # the state is derived: said as evaluated, recorded when the disk allows
            log.warning("cannot record the state of alarm %s: %s", row.name, exc.message)
            self._evaluated.pop((region, row.name), None)
        return {"state": evaluation.state, "reason": evaluation.reason, "reason_data": evaluation.reason_data,
                "updated": now}

    def _datapoints(self, region: str, config: dict[str, Any], now: float) -> list[Datapoint]:
        """The alarm's last EvaluationPeriods datapoints, newest first."""
        period = alarms.alarm_period(config)
        count = int(config["EvaluationPeriods"])
        if not config.get("Metrics"):
            key = _series_key(region, config["Namespace"], config["MetricName"], config.get("Dimensions"))
            stat = config.get("Statistic") or config["ExtendedStatistic"]
            values = _windows(self.store, key, stat, config.get("Unit"), now, period, count)
            return [Datapoint(values.get(i)) for i in range(count)]
        band_id = config.get("ThresholdMetricId")
        queries = config["Metrics"]
        band = metric_math.parse(next(q["Expression"] for q in queries if q["Id"] == band_id)).band if band_id else None
        windows = count + (BAND_HISTORY if band else 0)
        series: dict[str, dict[Any, float]] = {}
        for query in queries:
            stat = query.get("MetricStat")
            if stat is not None:
                metric = stat["Metric"]
                key = _series_key(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"))
                series[query["Id"]] = _windows(self.store, key, stat["Stat"], stat.get("Unit"), now, period, windows)
        _evaluate_expressions([q for q in queries if q.get("Expression") and q["Id"] != band_id], series)
        values = series.get(alarms.returned_id(config), {})
        if band is None:
            return [Datapoint(values.get(i)) for i in range(count)]
        reference = series.get(band[0], {})
        points = []
        for i in range(count):
            history = [reference[j] for j in range(i + 1, i + 1 + BAND_HISTORY) if j in reference]
            points.append(Datapoint(values.get(i), alarms.band(history, band[1])))
        return points

    # --- metrics ---------------------------------------------------------------------------------

    def get_metric_statistics(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        statistics = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not statistics and not extended:
            # The API reference says "either ..., but not both"; both are taken here (inferred: lenient).
            raise _error("InvalidParameterCombination", NEED_STATISTICS)
        for name in extended:
            if not PERCENTILE.match(name):
                raise _error("InvalidParameterValue", INVALID_VALUE.format(value=name, name="ExtendedStatistics"))
        start, end = epoch(params["StartTime"]), epoch(params["EndTime"])
        period = int(params["Period"])
        _check_query_period(period, "Period")
        if end <= start:
            raise _error("InvalidParameterValue", START_AFTER_END)
        if (end - start) / period > MAX_DATAPOINTS:
            raise _error("InvalidParameterCombination",
                         f"You have requested up to {math.ceil((end - start) / period)} datapoints, which exceeds the "
                         f"limit of {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or "
                         "decreasing the time range.")
        key = _series_key(region, params["Namespace"], params["MetricName"], params.get("Dimensions"))
        datapoints = []
        for bucket, agg in sorted(self.store.periods(key, start, end, period, params.get("Unit")).items()):
            point: dict[str, Any] = {"Timestamp": bucket, "Unit": agg.unit or "None"}
            for name in statistics:
                point[name] = agg.statistic(name)
            if extended:
                point["ExtendedStatistics"] = {name: agg.statistic(name) for name in extended}
            datapoints.append(point)
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def get_metric_data(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        queries = params["MetricDataQueries"]
        start, end = epoch(params["StartTime"]), epoch(params["EndTime"])
        if int(end) == int(start):
            raise _error("ValidationError", START_IS_END)
        if end < start:
            raise _error("ValidationError", END_BEFORE_START)
        if len(queries) > MAX_QUERIES:
            raise _error("ValidationError", TOO_MANY.format(name="MetricDataQueries", limit=MAX_QUERIES))  # inferred
        ids = [q["Id"] for q in queries]
        if len(set(ids)) != len(ids):
            raise _error("ValidationError", "The values for parameter id in MetricDataQueries are not unique.")
        series: dict[str, dict[Any, float]] = {}
        for query in queries:
            if not QUERY_ID.match(query["Id"]):
                raise _error("ValidationError", f"The value {query['Id']} for parameter MetricDataQueries.Id is not valid.")
            stat = query.get("MetricStat")
            if (stat is None) == (query.get("Expression") is None):
                raise _error("ValidationError", f"Query {query['Id']} needs exactly one of MetricStat and Expression.")
            if stat is None:
                continue
            period = int(stat["Period"])
            _check_query_period(period, "Period")
            if stat["Stat"] not in STATISTICS and not PERCENTILE.match(stat["Stat"]):
                raise _error("ValidationError", f"The value {stat['Stat']} for parameter Stat is not valid.")
            metric = stat["Metric"]
            key = _series_key(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"))
            values = {}
            for bucket, agg in self.store.periods(key, start, end, period, stat.get("Unit")).items():
                value = agg.statistic(stat["Stat"])
                if value is not None:
                    values[bucket] = value
            series[query["Id"]] = values
        _evaluate_expressions([q for q in queries if q.get("Expression")], series)
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = []
        for query in queries:
            if not query.get("ReturnData", True):
                continue
            points = sorted(series[query["Id"]].items(), reverse=descending)
            label = query.get("Label") or (query["MetricStat"]["Metric"]["MetricName"] if query.get("MetricStat")
                                           else query["Id"])
            results.append({"Id": query["Id"], "Label": label, "Timestamps": [t for t, _ in points],
                            "Values": [v for _, v in points], "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}

    def put_metric_data(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        namespace = params["Namespace"]
        if namespace.startswith("AWS/"):
            raise _error("InvalidParameterValue", RESERVED_NAMESPACE)
        if params.get("EntityMetricData"):
            raise _error("InvalidParameterValue", NOT_EMULATED.format(what="EntityMetricData"))
        data = params.get("MetricData") or []
        if not data:  # inferred: the model no longer requires MetricData (EntityMetricData may stand for it)
            raise _error("MissingParameter", "The parameter MetricData is required.")
        if len(data) > MAX_METRICS_PER_PUT:
            raise _error("InvalidParameterValue", TOO_MANY.format(name="MetricData", limit=MAX_METRICS_PER_PUT))
        now = self.clock.now()
        aggregates = [_datum(i, datum, now) for i, datum in enumerate(data, start=1)]  # all checked before any is kept
        for datum, (second, agg) in zip(data, aggregates, strict=True):
            self.store.add_aggregate(_series_key(region, namespace, datum["MetricName"], datum.get("Dimensions")),
                                     second, agg)
        return {}

    def list_metrics(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        wanted = {(d["Name"], d.get("Value")) for d in params.get("Dimensions") or []}
        found = []
        for _, namespace, metric, dims in self.store.list_series(region):
            if params.get("Namespace") and namespace != params["Namespace"]:
                continue
            if params.get("MetricName") and metric != params["MetricName"]:
                continue
            names = dict(dims)
            if any(name not in names or (value is not None and names[name] != value) for name, value in wanted):
                continue
            found.append({"Namespace": namespace, "MetricName": metric,
                          "Dimensions": [{"Name": n, "Value": v} for n, v in dims]})
        start = 0
        if params.get("NextToken"):
            try:
                start = _decode_token(params["NextToken"], len(found))
            except ServiceError:
                raise _error("InvalidParameterValue", BAD_TOKEN) from None
        out: dict[str, Any] = {"Metrics": found[start:start + LIST_METRICS_PAGE]}
        if start + LIST_METRICS_PAGE < len(found):
            out["NextToken"] = _encode_token(start + LIST_METRICS_PAGE)
        return out


# --- helpers ------------------------------------------------------------------------------------


def _target(headers: Mapping[str, str]) -> str:
    return next((value for name, value in headers.items() if name.lower() == "x-amz-target"), "")


def _datum(index: int, datum: dict[str, Any], now: float) -> tuple[int, Aggregate]:
    """One MetricDatum of PutMetricData, checked, as (second, aggregate)."""
    where = f"MetricData.member.{index}"
    kinds = [k for k in ("Value", "Values", "StatisticValues") if datum.get(k) is not None]
    if "Value" in kinds and "StatisticValues" in kinds:  # the service's words and code (reported)
        raise _error("InvalidParameterCombination", BOTH_GIVEN.format(a=f"{where}.Value", b=f"{where}.StatisticValues"))
    if "Values" in kinds and "StatisticValues" in kinds:  # inferred: as for Value
        raise _error("InvalidParameterCombination", BOTH_GIVEN.format(a=f"{where}.Values", b=f"{where}.StatisticValues"))
    if "Value" in kinds and "Values" in kinds:
        raise _error("InvalidParameterValue", BOTH_GIVEN.format(a=f"{where}.Value", b=f"{where}.Values"))
    if not kinds:  # inferred
        raise _error("MissingParameter", f"The parameter {where}.Value is required.")
    stamp = datum.get("Timestamp")
    second = int(now) if stamp is None else epoch(stamp)
    if not now - PAST_LIMIT_S <= second <= now + FUTURE_LIMIT_S:
        raise _error("InvalidParameterValue", TIMESTAMP_RANGE.format(name=f"{where}.Timestamp"))
    resolution = datum.get("StorageResolution")
    if resolution is not None and resolution not in (1, 60):  # inferred wording
        raise _error("InvalidParameterValue", INVALID_VALUE.format(value=resolution, name=f"{where}.StorageResolution"))
    agg = Aggregate(unit=datum.get("Unit") or "None")
    if "StatisticValues" in kinds:
        stats = datum["StatisticValues"]
        for member in ("SampleCount", "Sum", "Minimum", "Maximum"):
            _check_value(stats[member], f"{where}.StatisticValues.{member}")
        if stats["SampleCount"] <= 0:  # inferred: a statistic set summarises at least one sample
            raise _error("InvalidParameterValue", f"The parameter {where}.StatisticValues.SampleCount must be greater "
                                                  "than 0.")
        if stats["Minimum"] > stats["Maximum"]:  # inferred
            raise _error("InvalidParameterValue", f"The parameter {where}.StatisticValues.Maximum must be greater than "
                                                  f"or equal to {where}.StatisticValues.Minimum.")
        agg.count, agg.total = float(stats["SampleCount"]), float(stats["Sum"])
        agg.minimum, agg.maximum = float(stats["Minimum"]), float(stats["Maximum"])
    elif "Values" in kinds:
        values, counts = datum["Values"], datum.get("Counts")
        if len(values) > MAX_VALUES_PER_DATUM:  # inferred wording
            raise _error("InvalidParameterValue", TOO_MANY.format(name=f"{where}.Values", limit=MAX_VALUES_PER_DATUM))
        if counts is not None and len(counts) != len(values):
            raise _error("InvalidParameterValue", SAME_SIZE.format(a=f"{where}.Values", b=f"{where}.Counts"))
        for value in values:
            _check_value(value, f"{where}.Values")
        for count in counts or []:
            if not (math.isfinite(count) and count >= 0):  # inferred
                raise _error("InvalidParameterValue", INVALID_VALUE.format(value=number_text(count), name=f"{where}.Counts"))
        agg.add_values([float(v) for v in values], counts, histogram=True)
    else:
        _check_value(datum["Value"], f"{where}.Value")
        agg.add(float(datum["Value"]), histogram=True)
    return int(second), agg


def _check_value(value: float, name: str) -> None:
    """A value CloudWatch takes: finite and within -2^360..2^360 (reported: 'The value NaN for
    parameter MetricData.member.1.Value is invalid.')."""
    if not (math.isfinite(value) and -VALUE_LIMIT <= value <= VALUE_LIMIT):
        raise _error("InvalidParameterValue", INVALID_VALUE.format(value=number_text(value), name=name))


def _check_tags(tags: Sequence[dict[str, str]]) -> None:
    if len(tags) > MAX_TAGS:  # "as many as 50 tags with a CloudWatch resource"; the error's wording is inferred
        raise _error("InvalidParameterValue", f"A resource can have at most {MAX_TAGS} tags; {len(tags)} were given.")


def _check_query_period(period: int, name: str) -> None:
    if period < 1 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 20, 30)):
        raise _error("InvalidParameterValue", BAD_PERIOD.format(name=name))


def _evaluate_expressions(queries: Sequence[dict[str, Any]], series: dict[str, dict[Any, float]]) -> None:
    """Evaluate the expressions among ``queries`` into ``series``, each after the expressions it reads."""
    known = set(series) | {q["Id"] for q in queries}
    pending = {}
    for query in queries:
        expression = metric_math.parse(query["Expression"])
        if expression.band is not None:
            raise _error("ValidationError", NOT_EMULATED.format(what="ANOMALY_DETECTION_BAND outside an alarm"))
        unknown = sorted(expression.ids - known)
        if unknown:
            raise _error("ValidationError", f"The expression of query {query['Id']} names unknown ids: "
                                            f"{', '.join(unknown)}.")
        pending[query["Id"]] = expression
    while pending:
        ready = [i for i, e in pending.items() if not e.ids & pending.keys()]
        if not ready:
            raise _error("ValidationError", "The expressions of queries " + ", ".join(sorted(pending))
                         + " refer to each other in a circle.")
        for query_id in ready:
            series[query_id] = metric_math.evaluate(pending.pop(query_id), series)


def _windows(store: MetricStore, key: SeriesKey, stat: str, unit: str | None, now: float, period: int,
             count: int) -> dict[Any, float]:
    """A statistic over the last ``count`` windows of ``period`` seconds ending now: {window: value},
    window 0 the newest ([now - period, now)), only windows with data."""
    by_window: dict[int, Aggregate] = {}
    for second, agg in store.seconds(key, now - count * period, now, unit):
        window = math.ceil((now - second) / period) - 1
        if window in by_window:
            by_window[window].merge(agg)
        else:
            by_window[window] = agg
    values = {}
    for window, agg in by_window.items():
        value = agg.statistic(stat)
        if value is not None:
            values[window] = value
    return values


def _dimensions(dimensions: Any) -> metrics.Dimensions:
    return metrics.dimensions_key((d["Name"], d["Value"]) for d in dimensions or [])


def _series_key(region: str, namespace: str, metric: str, dimensions: Any) -> SeriesKey:
    return (region, namespace, metric, _dimensions(dimensions))


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str, limit: int) -> int:
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _error("InvalidNextToken", "The service couldn't process the NextToken.") from exc
    if not 0 <= offset <= limit:
        raise _error("InvalidNextToken", "The service couldn't process the NextToken.")
    return offset


def _sample_keys(region: str, endpoint: str, variant: str) -> metrics.VariantKeys:
    dims = metrics.dimensions_key([("EndpointName", endpoint), ("VariantName", variant)])
    names = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency")
    a, b, c, d, e = ((region, SAGEMAKER_NAMESPACE, name, dims) for name in names)
    return (a, b, c, d, e)
