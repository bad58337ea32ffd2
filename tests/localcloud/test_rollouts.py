"""Blue/green and rolling updates as the spec describes them, watched through DescribeEndpoint and
driven by CloudWatch alarms, with stock boto3 clients only."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.localcloud_fixtures import FAILING_HANDLER, LocalCloud

pytestmark = pytest.mark.slow


def _versioned(tag: str) -> str:
    return f'''
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return b"{tag}:" + data

def output_fn(prediction, accept):
    return prediction
'''


def _canary(wait: int, alarms: list[str] | None = None, termination: int = 0) -> dict[str, Any]:
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": wait,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
        "TerminationWaitInSeconds": termination, "MaximumExecutionTimeoutInSeconds": 600}}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def _observe(cloud: LocalCloud, endpoint: str, until_config: str | None = None, timeout: float = 120) -> list[tuple[Any, ...]]:
    """Every distinct (status, blue weight, green weight, green status, config) seen until the update ends:
    InService after another status, or InService on ``until_config`` (a short update on a loaded machine
    may be over before the first DescribeEndpoint)."""
    sm = cloud.client("sagemaker")
    seen: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=endpoint)
        pending = described.get("PendingDeploymentSummary")
        blue = described["ProductionVariants"][0]
        green = pending["ProductionVariants"][0] if pending else None
        state = (described["EndpointStatus"], blue["CurrentWeight"], green["CurrentWeight"] if green else None,
                 green["VariantStatus"][0]["Status"] if green else None, described["EndpointConfigName"])
        if not seen or seen[-1] != state:
            seen.append(state)
        started = started or described["EndpointStatus"] != "InService"
        done = started or (until_config is not None and described["EndpointConfigName"] == until_config)
        if done and described["EndpointStatus"] == "InService":
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the update of {endpoint} did not end: {seen}")


def test_a_canary_update_to_a_healthy_model_moves_traffic_step_by_step(local_cloud: LocalCloud) -> None:
    sm = local_cloud.client("sagemaker")
    v1 = local_cloud.add_test_image("v1", {"inference.py": _versioned("v1")})
    v2 = local_cloud.add_test_image("v2", {"inference.py": _versioned("v2")})
    local_cloud.create_endpoint("canary", v1)
    local_cloud.create_model("canary-m2", v2)
    local_cloud.create_config("canary-c2", {"AllTraffic": "canary-m2"})
    deployment = _canary(wait=4, termination=1)  # bakes long enough to be seen from a stalling test process
    sm.update_endpoint(EndpointName="canary", EndpointConfigName="canary-c2", DeploymentConfig=deployment)

    answers: Counter[bytes] = Counter()
    runtime = local_cloud.client("sagemaker-runtime")
    while True:  # during the canary bake, both fleets answer
        described = sm.describe_endpoint(EndpointName="canary")
        pending = described.get("PendingDeploymentSummary")
        if pending and pending["ProductionVariants"][0]["CurrentWeight"] == 0.5:
            canary = ("Updating", described["ProductionVariants"][0]["CurrentWeight"], 0.5,
                      pending["ProductionVariants"][0]["VariantStatus"][0]["Status"], described["EndpointConfigName"])
            for _ in range(40):
                answers[runtime.invoke_endpoint(EndpointName="canary", Body=b"x")["Body"].read()] += 1
            break
        assert described["EndpointStatus"] == "Updating", described
        time.sleep(0.05)
    assert answers[b"v1:x"] > 5 and answers[b"v2:x"] > 5, answers

    # The canary's state as seen above (on a loaded machine the 40 calls may outlast its 4 s bake), then the rest.
    seen = [canary, *_observe(local_cloud, "canary")]
    # (status, blue weight, green weight, green status, serving config)
    assert ("Updating", 0.5, 0.5, "Baking", "canary-c1") in seen  # the canary: half the capacity, half the traffic
    assert ("Updating", 0.0, 1.0, "Baking", "canary-c1") in seen  # the rest moved, final bake
    assert seen[-1] == ("InService", 1.0, None, None, "canary-c2")
    assert [s for s in seen if s[0] == "RollingBack"] == []
    described = sm.describe_endpoint(EndpointName="canary")
    assert "PendingDeploymentSummary" not in described
    assert described["LastDeploymentConfig"] == deployment
    assert described["ProductionVariants"][0]["DesiredWeight"] == 1.0
    assert "FailureReason" not in described
    assert runtime.invoke_endpoint(EndpointName="canary", Body=b"y")["Body"].read() == b"v2:y"


def test_a_canary_to_a_model_answering_500s_trips_the_alarm_and_rolls_back(local_cloud: LocalCloud) -> None:
    sm = local_cloud.client("sagemaker")
    cloudwatch = local_cloud.client("cloudwatch")
    good = local_cloud.add_test_image("good", {"inference.py": _versioned("good")})
    bad = local_cloud.add_test_image("bad", {"inference.py": FAILING_HANDLER})
    local_cloud.create_endpoint("guarded", good)
    local_cloud.create_model("guarded-m2", bad)
    local_cloud.create_config("guarded-c2", {"AllTraffic": "guarded-m2"})
    cloudwatch.put_metric_alarm(
        AlarmName="guarded-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": "guarded"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Statistic="Sum", Period=10, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching")

    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def traffic() -> None:
        runtime = local_cloud.client("sagemaker-runtime")
        while not stop.is_set():
            try:
                body = runtime.invoke_endpoint(EndpointName="guarded", Body=b"q")["Body"].read()
                outcomes["good" if body == b"good:q" else f"unexpected {body!r}"] += 1
            except ClientError as exc:
                error = exc.response
                from_green = error["Error"]["Code"] == "ModelError" and "exploded" in error.get("OriginalMessage", "")
                outcomes["green failed" if from_green else f"other {error['Error']['Code']}"] += 1
            time.sleep(0.01)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        sm.update_endpoint(EndpointName="guarded", EndpointConfigName="guarded-c2",
                           DeploymentConfig=_canary(wait=60, alarms=["guarded-5xx"]))
        seen = _observe(local_cloud, "guarded")
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join()
    statuses = [s[0] for s in seen]
    assert "RollingBack" in statuses
    assert seen[-1][0] == "InService" and seen[-1][4] == "guarded-c1"  # back on the OLD config
    described = sm.describe_endpoint(EndpointName="guarded")
    assert "guarded-5xx" in described["FailureReason"]
    assert "PendingDeploymentSummary" not in described
    # Every request the old variant took succeeded; the only failures came from the canary.
    assert set(outcomes) <= {"good", "green failed"}, outcomes
    assert outcomes["green failed"] > 0 and outcomes["good"] > 0
    alarm = cloudwatch.describe_alarms(AlarmNames=["guarded-5xx"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    runtime = local_cloud.client("sagemaker-runtime")
    assert {runtime.invoke_endpoint(EndpointName="guarded", Body=b"q")["Body"].read() for _ in range(10)} == {b"good:q"}


def test_a_rolling_update_replaces_a_batch_at_a_time(local_cloud: LocalCloud) -> None:
    sm = local_cloud.client("sagemaker")
    r1 = local_cloud.add_test_image("r1", {"inference.py": _versioned("r1")})
    r2 = local_cloud.add_test_image("r2", {"inference.py": _versioned("r2")})
    local_cloud.create_endpoint("rolling", r1, instances=2)
    local_cloud.create_model("rolling-m2", r2)
    local_cloud.create_config("rolling-c2", {"AllTraffic": "rolling-m2"}, instances=2)
    sm.update_endpoint(EndpointName="rolling", EndpointConfigName="rolling-c2", DeploymentConfig={
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 2,
                                "MaximumExecutionTimeoutInSeconds": 600}})
    counts = set()
    while True:
        described = sm.describe_endpoint(EndpointName="rolling")
        pending = described.get("PendingDeploymentSummary")
        if pending:
            blue, green = described["ProductionVariants"][0], pending["ProductionVariants"][0]
            counts.add((blue["DesiredInstanceCount"], green["DesiredInstanceCount"], green["CurrentWeight"]))
        if described["EndpointStatus"] == "InService":
            break
        time.sleep(0.05)
    assert (2, 1, 0.0) in counts or (1, 1, 0.5) in counts  # the first batch of one instance
    assert (1, 1, 0.5) in counts  # half the fleet replaced: half the traffic
    assert described["EndpointConfigName"] == "rolling-c2"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2


def test_a_linear_update_moves_traffic_one_step_at_a_time(local_cloud: LocalCloud) -> None:
    sm = local_cloud.client("sagemaker")
    v1 = local_cloud.add_test_image("v1", {"inference.py": _versioned("v1")})
    v2 = local_cloud.add_test_image("v2", {"inference.py": _versioned("v2")})
    local_cloud.create_endpoint("linear", v1)
    local_cloud.create_model("linear-m2", v2)
    local_cloud.create_config("linear-c2", {"AllTraffic": "linear-m2"})
    # Bakes of 3 s: a test process that stalls a second on a loaded CI machine still sees every step.
    deployment = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 3,
                                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 34}},
        "TerminationWaitInSeconds": 0, "MaximumExecutionTimeoutInSeconds": 600}}
    sm.update_endpoint(EndpointName="linear", EndpointConfigName="linear-c2", DeploymentConfig=deployment)

    seen = _observe(local_cloud, "linear")
    green_weights = [s[2] for s in seen if s[0] == "Updating" and s[3] == "Baking"]
    # 34% of the capacity a step: a third, two thirds, then all of the traffic, each step baked.
    assert [round(w, 2) for w in dict.fromkeys(green_weights)] == [0.34, 0.68, 1.0], seen
    assert seen[-1] == ("InService", 1.0, None, None, "linear-c2")
    assert sm.describe_endpoint(EndpointName="linear")["LastDeploymentConfig"] == deployment


def test_an_update_without_a_deployment_config_moves_all_traffic_at_once(local_cloud: LocalCloud) -> None:
    sm = local_cloud.client("sagemaker")
    v1 = local_cloud.add_test_image("v1", {"inference.py": _versioned("v1")})
    v2 = local_cloud.add_test_image("v2", {"inference.py": _versioned("v2")})
    local_cloud.create_endpoint("plain", v1)
    local_cloud.create_model("plain-m2", v2)
    local_cloud.create_config("plain-c2", {"AllTraffic": "plain-m2"})
    sm.update_endpoint(EndpointName="plain", EndpointConfigName="plain-c2")

    seen = _observe(local_cloud, "plain", until_config="plain-c2")
    assert {s[2] for s in seen if s[2] is not None} <= {0.0, 1.0}, seen  # no partial shift
    assert seen[-1] == ("InService", 1.0, None, None, "plain-c2")
    runtime = local_cloud.client("sagemaker-runtime")
    assert runtime.invoke_endpoint(EndpointName="plain", Body=b"z")["Body"].read() == b"v2:z"
    # DeleteEndpointConfig: the old config goes, and describing it is the service's ValidationException.
    sm.delete_endpoint_config(EndpointConfigName="plain-c1")
    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint_config(EndpointConfigName="plain-c1")
    assert missing.value.response["Error"]["Code"] == "ValidationException"


# Loads at most twice (a counter file): the third instance of it fails its ping health check.
TWICE_HANDLER = '''
import os

def model_fn(model_dir):
    counter = os.environ["LOAD_COUNTER"]
    loads = len(open(counter).read()) if os.path.exists(counter) else 0
    if loads >= 2:
        raise SystemExit("a third instance cannot load this model on purpose")
    with open(counter, "a") as handle:
        handle.write("x")
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return b"r2:" + data

def output_fn(prediction, accept):
    return prediction
'''


def test_a_rolling_update_that_fails_brings_the_old_fleet_back_a_rollback_batch_at_a_time(
        local_cloud: LocalCloud, tmp_path: Path) -> None:
    # RollingUpdatePolicy.RollbackMaximumBatchSize: the old fleet comes back that many instances at a time
    # (without it, all at once). Four instances, one replaced per batch: the third new instance fails, two
    # old ones had been retired, and they come back one by one.
    sm = local_cloud.client("sagemaker")
    # Each old instance takes a second to load, so the count between batches (3) lasts a second: long
    # enough to be seen by a test polling beside a busy CI machine's other jobs.
    slow_load = _versioned("r1").replace("    return None", "    import time\n    time.sleep(1.0)\n    return None", 1)
    r1 = local_cloud.add_test_image("r1-slow-load", {"inference.py": slow_load})
    twice = local_cloud.add_test_image("twice", {"inference.py": TWICE_HANDLER})
    local_cloud.create_endpoint("comeback", r1, instances=4)
    local_cloud.create_model("comeback-m2", twice, environment={"LOAD_COUNTER": str(tmp_path / "loads")})
    local_cloud.create_config("comeback-c2", {"AllTraffic": "comeback-m2"}, instances=4)
    sm.update_endpoint(EndpointName="comeback", EndpointConfigName="comeback-c2", DeploymentConfig={
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 0,
                                "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                "MaximumExecutionTimeoutInSeconds": 600}})
    blue_while_rolling_back: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName="comeback")
        if described["EndpointStatus"] == "RollingBack":
            count = described["ProductionVariants"][0]["CurrentInstanceCount"]
            if not blue_while_rolling_back or blue_while_rolling_back[-1] != count:
                blue_while_rolling_back.append(count)
        if described["EndpointStatus"] == "InService" and blue_while_rolling_back:
            break
        time.sleep(0.05)
    # Two old instances had been retired (2 left); they come back one at a time (3 is seen on the way).
    assert 3 in blue_while_rolling_back and blue_while_rolling_back == sorted(blue_while_rolling_back), \
        blue_while_rolling_back
    assert described["EndpointConfigName"] == "comeback-c1"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 4
    assert "a third instance cannot load this model on purpose" in described["FailureReason"]


def test_inf1_endpoints_fall_back_to_all_at_once(local_cloud: LocalCloud) -> None:
    # The spec: AWS Marketplace containers and Inf1 endpoints fall back to all at once with no final bake.
    sm = local_cloud.client("sagemaker")
    v1 = local_cloud.add_test_image("v1", {"inference.py": _versioned("v1")})
    v2 = local_cloud.add_test_image("v2", {"inference.py": _versioned("v2")})
    local_cloud.create_model("inf-m1", v1)
    local_cloud.create_model("inf-m2", v2)
    for config, model in (("inf-c1", "inf-m1"), ("inf-c2", "inf-m2")):
        local_cloud.create_config(config, [{"VariantName": "AllTraffic", "ModelName": model,
                                            "InstanceType": "ml.inf1.xlarge", "InitialInstanceCount": 2}])
    sm.create_endpoint(EndpointName="inf", EndpointConfigName="inf-c1")
    local_cloud.wait_for("inf", "InService")
    deployment = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 30,
                                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        "MaximumExecutionTimeoutInSeconds": 600}}
    sm.update_endpoint(EndpointName="inf", EndpointConfigName="inf-c2", DeploymentConfig=deployment)
    green_seen: set[tuple[float, str]] = set()
    while True:
        described = sm.describe_endpoint(EndpointName="inf")
        for green in (described.get("PendingDeploymentSummary") or {}).get("ProductionVariants", []):
            green_seen.add((green["CurrentWeight"], green["VariantStatus"][0]["StatusMessage"]))
        if described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "inf-c2":
            break
        time.sleep(0.05)
    assert {weight for weight, _ in green_seen} <= {0.0, 1.0}, green_seen  # no canary share
    assert not any("30 seconds" in message for _, message in green_seen), green_seen  # no 30 s bake at all
    assert sm.describe_endpoint(EndpointName="inf")["LastDeploymentConfig"] == deployment
