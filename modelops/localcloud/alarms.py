"""CloudWatch metric alarms: their configuration rules and their evaluation, as pure functions.

:func:`alarm_config` checks a PutMetricAlarm request against the service's own rules (beyond the
model's) and returns the configuration as stored. :func:`evaluate` turns an alarm's datapoints into
its state, the reason and the reason data CloudWatch writes; it reads nothing and writes nothing (the
CloudWatch service fetches the datapoints and persists a change of state).

Three kinds of alarm: a single metric (``MetricName``, ``Statistic`` or ``ExtendedStatistic``,
``Period``), metric math (``Metrics``: queries and expressions, one of which returns the value),
and anomaly detection (``ThresholdMetricId`` naming an ``ANOMALY_DETECTION_BAND`` expression: the
value is compared with the band, not with a ``Threshold``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelops.localcloud import metric_math
from modelops.localcloud.metrics import PERCENTILE, STATISTICS
from modelops.localcloud.protocol import ServiceError, number_text, partition_of

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
BAND_COMPARISONS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")
_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside",
    "LessThanLowerThreshold": "less than the lower bound of",
    "GreaterThanUpperThreshold": "greater than the upper bound of",
}
INITIAL_REASON = "Unchecked: Initial alarm creation"
MAX_EVALUATED_SECONDS = 86400  # Period x EvaluationPeriods

# The service's own words where they are known (reported from the real service); the rest are inferred.
BAD_EXTENDED_STATISTIC = "The value {value} for parameter ExtendedStatistic is not supported."
BAD_LOW_SAMPLE_OPTION = ("Option {value} is not supported. Supported options for parameter "
                         "EvaluateLowSampleCountPercentile are evaluate and ignore.")
BAD_NUMBER = "The value {value} for parameter {name} is invalid."
NOT_EMULATED = "{what} alarms are not emulated by the local cloud."


def _error(message: str) -> ServiceError:
    return ServiceError("ValidationError", message)


@dataclass(frozen=True)
class Datapoint:
    """One evaluation period of an alarm: its value, and its band for an anomaly-detection alarm
    (None when unknown: a missing datapoint)."""

    value: float | None
    band: tuple[float, float] | None = None


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: str


# ------------------------------------------------------------------------------ configuration


def alarm_config(params: dict[str, Any]) -> dict[str, Any]:
    """The alarm's configuration as stored (its tags apart), after the service's own rules."""
    config = {k: v for k, v in params.items() if k != "Tags"}
    if config.get("EvaluationCriteria") is not None:
        raise _error(NOT_EMULATED.format(what="EvaluationCriteria (PromQL)"))
    extended = config.get("ExtendedStatistic")
    if extended is not None and not PERCENTILE.match(extended):
        raise ServiceError("InvalidParameterValue", BAD_EXTENDED_STATISTIC.format(value=extended))
    low_sample = config.get("EvaluateLowSampleCountPercentile")
    if low_sample is not None and low_sample not in ("evaluate", "ignore"):
        raise _error(BAD_LOW_SAMPLE_OPTION.format(value=low_sample))
    threshold = config.get("Threshold")
    if threshold is not None and not math.isfinite(threshold):
        raise ServiceError("InvalidParameterValue", BAD_NUMBER.format(value=number_text(threshold), name="Threshold"))
    for required in ("EvaluationPeriods", "ComparisonOperator"):
        if config.get(required) is None:
            raise _error(f"{required} must be specified for a metric alarm.")
    periods = int(config["EvaluationPeriods"])
    needed = config.get("DatapointsToAlarm")
    if needed is not None and not 1 <= int(needed) <= periods:
        raise _error("DatapointsToAlarm must be between 1 and the value of EvaluationPeriods.")
    treat = config.get("TreatMissingData")
    if treat is not None and treat not in TREAT_MISSING:
        raise _error(f"TreatMissingData {treat!r} is not one of " + ", ".join(TREAT_MISSING) + ".")
    if config.get("Metrics"):
        _check_metric_math(config, periods)
    else:
        _check_single_metric(config, periods)
    if config.get("ThresholdMetricId") is None:
        if config["ComparisonOperator"] not in COMPARISONS:
            raise _error(f"ComparisonOperator {config['ComparisonOperator']} is used only for alarms based on anomaly "
                         "detection models (with ThresholdMetricId).")
        if threshold is None:
            raise _error("Threshold must be specified for a static threshold alarm.")
    return config


def _check_single_metric(config: dict[str, Any], periods: int) -> None:
    if config.get("ThresholdMetricId") is not None:
        raise _error("ThresholdMetricId can only be used with Metrics (an ANOMALY_DETECTION_BAND expression).")
    for required in ("MetricName", "Namespace", "Period"):
        if config.get(required) is None:
            raise _error(f"{required} must be specified for a single-metric alarm.")
    statistic, extended = config.get("Statistic"), config.get("ExtendedStatistic")
    if (statistic is None) == (extended is None):
        raise _error("Exactly one of Statistic and ExtendedStatistic must be specified.")
    _check_period(int(config["Period"]), periods)


def _check_metric_math(config: dict[str, Any], periods: int) -> None:
    if any(config.get(k) for k in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period")):
        raise _error("Metrics cannot be combined with MetricName, Namespace, Statistic, ExtendedStatistic, Dimensions "
                     "or Period.")
    queries = config["Metrics"]
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        raise _error("The values for parameter Id in Metrics are not unique.")
    band_id = config.get("ThresholdMetricId")
    parsed: dict[str, metric_math.Expression] = {}
    for query in queries:
        stat = query.get("MetricStat")
        if (stat is None) == (query.get("Expression") is None):
            raise _error(f"Query {query['Id']} of Metrics needs exactly one of MetricStat and Expression.")
        if stat is not None:
            _check_period(int(stat["Period"]), periods)
            if stat["Stat"] not in STATISTICS and not PERCENTILE.match(stat["Stat"]):
                raise _error(f"Stat {stat['Stat']} of query {query['Id']} is not a valid statistic.")
        else:
            parsed[query["Id"]] = metric_math.parse(query["Expression"])
    for query_id, expression in parsed.items():
        unknown = sorted(expression.ids - set(ids) | ({query_id} & expression.ids))
        if unknown:
            raise _error(f"The expression of query {query_id} names ids that are not other queries of the alarm: "
                         f"{', '.join(unknown)}.")
        if expression.band is not None and query_id != band_id:
            raise _error(f"Query {query_id} is an ANOMALY_DETECTION_BAND: name it in ThresholdMetricId.")
    if band_id is not None:
        band = parsed.get(band_id)
        if band is None or band.band is None:
            raise _error(f"ThresholdMetricId {band_id} must name the query holding the ANOMALY_DETECTION_BAND expression.")
        if config.get("Threshold") is not None:
            raise _error("Threshold cannot be specified with ThresholdMetricId (the band is the threshold).")
        if config["ComparisonOperator"] not in BAND_COMPARISONS:
            raise _error("An alarm based on an anomaly detection model needs ComparisonOperator "
                         + ", ".join(BAND_COMPARISONS[:-1]) + f" or {BAND_COMPARISONS[-1]}.")
    returned = [q["Id"] for q in queries if q.get("ReturnData", True) and q["Id"] != band_id]
    if len(returned) != 1:
        raise _error("Exactly one element of Metrics (besides the ThresholdMetricId) must have ReturnData set to true.")


def _check_period(period: int, periods: int) -> None:
    if period not in (10, 20, 30) and (period < 60 or period % 60):
        raise _error("Period must be 10, 20, 30 or a multiple of 60.")
    if period * periods > MAX_EVALUATED_SECONDS:
        raise _error("The evaluation period (Period x EvaluationPeriods) must not exceed one day.")


def alarm_period(config: dict[str, Any]) -> int:
    """The length of one of the alarm's datapoints, in seconds."""
    if not config.get("Metrics"):
        return int(config["Period"])
    periods = [int(q["MetricStat"]["Period"]) for q in config["Metrics"] if q.get("MetricStat")]
    return min(periods) if periods else 60


def returned_id(config: dict[str, Any]) -> str:
    """The id of the query whose value a metric-math alarm compares."""
    band_id = config.get("ThresholdMetricId")
    return next(q["Id"] for q in config["Metrics"] if q.get("ReturnData", True) and q["Id"] != band_id)


def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:{partition_of(region)}:cloudwatch:{region}:{account}:alarm:{name}"


# ------------------------------------------------------------------------------ evaluation


def evaluate(config: dict[str, Any], points: Sequence[Datapoint], current: str, now: float) -> Evaluation:
    """The alarm's state from its last EvaluationPeriods datapoints (``points[0]`` the newest).

    DatapointsToAlarm of them must breach to alarm; TreatMissingData says what a missing datapoint
    is (``missing``: with no datapoint at all the state is INSUFFICIENT_DATA; ``ignore``: the state
    stays; ``breaching`` and ``notBreaching``: it counts as one)."""
    periods = int(config["EvaluationPeriods"])
    needed = int(config.get("DatapointsToAlarm") or periods)
    treat = config.get("TreatMissingData") or "missing"
    operator_name = config["ComparisonOperator"]
    present = [p for p in points if p.value is not None and (config.get("ThresholdMetricId") is None or p.band)]
    breaching = sum(1 for p in present if _breaches(config, p))
    if treat == "breaching":
        breaching += len(points) - len(present)
    if breaching >= needed:
        state = "ALARM"
    elif not present and treat == "ignore":
        state = current
    elif not present and treat == "missing":
        state = "INSUFFICIENT_DATA"
    else:
        state = "OK"
    shown = ", ".join(f"{p.value:g}" for p in present[:10])
    against = _threshold_words(config, present)
    words = _WORDS[operator_name]
    if state == "INSUFFICIENT_DATA":
        reason = f"Insufficient Data: {periods} datapoint{'s were' if periods != 1 else ' was'} unknown."
    elif state == "ALARM":
        reason = (f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] were {words} "
                  f"{against} (minimum {needed} datapoints for OK -> ALARM transition).")
    else:
        reason = (f"Threshold Crossed: {len(present) - min(breaching, len(present))} out of the last {periods} "
                  f"datapoints [{shown}] were not {words} {against} (minimum {needed} datapoints for ALARM -> OK "
                  "transition).")
    period = alarm_period(config)
    reason_data = {
        "version": "1.0",
        "queryDate": _iso(now),
        "statistic": config.get("Statistic") or config.get("ExtendedStatistic"),
        "period": period,
        "recentDatapoints": [p.value for p in present],
        "evaluatedDatapoints": [
            {"timestamp": _iso(now - (i + 1) * period), **({"value": p.value} if p.value is not None else {})}
            for i, p in enumerate(points)
        ],
    }
    if config.get("Threshold") is not None:
        reason_data["threshold"] = float(config["Threshold"])
    return Evaluation(state, reason, json.dumps(reason_data))


def _breaches(config: dict[str, Any], point: Datapoint) -> bool:
    assert point.value is not None
    name = config["ComparisonOperator"]
    if point.band is None:
        return COMPARISONS[name](point.value, float(config["Threshold"]))
    low, high = point.band
    if name == "LessThanLowerThreshold":
        return point.value < low
    if name == "GreaterThanUpperThreshold":
        return point.value > high
    return point.value < low or point.value > high


def _threshold_words(config: dict[str, Any], present: Sequence[Datapoint]) -> str:
    if config.get("ThresholdMetricId") is None:
        return f"the threshold ({float(config['Threshold']):g})"
    bands = ", ".join(f"{p.band[0]:g}..{p.band[1]:g}" for p in present[:10] if p.band)
    return f"the band [{bands}]"


def band(history: Sequence[float], width: float) -> tuple[float, float] | None:
    """An anomaly detection band from a metric's past values: the mean, plus and minus ``width``
    standard deviations. CloudWatch trains a model on up to two weeks of the metric (with its daily
    and weekly patterns); the local cloud has minutes of history, so its band is this plain one
    (inferred: the documented meaning of the width), and there is none before three datapoints."""
    if len(history) < 3:
        return None
    mean = sum(history) / len(history)
    deviation = math.sqrt(sum((v - mean) ** 2 for v in history) / len(history))
    return mean - width * deviation, mean + width * deviation


def describe_alarm(region: str, account: str, row: Any, current: dict[str, Any]) -> dict[str, Any]:
    """The MetricAlarm of DescribeAlarms for a stored alarm and its current state."""
    config = row.config
    alarm: dict[str, Any] = {
        "AlarmName": row.name,
        "AlarmArn": alarm_arn(region, account, row.name),
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
        "ComparisonOperator": config["ComparisonOperator"],
        "TreatMissingData": config.get("TreatMissingData", "missing"),
    }
    if config.get("Threshold") is not None:
        alarm["Threshold"] = float(config["Threshold"])
    if current.get("reason_data"):
        alarm["StateReasonData"] = current["reason_data"]
    for key in ("AlarmDescription", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Period",
                "Unit", "DatapointsToAlarm", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId"):
        if config.get(key) is not None:
            alarm[key] = config[key]
    if "Namespace" in config:
        alarm["Dimensions"] = config.get("Dimensions") or []
    return alarm


def _datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _iso(epoch: float) -> str:
    return _datetime(epoch).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
