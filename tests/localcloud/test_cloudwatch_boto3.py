"""CloudWatch through the running local cloud with stock boto3 clients, in both protocols."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config

from tests.localcloud_fixtures import ECHO_HANDLER, FAILING_HANDLER, LocalCloud

DIMS = [{"Name": "EndpointName", "Value": "cw-echo"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def _capturing(client: Any) -> list[Any]:
    """The requests ``client`` sends, as botocore prepared them."""
    sent: list[Any] = []
    client.meta.events.register("before-send.cloudwatch", lambda request, **_: sent.append(request))
    return sent


def _cbor_client(local_cloud: LocalCloud, tmp_path: Path, region: str) -> Any:
    """A stock client of a botocore that prefers rpc-v2-cbor: the same model with CBOR listed alone."""
    source = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
    target = tmp_path / "models" / "cloudwatch" / "2010-08-01"
    target.mkdir(parents=True)
    for item in source.iterdir():
        shutil.copy(item, target / item.name)
    import gzip

    model_file = target / "service-2.json.gz"
    model = json.loads(gzip.decompress(model_file.read_bytes())) if model_file.exists() else json.loads(
        (target / "service-2.json").read_text())
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    for name in ("service-2.json.gz", "service-2.json"):
        (target / name).unlink(missing_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path / "models"))
    return boto3.Session(botocore_session=session).client(
        "cloudwatch", region_name=region, endpoint_url=local_cloud.url, aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))


def _alarm_cycle(cw: Any, name: str) -> None:
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                        Dimensions=DIMS, Statistic="Sum", Period=10, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="drill")
    described = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert [(a["AlarmName"], a["StateValue"], a["StateReason"]) for a in described] == [(name, "ALARM", "drill")]
    assert isinstance(described[0]["StateUpdatedTimestamp"], dt.datetime)
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.set_alarm_state(AlarmName=f"{name}-missing", StateValue="OK", StateReason="x")
    with pytest.raises(botocore.exceptions.ClientError) as invalid:
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocations", Statistic="Sum",
                            Period=7, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    assert invalid.value.response["Error"]["Code"] == "ValidationError"
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_stock_botocore_sends_json_and_gets_answers(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "eu-west-1")
    sent = _capturing(cw)

    _alarm_cycle(cw, "json-alarm")

    # botocore 1.44.8 ranks json before rpc-v2-cbor, so this is what stock clients send here.
    first = sent[0]
    assert first.url.rstrip("/") == local_cloud.url
    assert first.headers["X-Amz-Target"] == b"GraniteServiceVersion20100801.PutMetricAlarm"
    assert first.headers["x-amzn-query-mode"] == b"true"


def test_a_cbor_preferring_botocore_gets_answers(local_cloud: LocalCloud, tmp_path: Path) -> None:
    cw = _cbor_client(local_cloud, tmp_path, "ap-southeast-2")
    sent = _capturing(cw)

    _alarm_cycle(cw, "cbor-alarm")

    assert sent[0].url == f"{local_cloud.url}/service/GraniteServiceVersion20100801/operation/PutMetricAlarm"
    assert sent[0].headers["smithy-protocol"] == b"rpc-v2-cbor"


@pytest.mark.slow
def test_invocations_are_recorded_per_variant_and_alarms_fire_on_them(local_cloud: LocalCloud) -> None:
    region = "us-west-2"
    echo = local_cloud.add_test_image("cw-echo", {"inference.py": ECHO_HANDLER})
    failing = local_cloud.add_test_image("cw-failing", {"inference.py": FAILING_HANDLER})
    local_cloud.create_endpoint("cw-echo", echo, region=region)
    local_cloud.create_endpoint("cw-failing", failing, region=region)
    runtime = local_cloud.client("sagemaker-runtime", region)
    cw = local_cloud.client("cloudwatch", region)
    cw.put_metric_alarm(AlarmName="cw-failing-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                        Dimensions=[{"Name": "EndpointName", "Value": "cw-failing"},
                                    {"Name": "VariantName", "Value": "AllTraffic"}],
                        Statistic="Sum", Period=10, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")

    for i in range(4):
        runtime.invoke_endpoint(EndpointName="cw-echo", Body=json.dumps(i), ContentType="application/json")
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName="cw-failing", Body=b"1", ContentType="application/json")

    now = dt.datetime.now(dt.UTC)

    def stat(endpoint: str, metric: str, statistic: str) -> float | None:
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=[statistic],
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        )["Datapoints"]
        return sum(p[statistic] for p in points) if points else None

    assert stat("cw-echo", "Invocations", "Sum") == 4
    assert stat("cw-echo", "Invocation5XXErrors", "Sum") == 0
    assert stat("cw-failing", "Invocation5XXErrors", "Sum") == 1
    assert (stat("cw-echo", "ModelLatency", "Minimum") or 0) > 0
    assert stat("cw-echo", "OverheadLatency", "SampleCount") == 4
    deadline = time.monotonic() + 10
    while cw.describe_alarms(AlarmNames=["cw-failing-5xx"])["MetricAlarms"][0]["StateValue"] != "ALARM":
        assert time.monotonic() < deadline, "the 5xx alarm never fired"
        time.sleep(0.2)
    assert cw.describe_alarms(AlarmNames=["cw-failing-5xx"])["MetricAlarms"][0]["StateReason"].startswith(
        "Threshold Crossed: 1 out of the last 1 datapoints")


# --- fidelity: operations, ARNs and validation as AWS documents them --------------------------------------


def _simple_alarm(cw: Any, name: str, **extra: Any) -> None:
    cw.put_metric_alarm(AlarmName=name, Namespace="Fidelity", MetricName="cpu", Statistic="Average", Period=60,
                        EvaluationPeriods=1, Threshold=2.0, ComparisonOperator="GreaterThanThreshold", **extra)


def test_alarm_tags_are_kept_listed_changed_and_removed(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "eu-central-1")
    _simple_alarm(cw, "tagged", Tags=[{"Key": "modelops:release", "Value": "r1"}])
    arn = cw.describe_alarms(AlarmNames=["tagged"])["MetricAlarms"][0]["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "modelops:release", "Value": "r1"}]

    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "ml"}, {"Key": "modelops:release", "Value": "r2"}])
    assert sorted((t["Key"], t["Value"]) for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]) == [
        ("modelops:release", "r2"), ("team", "ml")]
    # PutMetricAlarm on an existing alarm leaves its tags alone (the API reference: use TagResource).
    _simple_alarm(cw, "tagged", Tags=[{"Key": "ignored", "Value": "x"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team", "never-there"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "modelops:release", "Value": "r2"}]

    absent = arn.replace(":alarm:tagged", ":alarm:absent")
    for call in (lambda: cw.list_tags_for_resource(ResourceARN=absent),
                 lambda: cw.tag_resource(ResourceARN=absent, Tags=[{"Key": "k", "Value": "v"}]),
                 lambda: cw.untag_resource(ResourceARN=absent, TagKeys=["k"])):
        with pytest.raises(cw.exceptions.ResourceNotFoundException) as missing:
            call()
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    cw.delete_alarms(AlarmNames=["tagged"])
    with pytest.raises(cw.exceptions.ResourceNotFoundException):
        cw.list_tags_for_resource(ResourceARN=arn)  # the tags went with the alarm


def test_alarm_actions_are_enabled_and_disabled(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "eu-central-1")
    _simple_alarm(cw, "actions", ActionsEnabled=True)
    cw.disable_alarm_actions(AlarmNames=["actions", "not-an-alarm"])  # unknown names are ignored
    assert cw.describe_alarms(AlarmNames=["actions"])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=["actions"])
    assert cw.describe_alarms(AlarmNames=["actions"])["MetricAlarms"][0]["ActionsEnabled"] is True
    cw.delete_alarms(AlarmNames=["actions"])


def test_describe_alarms_for_metric_finds_single_metric_alarms_by_their_metric(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "ca-central-1")
    dims = [{"Name": "Host", "Value": "a"}]
    _simple_alarm(cw, "cpu-any")
    _simple_alarm(cw, "cpu-host-a", Dimensions=dims)
    cw.put_metric_alarm(AlarmName="cpu-p99", Namespace="Fidelity", MetricName="cpu", ExtendedStatistic="p99",
                        Period=60, EvaluationPeriods=1, Threshold=2.0, ComparisonOperator="GreaterThanThreshold")
    _math_alarm(cw, "cpu-math", "Fidelity", "cpu")  # reads the metric through metric math: not listed

    def names(**filters: Any) -> list[str]:
        return sorted(a["AlarmName"] for a in cw.describe_alarms_for_metric(
            Namespace="Fidelity", MetricName="cpu", **filters)["MetricAlarms"])

    assert names() == ["cpu-any", "cpu-host-a", "cpu-p99"]
    assert names(Dimensions=dims) == ["cpu-host-a"]
    assert names(Statistic="Average", Period=60) == ["cpu-any", "cpu-host-a"]
    assert names(ExtendedStatistic="p99") == ["cpu-p99"]
    assert cw.describe_alarms_for_metric(Namespace="Fidelity", MetricName="memory")["MetricAlarms"] == []


def _math_alarm(cw: Any, name: str, namespace: str, metric: str) -> list[dict[str, Any]]:
    metrics = [
        {"Id": "total", "Expression": "used + spare", "Label": "total", "ReturnData": True},
        {"Id": "used", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                                 "Dimensions": [{"Name": "Host", "Value": "b"}]},
                                      "Period": 60, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "spare", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "spare"},
                                       "Period": 60, "Stat": "Sum", "Unit": "Seconds"}, "ReturnData": False},
    ]
    cw.put_metric_alarm(AlarmName=name, EvaluationPeriods=1, DatapointsToAlarm=1, Metrics=metrics,
                        ComparisonOperator="GreaterThanThreshold", Threshold=1.0)
    return metrics


def test_metric_math_alarms_are_described_with_their_queries(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "eu-north-1")
    _simple_alarm(cw, "single")
    metrics = _math_alarm(cw, "math", "Fidelity", "used")

    described = {a["AlarmName"]: a for a in cw.describe_alarms()["MetricAlarms"]}
    assert sorted(described) == ["math", "single"]
    assert described["math"]["Metrics"] == metrics and "MetricName" not in described["math"]
    assert (described["math"]["EvaluationPeriods"], described["math"]["DatapointsToAlarm"]) == (1, 1)
    assert "Metrics" not in described["single"]
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmTypes=["MetricAlarm"], AlarmNamePrefix="ma")[
        "MetricAlarms"]] == ["math"]


def test_anomaly_detection_alarms_are_accepted_and_fire_outside_the_band(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "eu-west-3")
    metrics = [
        {"Id": "m1", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Fidelity", "MetricName": "latency"}, "Period": 10, "Stat": "Average"}},
        {"Id": "ad1", "ReturnData": True, "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "expected"},
    ]
    cw.put_metric_alarm(AlarmName="latency-anomaly", Metrics=metrics, EvaluationPeriods=1,
                        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold", ThresholdMetricId="ad1")
    described = cw.describe_alarms(AlarmNames=["latency-anomaly"])["MetricAlarms"][0]
    assert (described["ThresholdMetricId"], described["Metrics"]) == ("ad1", metrics) and "Threshold" not in described
    # A steady history around 100 ms, then a datapoint far above it: outside the band.
    now = dt.datetime.now(dt.UTC)
    cw.put_metric_data(Namespace="Fidelity", MetricData=[
        {"MetricName": "latency", "Value": value, "Timestamp": now - dt.timedelta(seconds=15 + 10 * i)}
        for i, value in enumerate([100.0, 102.0, 98.0, 101.0, 99.0, 100.0])])
    cw.put_metric_data(Namespace="Fidelity", MetricData=[{"MetricName": "latency", "Value": 400.0}])
    deadline = time.monotonic() + 10
    while (state := cw.describe_alarms(AlarmNames=["latency-anomaly"])["MetricAlarms"][0])["StateValue"] != "ALARM":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert "outside the band" in state["StateReason"]

    with pytest.raises(botocore.exceptions.ClientError) as static:  # a band compared as a static threshold
        cw.put_metric_alarm(AlarmName="bad-anomaly", Metrics=metrics, EvaluationPeriods=1,
                            ComparisonOperator="GreaterThanThreshold", ThresholdMetricId="ad1")
    assert static.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as not_a_band:
        cw.put_metric_alarm(AlarmName="bad-anomaly", Metrics=metrics, EvaluationPeriods=1,
                            ComparisonOperator="GreaterThanUpperThreshold", ThresholdMetricId="m1")
    assert not_a_band.value.response["Error"]["Code"] == "ValidationError"


@pytest.mark.parametrize(("region", "partition"), [
    ("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_arns_carry_the_partition_of_their_region(local_cloud: LocalCloud, region: str, partition: str) -> None:
    cw = local_cloud.client("cloudwatch", region)
    _simple_alarm(cw, "partitioned")
    arn = cw.describe_alarms(AlarmNames=["partitioned"])["MetricAlarms"][0]["AlarmArn"]
    assert arn == f"arn:{partition}:cloudwatch:{region}:000000000000:alarm:partitioned"
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    sm = local_cloud.client("sagemaker", region)
    model_arn = sm.create_model(ModelName="partitioned", PrimaryContainer={"Image": "x"},
                                ExecutionRoleArn=f"arn:{partition}:iam::000000000000:role/r")["ModelArn"]
    assert model_arn == f"arn:{partition}:sagemaker:{region}:000000000000:model/partitioned"
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == []
    sm.delete_model(ModelName="partitioned")
    cw.delete_alarms(AlarmNames=["partitioned"])


def test_put_metric_data_refuses_what_aws_refuses(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "sa-east-1", parameter_validation=False)

    def refused(*data: dict[str, Any]) -> tuple[str, str]:
        with pytest.raises(botocore.exceptions.ClientError) as error:
            cw.put_metric_data(Namespace="Fidelity", MetricData=list(data))
        return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]

    stats = {"SampleCount": 2.0, "Sum": 3.0, "Minimum": 1.0, "Maximum": 2.0}
    # Reported from the service: NaN is InvalidParameterValue (stock boto3 sends it as the string "NaN").
    assert refused({"MetricName": "m", "Value": float("nan")}) == (
        "InvalidParameterValue", "The value NaN for parameter MetricData.member.1.Value is invalid.")
    assert refused({"MetricName": "m", "Value": 1e300}) == (  # outside -2^360..2^360
        "InvalidParameterValue", "The value 1e+300 for parameter MetricData.member.1.Value is invalid.")
    assert refused({"MetricName": "m", "Value": 1.0, "StatisticValues": stats}) == (
        "InvalidParameterCombination", "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues"
                                       " are mutually exclusive and you have specified both.")
    assert refused({"MetricName": "m", "Value": 1.0, "Values": [1.0]})[0] == "InvalidParameterValue"
    assert refused({"MetricName": "m", "Values": [1.0], "StatisticValues": stats})[0] == "InvalidParameterCombination"
    assert refused({"MetricName": "m", "StatisticValues": {**stats, "SampleCount": 0.0}})[0] == "InvalidParameterValue"
    assert refused({"MetricName": "m", "StatisticValues": {**stats, "Minimum": 3.0}})[0] == "InvalidParameterValue"
    assert refused(*[{"MetricName": f"m{i}", "Value": 1.0} for i in range(1001)]) == (
        "InvalidParameterValue", "The collection MetricData must not have a size greater than 1000.")
    code, message = refused({"MetricName": "m", "Value": 1.0,
                             "Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]})
    assert code == "ValidationError" and message.startswith("1 validation error detected: Value '[")
    assert message.endswith("at 'metricData.1.member.dimensions' failed to satisfy constraint: Member must have "
                            "length less than or equal to 30")
    assert refused()[0] == "MissingParameter"
    assert refused({"MetricName": "m", "Value": 1.0, "Timestamp": dt.datetime(2001, 1, 1, tzinfo=dt.UTC)}) == (
        "InvalidParameterValue", "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks.")
    # None of it was kept: a refused request stores nothing.
    assert cw.list_metrics(Namespace="Fidelity", MetricName="m")["Metrics"] == []
    # 1,000 metrics and 30 dimensions are the limits themselves.
    cw.put_metric_data(Namespace="Fidelity", MetricData=[{"MetricName": f"ok{i}", "Value": 1.0} for i in range(1000)])
    cw.put_metric_data(Namespace="Fidelity", MetricData=[{"MetricName": "ok", "Value": 1.0, "Dimensions": [
        {"Name": f"d{i}", "Value": "v"} for i in range(30)]}])


def test_describe_alarms_refuses_an_unknown_state(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as bogus:
        cw.describe_alarms(StateValue="Bogus")
    assert bogus.value.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError", "QueryErrorCode": "ValidationException",
        "Message": "1 validation error detected: Value 'Bogus' at 'stateValue' failed to satisfy constraint: Member "
                   "must satisfy enum value set: [OK, ALARM, INSUFFICIENT_DATA]"}


def test_get_metric_data_honours_the_unit(local_cloud: LocalCloud) -> None:
    cw = local_cloud.client("cloudwatch", "ap-northeast-1")
    now = dt.datetime.now(dt.UTC)
    cw.put_metric_data(Namespace="Fidelity", MetricData=[
        {"MetricName": "duration", "Value": 2.0, "Unit": "Seconds", "Timestamp": now},
        {"MetricName": "duration", "Value": 3000.0, "Unit": "Milliseconds", "Timestamp": now}])

    def total(unit: str | None) -> list[float]:
        stat = {"Metric": {"Namespace": "Fidelity", "MetricName": "duration"}, "Period": 60, "Stat": "Sum"}
        if unit:
            stat["Unit"] = unit
        return list(cw.get_metric_data(StartTime=now - dt.timedelta(minutes=2), EndTime=now + dt.timedelta(minutes=2),
                                       MetricDataQueries=[{"Id": "d", "MetricStat": stat}])["MetricDataResults"][0]["Values"])

    assert total("Seconds") == [2.0]
    assert total("Milliseconds") == [3000.0]
    assert total(None) == [3002.0]  # no unit named: all of the metric's data
    assert total("Bytes") == []


@pytest.mark.slow
def test_a_failing_endpoint_puts_its_error_rate_alarm_in_alarm_with_nobody_deploying_or_looking(
        local_cloud: LocalCloud) -> None:
    # Reported: an endpoint answering 500 to every request (31 invokes) left its 5xx-rate alarm OK with
    # "0 out of the last 1 datapoints": alarms were evaluated only when someone described them (a rollout's
    # bake), so outside a deployment nothing recorded the errors, and a late look saw an empty window.
    region = "eu-south-1"
    failing = local_cloud.add_test_image("cw-failing", {"inference.py": FAILING_HANDLER})
    local_cloud.create_endpoint("always-500", failing, region=region)
    cw = local_cloud.client("cloudwatch", region)
    dims = [{"Name": "EndpointName", "Value": "always-500"}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def total(metric_id: str, metric: str) -> dict[str, Any]:
        return {"Id": metric_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": dims}, "Period": 10,
            "Stat": "Sum"}}

    # The alarm as `modelops deploy` makes it (modelops.deploy.specs.alarm_requests).
    cw.put_metric_alarm(AlarmName="always-500-5xx-rate", EvaluationPeriods=1, DatapointsToAlarm=1,
                        ComparisonOperator="GreaterThanThreshold", Threshold=0.05, TreatMissingData="notBreaching",
                        ActionsEnabled=False, Metrics=[
                            total("errors", "Invocation5XXErrors"), total("invocations", "Invocations"),
                            {"Id": "rate", "Expression": "errors / invocations", "Label": "5xx rate", "ReturnData": True}])
    runtime = local_cloud.client("sagemaker-runtime", region)
    stop = threading.Event()

    def traffic() -> None:  # the endpoint keeps failing while the test waits (nobody reads the alarm)
        while not stop.is_set():
            with contextlib.suppress(runtime.exceptions.ModelError):
                runtime.invoke_endpoint(EndpointName="always-500", Body=b"1", ContentType="application/json")
            time.sleep(0.1)

    first_failure = dt.datetime.now(dt.UTC)
    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(3)  # well within one 10 s period
        looked = dt.datetime.now(dt.UTC)
        alarm = cw.describe_alarms(AlarmNames=["always-500-5xx-rate"])["MetricAlarms"][0]
    finally:
        stop.set()
        sender.join()
    assert alarm["StateValue"] == "ALARM", alarm["StateReason"]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [1] were greater than")
    # Evaluated in the background, before anyone looked, and within two alarm periods of the first failure.
    assert first_failure <= alarm["StateUpdatedTimestamp"] < looked - dt.timedelta(seconds=0.5)
    assert alarm["StateUpdatedTimestamp"] - first_failure < dt.timedelta(seconds=20)
