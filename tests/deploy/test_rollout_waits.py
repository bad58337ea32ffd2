"""How a rollout waits between its passes: on the local cloud it watches the endpoint and goes on as
soon as it changes; on AWS (no watch) it sleeps the whole poll interval and asks nothing meanwhile,
DescribeEndpoint being throttled."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.deploy.cloud import RegionCloud
from modelops.deploy.rollout import wait_for_change
from modelops.runtime import Runtime, SystemClock
from tests.localcloud_fixtures import ECHO_HANDLER, LocalCloud, local_cloud  # noqa: F401 - the fixture

LONG_POLL = 600.0  # a pass this far apart: only a change of the endpoint ends the wait before it


class RecordingClock(SystemClock):
    """The system clock, keeping what it was asked to sleep."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        super().sleep(seconds)


@dataclass
class _Env:
    name: str


class _LocalClients:
    """The clients of one local environment: the test's local cloud's boto3 clients."""

    def __init__(self, cloud: LocalCloud):
        self.environment = _Env("dev")
        self._cloud = cloud

    def client(self, service: str, region: str) -> Any:
        return self._cloud.client(service, region)


class _ThrottledCloud:
    """A region whose every DescribeEndpoint would count against the throttle: it records them."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def endpoint(self, name: str, *, with_tags: bool = True) -> None:
        self.described.append(name)


def _runtime(tmp_path: Path, clock: RecordingClock) -> Runtime:
    return Runtime(cwd=tmp_path, data_dir=tmp_path / "data", environ={}, clock=clock)


def test_a_waiting_rollout_goes_on_as_soon_as_the_endpoint_changes(local_cloud: LocalCloud,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    # given a canary update baking, as the last pass saw it
    sm = local_cloud.client("sagemaker")
    uri = local_cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
    local_cloud.create_endpoint("watched", uri)
    local_cloud.create_model("watched-m2", uri)
    local_cloud.create_config("watched-c2", {"AllTraffic": "watched-m2"})
    sm.update_endpoint(EndpointName="watched", EndpointConfigName="watched-c2", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "CANARY", "WaitIntervalInSeconds": 2, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}}})
    cloud = RegionCloud(_LocalClients(local_cloud), "us-east-1")  # type: ignore[arg-type]
    seen = cloud.endpoint("watched")
    while seen is not None and "Baking, weight 0.5" not in seen.phase:
        seen = cloud.endpoint("watched")
    clock = RecordingClock()

    # when the rollout waits for its next pass, watching the endpoint
    wait_for_change(cloud, "watched", seen, _runtime(tmp_path, clock), poll_seconds=LONG_POLL, watch_seconds=0.1)

    # then it went on once the endpoint moved (all traffic on green, or through), not at the next pass
    now = cloud.endpoint("watched")
    assert now is not None and seen is not None and (now.status, now.phase) != (seen.status, seen.phase), now
    assert clock.slept and all(s <= 0.1 for s in clock.slept) and sum(clock.slept) < LONG_POLL, clock.slept


def test_a_wait_asked_to_stop_ends_at_the_next_look(local_cloud: LocalCloud, tmp_path: Path) -> None:  # noqa: F811
    uri = local_cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
    local_cloud.create_endpoint("still", uri)
    cloud = RegionCloud(_LocalClients(local_cloud), "us-east-1")  # type: ignore[arg-type]
    seen = cloud.endpoint("still")
    stop = threading.Event()
    stop.set()  # Ctrl-C in another thread of the same deploy
    clock = RecordingClock()

    wait_for_change(cloud, "still", seen, _runtime(tmp_path, clock), poll_seconds=LONG_POLL, watch_seconds=0.1,
                    stop=stop)

    assert clock.slept == [0.1]


def test_without_a_watch_the_wait_is_one_poll_and_asks_the_cloud_nothing(tmp_path: Path) -> None:
    # AWS: DescribeEndpoint is throttled and an endpoint moves in minutes
    for watch in (None, 15.0):
        cloud = _ThrottledCloud()
        clock = RecordingClock()
        wait_for_change(cloud, "iris-prod", None, _runtime(tmp_path, clock),  # type: ignore[arg-type]
                        poll_seconds=0.01, watch_seconds=watch)
        assert clock.slept == [0.01] and cloud.described == [], (watch, clock.slept, cloud.described)
