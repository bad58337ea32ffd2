"""CloudWatch of the local cloud, in process: botocore-serialized requests in both protocols, and
alarm evaluation on recorded traffic under an injected clock (no real waiting)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from urllib3 import HTTPHeaderDict

from modelops.localcloud.cloudwatch import CloudWatch

PROTOCOLS = ["json", "smithy-rpc-v2-cbor"]
T0 = 1_800_000_000.0  # a round time: periods of 10 and 60 s start at it
REGION = "us-east-1"
DIMS = [{"Name": "EndpointName", "Value": "iris-dev"}, {"Name": "VariantName", "Value": "AllTraffic"}]
MODEL = botocore.session.get_session().get_service_model("cloudwatch")


class FakeClock:
    def __init__(self, now: float):
        self.t = now

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class CallError(Exception):
    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(error)
        self.status = status
        self.code = error["Code"]
        self.message = error["Message"]


def call(cw: CloudWatch, protocol: str, operation: str, region: str = REGION, **params: Any) -> dict[str, Any]:
    """Serialize like botocore, answer with ``cw.handle``, parse like botocore."""
    op_model = MODEL.operation_model(operation)
    request = botocore.serialize.create_serializer(protocol).serialize_to_request(params, op_model)
    status, headers, body = cw.handle("POST", request["url_path"], request["headers"], request["body"], region)
    parsed = botocore.parsers.create_parser(protocol).parse(
        {"status_code": status, "headers": HTTPHeaderDict(headers), "body": body}, op_model.output_shape
    )
    if status >= 300:
        raise CallError(status, parsed["Error"])
    return parsed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def cw(tmp_path: Path, clock: FakeClock) -> Iterator[CloudWatch]:
    service = CloudWatch(tmp_path / "cw", clock=clock, flush_interval=None)
    yield service
    service.close()


def alarm(name: str = "iris-5xx", **overrides: Any) -> dict[str, Any]:
    params = {
        "AlarmName": name, "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
        "Dimensions": DIMS, "Statistic": "Sum", "Period": 10, "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
    }  # fmt: skip
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def traffic(cw: CloudWatch, count: int, *, status: int = 200, latency_us: int = 1000, region: str = REGION) -> None:
    for _ in range(count):
        cw.record(region, "iris-dev", "AllTraffic", status_code=status, model_latency_us=latency_us,
                  overhead_latency_us=50)


def state(cw: CloudWatch, name: str = "iris-5xx") -> str:
    return str(call(cw, "json", "DescribeAlarms", AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_alarm_lifecycle_over_the_wire(cw: CloudWatch, protocol: str) -> None:
    call(cw, protocol, "PutMetricAlarm", **alarm(TreatMissingData="missing"))

    described = call(cw, protocol, "DescribeAlarms", AlarmNames=["iris-5xx"])["MetricAlarms"][0]
    assert described["StateValue"] == "INSUFFICIENT_DATA"  # no traffic, missing data
    assert described["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:iris-5xx"
    assert described["Dimensions"] == DIMS and described["Period"] == 10 and described["Threshold"] == 1.0
    assert described["StateUpdatedTimestamp"] == dt.datetime.fromtimestamp(T0, dt.UTC)

    call(cw, protocol, "SetAlarmState", AlarmName="iris-5xx", StateValue="ALARM", StateReason="testing rollback")
    described = call(cw, protocol, "DescribeAlarms", AlarmNames=["iris-5xx"])["MetricAlarms"][0]
    assert (described["StateValue"], described["StateReason"]) == ("ALARM", "testing rollback")

    call(cw, protocol, "DeleteAlarms", AlarmNames=["iris-5xx", "never-existed"])
    assert call(cw, protocol, "DescribeAlarms")["MetricAlarms"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_carry_the_service_codes(cw: CloudWatch, protocol: str) -> None:
    with pytest.raises(CallError) as missing:
        call(cw, protocol, "SetAlarmState", AlarmName="nope", StateValue="ALARM", StateReason="x")
    assert (missing.value.status, missing.value.code, missing.value.message) == (404, "ResourceNotFound", "Alarm nope not found")

    with pytest.raises(CallError) as bad_period:
        call(cw, protocol, "PutMetricAlarm", **alarm(Period=15))
    assert (bad_period.value.code, bad_period.value.message) == (
        "ValidationError", "Period must be 10, 20, 30 or a multiple of 60.")

    with pytest.raises(CallError) as no_stats:
        call(cw, protocol, "GetMetricStatistics", Namespace="AWS/SageMaker", MetricName="Invocations",
             StartTime=T0 - 60, EndTime=T0, Period=60)
    assert (no_stats.value.code, no_stats.value.message) == (
        "InvalidParameterCombination", "Must specify either Statistics or ExtendedStatistics")

    with pytest.raises(CallError) as bad_state:
        call(cw, protocol, "SetAlarmState", AlarmName="nope", StateValue="ALARM", StateReason="x",
             StateReasonData="{not json")
    assert bad_state.value.code in ("InvalidFormat", "ResourceNotFound")


@pytest.mark.parametrize(("path", "headers"), [
    ("/", {"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"}),
    ("/service/GraniteServiceVersion20100801/operation/DescribeAlarms", {"smithy-protocol": "rpc-v2-cbor"}),
], ids=PROTOCOLS)
def test_malformed_bodies_and_unknown_operations_get_error_shapes(cw: CloudWatch, path: str, headers: dict) -> None:
    assert cw.handles(path, headers)
    status, answer_headers, _ = cw.handle("POST", path, headers, b"\xff{{not a document", REGION)
    assert status == 400 and ("x-amzn-query-error", "SerializationException;Sender") in answer_headers

    unknown_path = path.replace("DescribeAlarms", "DescribeAnomalyDetectors")
    unknown_headers = {k: v.replace("DescribeAlarms", "DescribeAnomalyDetectors") for k, v in headers.items()}
    status, answer_headers, _ = cw.handle("POST", unknown_path, unknown_headers, b"", REGION)
    assert status == 400 and ("x-amzn-query-error", "UnknownOperationException;Sender") in answer_headers

    assert not cw.handles("/", {"X-Amz-Target": "SageMaker.DescribeEndpoint"})


def test_botocore_validation_rejects_what_the_model_rejects(cw: CloudWatch) -> None:
    status, headers, body = cw.handle(
        "POST", "/", {"X-Amz-Target": "GraniteServiceVersion20100801.PutMetricAlarm"},
        b'{"AlarmName": "a", "EvaluationPeriods": "two"}', REGION,
    )
    assert status == 400 and ("x-amzn-query-error", "ValidationError;Sender") in headers
    # The model's shape of the query code ValidationError is ValidationException.
    assert json.loads(body)["__type"] == "com.amazonaws.cloudwatch#ValidationException"
    assert json.loads(body)["message"].startswith(
        "1 validation error detected: Invalid type for parameter EvaluationPeriods, value: two")

    status, _, body = cw.handle(
        "POST", "/", {"X-Amz-Target": "GraniteServiceVersion20100801.PutMetricAlarm"},
        b'{"AlarmName": "a", "EvaluationPeriods": 2}', REGION,
    )
    assert status == 400 and b"ComparisonOperator must be specified for a metric alarm" in body


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_statistics_and_percentiles_of_recorded_traffic(cw: CloudWatch, clock: FakeClock, protocol: str) -> None:
    for i in range(1, 11):  # ten requests at T0+1: latencies 1..10 ms, two of them 500s
        cw.record(REGION, "iris-dev", "AllTraffic", status_code=500 if i in (3, 7) else 200,
                  model_latency_us=i * 1000, overhead_latency_us=100)

    def stats(metric: str, **kw: Any) -> dict[str, Any]:
        points = call(cw, protocol, "GetMetricStatistics", Namespace="AWS/SageMaker", MetricName=metric,
                      Dimensions=DIMS, StartTime=T0 - 60, EndTime=T0 + 60, Period=60, **kw)["Datapoints"]
        assert len(points) == 1
        return dict(points[0])

    assert stats("Invocations", Statistics=["Sum"])["Sum"] == 10
    errors = stats("Invocation5XXErrors", Statistics=["Sum", "Average", "SampleCount"])
    assert (errors["Sum"], errors["Average"], errors["SampleCount"]) == (2, 0.2, 10)
    assert stats("Invocation4XXErrors", Statistics=["Sum"])["Sum"] == 0
    latency = stats("ModelLatency", Statistics=["Minimum", "Maximum", "Average"], ExtendedStatistics=["p50", "p90", "p100"])
    assert (latency["Minimum"], latency["Maximum"], latency["Average"], latency["Unit"]) == (1000, 10000, 5500, "Microseconds")
    assert latency["ExtendedStatistics"]["p50"] == pytest.approx(5000, rel=0.01)
    assert latency["ExtendedStatistics"]["p90"] == pytest.approx(9000, rel=0.01)
    assert latency["ExtendedStatistics"]["p100"] == 10000

    results = call(cw, protocol, "GetMetricData", StartTime=T0 - 60, EndTime=T0 + 60, MetricDataQueries=[
        {"Id": "errors", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
                                                   "Dimensions": DIMS}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                                                  "Dimensions": DIMS}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "rate", "Expression": "100 * errors / calls", "Label": "error rate"},
    ])["MetricDataResults"]
    assert [(r["Id"], r["Label"], r["Values"]) for r in results] == [("rate", "error rate", [20.0])]
    assert results[0]["Timestamps"] == [dt.datetime.fromtimestamp(T0 - T0 % 60, dt.UTC)]

    # Another region, and another variant, see none of it.
    assert call(cw, protocol, "GetMetricStatistics", "eu-west-1", Namespace="AWS/SageMaker", MetricName="Invocations",
                Dimensions=DIMS, StartTime=T0 - 60, EndTime=T0 + 60, Period=60, Statistics=["Sum"])["Datapoints"] == []


def test_an_alarm_fires_on_5xx_and_clears_when_errors_stop(cw: CloudWatch, clock: FakeClock) -> None:
    call(cw, "json", "PutMetricAlarm", **alarm())
    traffic(cw, 5)
    clock.t += 1
    assert cw.alarms_in_alarm(REGION, ["iris-5xx"]) == []

    traffic(cw, 1, status=500)
    clock.t += 1
    assert cw.alarms_in_alarm(REGION, ["iris-5xx", "not-an-alarm"]) == ["iris-5xx"]
    described = call(cw, "json", "DescribeAlarms", AlarmNames=["iris-5xx"])["MetricAlarms"][0]
    assert described["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [1]")

    clock.t += 10  # the 500 has left the 10 s window; no traffic since: notBreaching
    assert cw.alarms_in_alarm(REGION, ["iris-5xx"]) == []
    assert cw.alarms_in_alarm("eu-west-1", ["iris-5xx"]) == []  # alarms are regional


def test_datapoints_to_alarm_m_of_n_on_a_latency_percentile(cw: CloudWatch, clock: FakeClock) -> None:
    call(cw, "json", "PutMetricAlarm", **alarm(
        "iris-p99", MetricName="ModelLatency", Statistic=None, ExtendedStatistic="p99", Period=10,
        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=50_000.0, ComparisonOperator="GreaterThanThreshold"))
    # Period windows end now: [now-10, now) is window 0, [now-20, now-10) window 1, [now-30, now-20) window 2.
    clock.t = T0
    traffic(cw, 99, latency_us=1000)
    traffic(cw, 5, latency_us=90_000)  # p99 of this window: slow
    clock.t = T0 + 10
    traffic(cw, 100, latency_us=1000)  # fast window
    clock.t = T0 + 15
    assert state(cw, "iris-p99") == "OK"  # one breaching datapoint of three, two needed

    clock.t = T0 + 20
    traffic(cw, 10, latency_us=200_000)
    clock.t = T0 + 25
    assert state(cw, "iris-p99") == "ALARM"


@pytest.mark.parametrize(("treat", "expected"), [
    ("missing", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM"), ("ignore", "INSUFFICIENT_DATA"),
])
def test_treat_missing_data(cw: CloudWatch, clock: FakeClock, treat: str, expected: str) -> None:
    call(cw, "json", "PutMetricAlarm", **alarm(TreatMissingData=treat))
    clock.t += 1
    assert state(cw) == expected  # ignore keeps the initial INSUFFICIENT_DATA


def test_set_alarm_state_holds_for_one_period_then_the_alarm_is_evaluated_again(cw: CloudWatch, clock: FakeClock) -> None:
    call(cw, "json", "PutMetricAlarm", **alarm(Period=30))
    call(cw, "json", "SetAlarmState", AlarmName="iris-5xx", StateValue="ALARM", StateReason="drill")

    clock.t += 29
    assert cw.alarms_in_alarm(REGION, ["iris-5xx"]) == ["iris-5xx"]
    clock.t += 1
    assert cw.alarms_in_alarm(REGION, ["iris-5xx"]) == []  # no errors: back to OK


def test_metric_math_alarm_on_the_error_rate(cw: CloudWatch, clock: FakeClock) -> None:
    def stat(id_: str, metric: str) -> dict[str, Any]:
        return {"Id": id_, "ReturnData": False, "MetricStat": {"Metric": {
            "Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": DIMS}, "Period": 10, "Stat": "Sum"}}

    call(cw, "json", "PutMetricAlarm", AlarmName="rate", EvaluationPeriods=1, Threshold=10.0,
         ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching", Metrics=[
             stat("e", "Invocation5XXErrors"), stat("n", "Invocations"),
             {"Id": "r", "Expression": "e / n * 100", "ReturnData": True}])
    traffic(cw, 19)
    traffic(cw, 1, status=500)  # 5 %
    clock.t += 1
    assert cw.alarms_in_alarm(REGION, ["rate"]) == []
    traffic(cw, 3, status=503)  # 4 of 23: 17 %
    clock.t += 1
    assert cw.alarms_in_alarm(REGION, ["rate"]) == ["rate"]


def test_metrics_and_alarms_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = CloudWatch(tmp_path / "cw", clock=clock, flush_interval=None)
    call(first, "json", "PutMetricAlarm", **alarm())
    traffic(first, 4, status=500)
    clock.t += 1
    assert first.alarms_in_alarm(REGION, ["iris-5xx"]) == ["iris-5xx"]
    first.close()

    second = CloudWatch(tmp_path / "cw", clock=clock, flush_interval=None)
    try:
        points = call(second, "json", "GetMetricStatistics", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                      Dimensions=DIMS, StartTime=T0 - 60, EndTime=T0 + 60, Period=60, Statistics=["Sum"])["Datapoints"]
        assert [p["Sum"] for p in points] == [4]
        assert state(second) == "ALARM"
    finally:
        second.close()


def test_flush_moves_completed_seconds_without_losing_or_doubling_any(cw: CloudWatch, clock: FakeClock) -> None:
    traffic(cw, 3)
    clock.t += 1
    traffic(cw, 2)
    assert cw.store.flush(before=int(clock.t)) == 5  # the first second's five series; the current one stays
    traffic(cw, 1)

    points = call(cw, "json", "GetMetricStatistics", Namespace="AWS/SageMaker", MetricName="Invocations",
                  Dimensions=DIMS, StartTime=T0 - 60, EndTime=T0 + 60, Period=60, Statistics=["Sum"])["Datapoints"]
    assert [p["Sum"] for p in points] == [6]


def test_describe_alarms_pages_and_filters(cw: CloudWatch) -> None:
    for name in ("a1", "a2", "a3", "b1", "b2"):
        call(cw, "json", "PutMetricAlarm", **alarm(name))
    pages, token = [], None
    while True:
        page = call(cw, "json", "DescribeAlarms", AlarmNamePrefix="a", MaxRecords=2, **({"NextToken": token} if token else {}))
        pages.append([a["AlarmName"] for a in page["MetricAlarms"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [["a1", "a2"], ["a3"]]
    assert call(cw, "json", "DescribeAlarms", AlarmTypes=["CompositeAlarm"])["MetricAlarms"] == []
    with pytest.raises(CallError) as bad_token:
        call(cw, "json", "DescribeAlarms", NextToken="garbage")
    assert bad_token.value.code == "InvalidNextToken"


def test_put_metric_data_and_list_metrics(cw: CloudWatch) -> None:
    call(cw, "smithy-rpc-v2-cbor", "PutMetricData", Namespace="Modelops/Tests", MetricData=[
        {"MetricName": "queue", "Dimensions": [{"Name": "Model", "Value": "iris"}], "Values": [1.0, 3.0], "Counts": [1.0, 3.0]},
    ])
    with pytest.raises(CallError) as reserved:
        call(cw, "json", "PutMetricData", Namespace="AWS/SageMaker", MetricData=[{"MetricName": "x", "Value": 1.0}])
    assert reserved.value.code == "InvalidParameterValue"

    metrics = call(cw, "json", "ListMetrics", Namespace="Modelops/Tests")["Metrics"]
    assert metrics == [{"Namespace": "Modelops/Tests", "MetricName": "queue", "Dimensions": [{"Name": "Model", "Value": "iris"}]}]
    points = call(cw, "json", "GetMetricStatistics", Namespace="Modelops/Tests", MetricName="queue",
                  Dimensions=[{"Name": "Model", "Value": "iris"}], StartTime=T0 - 60, EndTime=T0 + 60, Period=60,
                  Statistics=["Average", "SampleCount"])["Datapoints"]
    assert [(p["SampleCount"], p["Average"]) for p in points] == [(4.0, 2.5)]


def test_alarms_are_evaluated_on_every_pass_of_the_background_evaluation_not_only_when_read(
        cw: CloudWatch, clock: FakeClock) -> None:
    # What the background thread does every second (flush_interval=None here: no thread, the test drives it).
    call(cw, "json", "PutMetricAlarm", **alarm())
    cw.evaluate_all()
    assert cw.alarms.get(REGION, "iris-5xx").state == "OK"  # type: ignore[union-attr]  # no traffic: notBreaching
    traffic(cw, 2, status=500)
    clock.t += 1
    cw.evaluate_all()
    stored = cw.alarms.get(REGION, "iris-5xx")
    assert stored is not None and (stored.state, stored.state_updated) == ("ALARM", T0 + 1)  # recorded, unread
    clock.t += 10  # the errors left the window; still nobody reads
    cw.evaluate_all()
    assert cw.alarms.get(REGION, "iris-5xx").state == "OK"  # type: ignore[union-attr]
