"""CloudWatch through the running local cloud with stock boto3 clients, in both protocols."""

from __future__ import annotations

import datetime as dt
import json
import shutil
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
