"""Real time: the ``aws`` timing profile gives the service's own phases SageMaker's lengths, scaled.

Only lower bounds are asserted (a phase lasts at least its scaled length; a busy machine makes it
longer, never shorter), so the tests hold on any machine; the fast default is what every other test runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelops.localcloud import stop, timing
from modelops.localcloud.timing import BAD_PROFILE, BAD_SCALE
from tests.helpers import run_cli
from tests.localcloud_fixtures import ECHO_HANDLER, LocalCloud, start_local_cloud

pytestmark = pytest.mark.slow

SCALE = 0.01  # provisioning 2.4 s, a traffic shift 0.3 s, retiring a fleet 0.9 s, deleting 0.6 s


def _phases(cloud: LocalCloud, endpoint: str, until: str, since: float, *,
            timeout: float = 120) -> list[tuple[str, str, float]]:
    """(EndpointStatus, the deployment's VariantStatus, seconds since ``since``, taken before the call) as
    they change, until ``until``."""
    sm = cloud.client("sagemaker")
    started = since
    seen: list[tuple[str, str, float]] = []
    while time.monotonic() - started < timeout:
        try:
            described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        except sm.exceptions.ClientError:
            if until == "gone":
                seen.append(("gone", "", time.monotonic() - started))
                return seen
            raise
        pending = (described.get("PendingDeploymentSummary") or {}).get("ProductionVariants") or [{}]
        variant = (pending[0].get("VariantStatus") or [{}])[0].get("Status", "")
        phase = (described["EndpointStatus"], variant)
        if not seen or seen[-1][:2] != phase:
            seen.append((*phase, time.monotonic() - started))
        if described["EndpointStatus"] == until and not described.get("PendingDeploymentSummary"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{endpoint} did not reach {until}: {seen}")


def _first(phases: list[tuple[str, str, float]], status: str, variant: str = "") -> float:
    return next(at for s, v, at in phases if s == status and (not variant or v == variant))


def test_the_aws_profile_gives_creation_updates_and_deletion_sagemakers_proportions(tmp_path: Path) -> None:
    scaled = timing("aws", SCALE)
    cloud = start_local_cloud(tmp_path / "cloud", timing=scaled)
    try:
        sm = cloud.client("sagemaker")
        uri = cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
        cloud.create_model("slow-m1", uri)
        cloud.create_model("slow-m2", uri)
        cloud.create_config("slow-c1", {"AllTraffic": "slow-m1"}, instances=2)
        cloud.create_config("slow-c2", {"AllTraffic": "slow-m2"}, instances=2)

        called = time.monotonic()
        sm.create_endpoint(EndpointName="slow", EndpointConfigName="slow-c1")
        created = _phases(cloud, "slow", "InService", called)
        assert created[0][:2] == ("Creating", "Creating")
        assert _first(created, "InService") >= scaled.seconds("provision")  # launching the instances takes minutes

        called = time.monotonic()
        sm.update_endpoint(EndpointName="slow", EndpointConfigName="slow-c2", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}}})
        updated = _phases(cloud, "slow", "InService", called)
        statuses = [variant for status, variant, _ in updated if status == "Updating"]
        assert statuses[0] == "Creating" and "ActivatingTraffic" in statuses and "Baking" in statuses, updated
        # green's provisioning, two traffic shifts, two bakes of 1 s as asked (unscaled), retiring blue
        least = scaled.seconds("provision") + 2 * scaled.seconds("traffic_shift") + 2 * 1 + scaled.seconds("retire")
        assert _first(updated, "InService") >= least, updated
        assert _first(updated, "Updating", "ActivatingTraffic") >= scaled.seconds("provision")

        called = time.monotonic()
        sm.delete_endpoint(EndpointName="slow")
        deleted = _phases(cloud, "slow", "gone", called)
        assert _first(deleted, "gone") >= scaled.seconds("delete")  # Deleting all along (a busy poller may miss it)
    finally:
        stop(cloud.data_dir)


def test_the_profile_is_chosen_with_local_up_and_reported(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    up = run_cli("local", "up", "--data-dir", data_dir, "--timing", "aws", "--time-scale", "0.05", "--output", "json")
    assert up.exit_code == 0, up
    try:
        assert up.json()["timing"] == {"profile": "aws", "scale": 0.05}
        assert run_cli("local", "status", "--data-dir", data_dir, "--output", "json").json()["timing"] == {
            "profile": "aws", "scale": 0.05}
        text = run_cli("local", "status", "--data-dir", data_dir)
        assert "timing aws x 0.05" in text.stderr
        again = run_cli("local", "up", "--data-dir", data_dir, "--timing", "fast")
        assert "it runs with timing aws x 0.05, not fast x 1; `modelops local down` first" in again.stderr
    finally:
        run_cli("local", "down", "--data-dir", data_dir)


@pytest.mark.parametrize(("options", "message"), [
    (["--timing", "glacial"], BAD_PROFILE.format(name="glacial", profiles="fast, aws")),
    (["--timing", "aws", "--time-scale", "0"], BAD_SCALE.format(scale=0.0)),
])
def test_an_unknown_profile_or_scale_is_refused(tmp_path: Path, options: list[str], message: str) -> None:
    refused = run_cli("local", "up", "--data-dir", tmp_path / "cloud", *options, "--output", "json")
    assert refused.exit_code == 2, refused
    assert refused.json()["error"]["message"] == message
    assert not (tmp_path / "cloud" / "server.json").exists()
