"""Faults, nothing lost: the local cloud on a disk that fills up, damaged state files, restarts.

The full disk is real (``tests/faults.py``: a tmpfs of a few MB filled to its last byte, each scenario run
in its own mount namespace), so every write meets what SQLite says then: SQLITE_FULL, or "disk I/O
error" from its shared memory. Writes of the
local cloud come first and memory follows, so a request that cannot be saved changes nothing, answers
ServiceUnavailable saying the disk is full, and succeeds when retried once there is room; a rollout
step that cannot be saved is taken again later; a restart finds everything that was answered as done.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelops.localcloud import status, stop, timing
from modelops.localcloud.cloudwatch import CloudWatch
from modelops.localcloud.lifecycle import DISK_FULL, DISK_FULL_HINT
from modelops.localcloud.protocol import CLOUDWATCH_JSON
from modelops.localcloud.state import StateUnavailable
from tests.faults import fill, in_small_filesystem
from tests.helpers import run_cli
from tests.localcloud_fixtures import ECHO_HANDLER, ROLE, LocalCloud, container_pids, start_local_cloud

pytestmark = pytest.mark.slow

# Documents big enough that SQLite must grow its files to write them (a small write can land in room
# its write-ahead log kept from earlier ones): 100 environment variables of 2 KB, the model's maximum.
HEAVY_ENV = {f"K{i}": "v" * 1024 for i in range(100)}


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def _container(uri: str) -> dict[str, Any]:
    return {"Image": uri, "Environment": HEAVY_ENV}


def test_a_full_disk_refuses_writes_cleanly_changes_nothing_and_loses_nothing(tmp_path: Path) -> None:
    # Reported: with the data dir's disk full, CreateModel answered 500, its retry said the model already
    # existed (memory had changed before the write failed), and after a restart the model was gone.
    in_small_filesystem(full_disk_scenario, tmp_path / "disk")


def full_disk_scenario(disk: Path) -> None:
    # Provisioning takes 2.4 s (the aws profile x 0.01): time to fill the disk while an endpoint is Creating.
    cloud = start_local_cloud(disk / "data", timing=timing("aws", 0.01))
    try:
        sm = cloud.client("sagemaker", "eu-west-1")
        uri = cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
        sm.create_model(ModelName="heavy", PrimaryContainer=_container(uri), ExecutionRoleArn=ROLE)
        cloud.create_config("heavy-c1", {"AllTraffic": "heavy"}, region="eu-west-1")
        sm.create_endpoint(EndpointName="heavy", EndpointConfigName="heavy-c1")
        filler = fill(disk)

        with pytest.raises(ClientError) as full:
            sm.create_model(ModelName="during", PrimaryContainer=_container(uri), ExecutionRoleArn=ROLE)
        status_code, code, message = _error(full)
        assert (status_code, code) == (503, "ServiceUnavailable")
        assert message == ("The local cloud cannot save its state: the disk holding "
                           f"{cloud.data_dir} is full. Free some space, then retry.")
        with pytest.raises(ClientError) as absent:  # memory did not change
            sm.describe_model(ModelName="during")
        assert _error(absent)[1] == "ValidationException"
        assert "during" not in [m["ModelName"] for m in sm.list_models()["Models"]]
        with pytest.raises(ClientError) as again:  # the retry is not told it "already exists"
            sm.create_model(ModelName="during", PrimaryContainer=_container(uri), ExecutionRoleArn=ROLE)
        assert _error(again)[1] == "ServiceUnavailable"

        cw = cloud.client("cloudwatch", "eu-west-1")
        with pytest.raises(ClientError) as alarm:
            cw.put_metric_alarm(**_heavy_alarm("during-alarm"))
        assert _error(alarm)[:2] == (503, "ServiceUnavailable")
        assert cw.describe_alarms(AlarmNames=["during-alarm"])["MetricAlarms"] == []

        # The endpoint's provisioning step cannot record its instance: it stays Creating, nothing runs.
        time.sleep(4)
        assert sm.describe_endpoint(EndpointName="heavy")["EndpointStatus"] == "Creating"
        assert container_pids(cloud.data_dir) == []

        filler.unlink()  # room again: everything proceeds, and retries succeed
        sm.create_model(ModelName="during", PrimaryContainer=_container(uri), ExecutionRoleArn=ROLE)
        cw.put_metric_alarm(**_heavy_alarm("during-alarm"))
        cloud.wait_for("heavy", "InService", region="eu-west-1")

        assert stop(cloud.data_dir)
        cloud = start_local_cloud(cloud.data_dir)
        sm = cloud.client("sagemaker", "eu-west-1")
        assert sm.describe_model(ModelName="during")["PrimaryContainer"]["Environment"] == HEAVY_ENV
        assert sm.describe_endpoint(EndpointName="heavy")["EndpointStatus"] == "InService"
        answer = cloud.client("sagemaker-runtime", "eu-west-1").invoke_endpoint(EndpointName="heavy", Body=b'"ok"')
        assert answer["Body"].read() == b'"ok"'
        assert [a["AlarmName"] for a in cloud.client("cloudwatch", "eu-west-1").describe_alarms()["MetricAlarms"]] \
            == ["during-alarm"]
    finally:
        stop(cloud.data_dir)


def _heavy_alarm(name: str) -> dict[str, Any]:
    dims = [{"Name": f"d{i}", "Value": "v" * 1024} for i in range(30)]
    queries = [{"Id": f"m{i}", "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": "Heavy", "MetricName": f"m{i}", "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}
        for i in range(10)]
    return {"AlarmName": name, "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold",
            "Metrics": [*queries, {"Id": "total", "Expression": " + ".join(q["Id"] for q in queries),
                                   "ReturnData": True}]}


def test_metrics_that_cannot_be_flushed_to_a_full_disk_stay_counted_and_are_written_later(tmp_path: Path) -> None:
    # The flush took the buffered seconds out before writing them: a failed write lost them.
    in_small_filesystem(metrics_flush_scenario, tmp_path / "disk", size_mb=8)


def metrics_flush_scenario(disk: Path) -> None:
    cw = CloudWatch(disk / "cw", flush_interval=None)
    try:
        now = time.time()
        for endpoint in range(2000):  # 10,000 series-seconds: more than SQLite's log has room for
            cw.record("eu-west-1", f"ep-{endpoint}", "AllTraffic", status_code=200, model_latency_us=100,
                      overhead_latency_us=10)
        filler = fill(disk)
        with pytest.raises(StateUnavailable, match=r"disk holding .* is full"):
            cw.flush()
        assert _invocations(cw, "ep-1999", now) == 1.0  # still counted
        filler.unlink()
        cw.flush()
    finally:
        cw.close()
    reopened = CloudWatch(disk / "cw", flush_interval=None)
    try:
        assert _invocations(reopened, "ep-1999", now) == 1.0 and _invocations(reopened, "ep-0", now) == 1.0
    finally:
        reopened.close()


def _invocations(cw: CloudWatch, endpoint: str, now: float) -> float | None:
    body = json.dumps({"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "StartTime": now - 120,
                       "EndTime": now + 120, "Period": 60, "Statistics": ["Sum"], "Dimensions": [
                           {"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]})
    status_code, _, answer = cw.call("GetMetricStatistics", body.encode(), CLOUDWATCH_JSON, "eu-west-1")
    assert status_code == 200, answer
    points = json.loads(answer)["Datapoints"]
    return sum(p["Sum"] for p in points) if points else None


@pytest.mark.parametrize("damaged", ["state.sqlite", "cloudwatch.sqlite"])
def test_an_empty_state_file_is_refused_as_damaged_not_taken_for_an_empty_state(tmp_path: Path, damaged: str) -> None:
    # A zero-byte file (a truncation, a disk that filled up at the wrong moment) was read as "no state":
    # every model, endpoint and alarm silently gone.
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    (data_dir / damaged).touch()
    result = run_cli("local", "up", "--data-dir", data_dir, "--output", "json")
    assert result.exit_code == 3, result
    assert result.json()["error"]["message"].endswith(
        f"ERROR modelops.localcloud: cannot open {data_dir / damaged}: the file is empty (0 bytes), not a database; "
        "move that file away and the local cloud starts with it empty")
    assert status(data_dir) is None and (data_dir / damaged).stat().st_size == 0  # left for the user to look at


def test_a_server_that_cannot_create_its_state_on_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    in_small_filesystem(server_start_scenario, tmp_path / "disk", size_mb=2)


def server_start_scenario(disk: Path) -> None:
    (disk / "data").mkdir()
    fill(disk)  # not even the server's log has room: its exit status says it
    result = run_cli("local", "up", "--data-dir", disk / "data", "--output", "json")
    assert result.exit_code == 3, result
    assert result.json()["error"] == {
        "message": DISK_FULL.format(data_dir=disk / "data"), "hint": DISK_FULL_HINT, "exit_status": 3}, result.json()


def test_after_a_restart_an_endpoint_reported_in_service_answers_its_first_request(tmp_path: Path) -> None:
    # Reported: after `local down` + `local up`, DescribeEndpoint said InService while invokes answered
    # ModelNotReadyException until the containers were back. Now a request waits for its instance.
    cloud = start_local_cloud(tmp_path / "cloud")
    try:
        cloud.create_endpoint("restored", cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER}),
                              region="ap-south-1")
        assert stop(cloud.data_dir)
        cloud = start_local_cloud(cloud.data_dir)
        restored = LocalCloud(cloud.url, cloud.data_dir, cloud.pid)
        assert restored.client("sagemaker", "ap-south-1").describe_endpoint(
            EndpointName="restored")["EndpointStatus"] == "InService"
        answer = restored.client("sagemaker-runtime", "ap-south-1").invoke_endpoint(EndpointName="restored",
                                                                                   Body=b'"first"')
        assert answer["Body"].read() == b'"first"'

        (pid,) = container_pids(cloud.data_dir)
        os.killpg(pid, signal.SIGKILL)  # a crashed instance: requests wait for its replacement too
        time.sleep(0.5)
        answer = restored.client("sagemaker-runtime", "ap-south-1").invoke_endpoint(EndpointName="restored",
                                                                                   Body=b'"again"')
        assert answer["Body"].read() == b'"again"'
    finally:
        stop(cloud.data_dir)
