"""status, plan, diff and sync read what actually serves, on the real local cloud: every out-of-band
change (counts, weights, a deleted alarm, another endpoint config: instance type, container
environment, image) shows field by field in plan/diff and is repaired by sync; a 500ing endpoint is
degraded in status with no deployment running; a rolled-back release stays out until unblocked."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import predict_exploding_once
from tests.helpers import commit_all, run_cli

pytestmark = pytest.mark.slow

ERROR_ALARM = "modelops-iris-dev-5xx-rate"


def local_client(service: str, region: str = "us-east-1") -> Any:
    """A stock boto3 client of the local cloud the test's deploys started: an operator's console."""
    import boto3

    info = json.loads((Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]) / "server.json").read_text())
    return boto3.client(service, region_name=region, endpoint_url=info["url"], aws_access_key_id="operator",
                        aws_secret_access_key="operator")


def wait_in_service(endpoint: str = "iris-dev") -> dict[str, Any]:
    sm = local_client("sagemaker")
    deadline = time.monotonic() + 120
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] == "InService" or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def only_iris_in_dev(repo: Path, *, instances: int = 2) -> None:
    """The repo with iris alone, on ``instances`` instances in dev."""
    shutil.rmtree(repo / "models" / "minilm-embeddings")
    model = repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace("    instance_count: 1\n", f"    instance_count: {instances}\n", 1))
    commit_all(repo, "iris alone, on two instances")


def out_of_band_config(name: str, *, image: str | None = None, env: dict[str, str] | None = None,
                       instance_type: str | None = None) -> None:
    """What an operator does by hand: a model and endpoint config like the serving ones but for one
    field, and UpdateEndpoint to it."""
    sm = local_client("sagemaker")
    serving = sm.describe_endpoint(EndpointName="iris-dev")
    config = sm.describe_endpoint_config(EndpointConfigName=serving["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    container = {k: model["PrimaryContainer"][k] for k in ("Image", "ModelDataUrl", "Environment")
                 if k in model["PrimaryContainer"]}
    if image is not None:
        container["Image"] = image
    if env is not None:
        container["Environment"] = {**container.get("Environment", {}), **env}
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=model["ExecutionRoleArn"])
    sm.create_endpoint_config(EndpointConfigName=f"{name}-ec", ProductionVariants=[{
        "VariantName": "primary", "ModelName": name, "InitialInstanceCount": variant["InitialInstanceCount"],
        "InstanceType": instance_type or variant["InstanceType"], "InitialVariantWeight": 1.0}])
    sm.update_endpoint(EndpointName="iris-dev", EndpointConfigName=f"{name}-ec")


def diff_fields(repo: Path) -> dict[str, tuple[Any, Any, str]]:
    result = run_cli("diff", "iris", "--env", "dev", "--output", "json", cwd=repo)
    assert result.exit_code in (0, 1), result
    [region] = result.json()["regions"]
    return {d["field"]: (d["observed"], d["desired"], d["repair"]) for d in region["diff"]}


def dev_row(repo: Path) -> dict[str, Any]:
    result = run_cli("status", "iris", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return next(r for r in result.json()["endpoints"] if r["env"] == "dev")


def test_every_out_of_band_change_shows_in_plan_and_diff_and_sync_repairs_it(cloud_repo: Path) -> None:
    only_iris_in_dev(cloud_repo)
    # An image of another build of iris, for the operator's image change below (the repo goes back after).
    inference = cloud_repo / "models" / "iris" / "code" / "inference.py"
    original = inference.read_text()
    inference.write_text(original + "\n# another build\n")
    commit_all(cloud_repo, "another build")
    other = run_cli("build", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert other.exit_code == 0, other
    other_image = other.json()["images"][0]["image_uri"]
    inference.write_text(original)
    commit_all(cloud_repo, "back to the deployed code")

    deployed = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert deployed.exit_code == 0, deployed
    release = deployed.json()["release"]
    in_sync = run_cli("diff", "iris", "--env", "dev", cwd=cloud_repo)
    assert in_sync.exit_code == 0 and "no differences" in in_sync.stderr, in_sync
    serving_config = f"iris-dev-{release.rsplit('-', 1)[1]}-ec"

    def change_counts() -> None:
        local_client("sagemaker").update_endpoint_weights_and_capacities(EndpointName="iris-dev", DesiredWeightsAndCapacities=[
            {"VariantName": "primary", "DesiredInstanceCount": 1, "DesiredWeight": 0.5}])

    cases: list[tuple[str, Callable[[], None], dict[str, tuple[Any, Any, str]]]] = [
        ("count and weight", change_counts, {
            "variants.primary.desired_instance_count": ("1", "2", "capacity"),
            "variants.primary.weight": ("0.5", "1", "capacity")}),
        ("alarm deleted", lambda: local_client("cloudwatch").delete_alarms(AlarmNames=[ERROR_ALARM]), {
            "alarms.5xx-rate": (None, "5xx rate > 0.01 over 60 s x 1", "alarms")}),
        ("another config", lambda: out_of_band_config("iris-dev-bigger", instance_type="ml.m5.xlarge"), {
            "release": ("unknown (config iris-dev-bigger-ec)", release, "rollout"),
            "endpoint_config": ("iris-dev-bigger-ec", serving_config, "rollout"),
            "variants.primary.instance_type": ("ml.m5.xlarge", "ml.m5.large", "rollout")}),
        ("env", lambda: out_of_band_config("iris-dev-debug", env={"SAGEMAKER_CONTAINER_LOG_LEVEL": "10"}), {
            "variants.primary.environment.SAGEMAKER_CONTAINER_LOG_LEVEL": ("10", "20", "rollout")}),
        ("image", lambda: out_of_band_config("iris-dev-other-image", image=other_image), {
            "variants.primary.image": (other_image, None, "rollout")}),
    ]
    for name, change, expected in cases:
        # Given: an operator's change outside modelops
        change()
        wait_in_service()

        # Then: status shows what serves (the tags still name the release), plan and diff show the change
        row = dev_row(cloud_repo)
        assert row["release_tag"] == release, (name, row)
        if "release" in expected:
            assert (row["release"], row["config"]) == (None, "iris-dev-bigger-ec"), row
        if name == "count and weight":
            [blue] = row["weights"]
            assert (blue["weight"], blue["desired_instances"]) == (0.5, 1), row
        found = diff_fields(cloud_repo)
        for field, (observed, desired, repair) in expected.items():
            assert field in found, (name, found)
            assert found[field][0] == observed and found[field][2] == repair, (name, field, found[field])
            if desired is not None:
                assert found[field][1] == desired, (name, field, found[field])
        plan = run_cli("plan", "iris", "--env", "dev", cwd=cloud_repo)
        assert plan.exit_code == 1, (name, plan)
        checked = run_cli("sync", "--env", "dev", "--check", "--output", "json", cwd=cloud_repo)
        assert checked.exit_code == 1 and [p["model"] for p in checked.json()["drift"]] == ["iris"], (name, checked)

        # When: sync; Then: it repairs the change and nothing differs any more
        synced = run_cli("sync", "--env", "dev", "--output", "json", cwd=cloud_repo)
        assert synced.exit_code == 0, (name, synced)
        assert [(d["model"], d["release"], d["result"]) for d in synced.json()["deployed"]] == [
            ("iris", release, "succeeded")], (name, synced)
        assert diff_fields(cloud_repo) == {}, name
        assert dev_row(cloud_repo)["release"] == release, name
    steps = run_cli("history", "iris", "--env", "dev", "--kind", "step", "--output", "json", cwd=cloud_repo).json()
    taken = [e["step"] for e in steps["entries"]]
    assert "set-capacity" in taken and "put-alarms" in taken and taken.count("update-endpoint") == 3, taken


def test_a_500ing_endpoint_is_degraded_in_status_with_no_deployment_running(cloud_repo: Path, tmp_path: Path) -> None:
    # Given: a release in dev that serves well until the sentinel exists
    sentinel = tmp_path / "explode-now"
    only_iris_in_dev(cloud_repo, instances=1)
    inference = cloud_repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + predict_exploding_once(sentinel))
    commit_all(cloud_repo, "a release that starts answering 500s")
    assert run_cli("deploy", "iris", "--env", "dev", cwd=cloud_repo).exit_code == 0
    for _ in range(5):
        assert run_cli("invoke", "iris", "--env", "dev", "--body", "[[5.1, 3.5, 1.4, 0.2]]", cwd=cloud_repo).exit_code == 0
    healthy = dev_row(cloud_repo)
    assert healthy["health"] == "healthy", healthy
    assert healthy["health_detail"]["invocations"] == 5 and healthy["health_detail"]["error_rate_5xx"] == 0, healthy

    # When: it starts answering 500 (no deployment running), and a few requests come in
    sentinel.write_text("")
    for _ in range(10):
        assert run_cli("invoke", "iris", "--env", "dev", "--body", "[[5.1, 3.5, 1.4, 0.2]]", cwd=cloud_repo).exit_code == 1

    # Then: status says degraded, with the figures and the SLO alarm (in place between deployments) firing
    # once CloudWatch has evaluated it again (alarms are evaluated on a schedule, so they lag the requests)
    row = dev_row(cloud_repo)
    deadline = time.monotonic() + 60
    while row["health_detail"]["alarms"][ERROR_ALARM] != "ALARM" and time.monotonic() < deadline:
        time.sleep(0.5)
        row = dev_row(cloud_repo)
    assert row["status"] == "InService" and row["health"] == "degraded", row
    detail = row["health_detail"]
    assert detail["alarms"][ERROR_ALARM] == "ALARM", detail
    assert detail["error_rate_5xx"] > 0.5 and detail["invocations"] >= 10, detail
    assert any(r.startswith("5xx rate ") and "above 0.01" in r for r in detail["reasons"]), detail
    text = run_cli("status", "iris", cwd=cloud_repo)
    assert "dev/us-east-1: degraded: alarm modelops-iris-dev-5xx-rate in ALARM" in text.stderr, text
    # and a nightly drift check fails on it though nothing drifted
    checked = run_cli("sync", "--env", "dev", "--check", "--output", "json", cwd=cloud_repo)
    assert checked.exit_code == 1, checked
    assert checked.json()["drift"] == [] and checked.json()["degraded"][0].startswith("iris dev/us-east-1: degraded"), checked


def test_a_rolled_back_release_is_refused_by_deploy_sync_and_plan_until_unblocked(cloud_repo: Path,
                                                                                 tmp_path: Path) -> None:
    # Given: a release serving dev, then a second one that answers 500s, rolled back by hand
    only_iris_in_dev(cloud_repo, instances=1)
    first = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert first.exit_code == 0, first
    inference = cloud_repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + "\n# the second release\n")
    commit_all(cloud_repo, "a second release")
    second = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert second.exit_code == 0, second
    bad = second.json()["release"]
    back = run_cli("rollback", "iris", "--env", "dev", "--reason", "wrong labels", cwd=cloud_repo)
    assert back.exit_code == 0, back

    # Then: deploy, plan and sync refuse it, in one line naming the release, the rollback and the way out
    refused = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert refused.exit_code == 1, refused
    message = refused.json()["error"]["message"]
    assert message.startswith(f"release {bad} is blocked in dev since "), message
    assert ": rolled back by hand in us-east-1: wrong labels, by tester@example.com ($MODELOPS_USER, unauthenticated); " \
        in message, message
    assert message.endswith(f"run `modelops release unblock {bad} --env dev --reason TEXT` to allow it again"), message
    plan = run_cli("plan", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert plan.exit_code == 1 and plan.json()["blocked"] == message, plan
    synced = run_cli("sync", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert synced.exit_code == 1 and synced.json()["deployed"] == [], synced
    assert synced.json()["errors"] == [f"iris: {message}"], synced
    assert dev_row(cloud_repo)["release"] == first.json()["release"]  # still the first

    # When: someone unblocks it; Then: the ledger says who and why, and it rolls out again
    assert run_cli("release", "unblock", bad, "--env", "dev", cwd=cloud_repo).exit_code == 2  # a reason is required
    # (only whom pipelines/access.yaml lets unblock: its release-reviewers)
    denied = run_cli("release", "unblock", bad, "--env", "dev", "--reason", "mine", cwd=cloud_repo)
    assert denied.exit_code == 1 and "may not unblock in dev" in denied.stderr, denied
    unblocked = run_cli("release", "unblock", bad, "--env", "dev", "--reason", "labels were right after all",
                        cwd=cloud_repo, env={"MODELOPS_USER": "reviewer@example.com"})
    assert unblocked.exit_code == 0, unblocked
    blocks = run_cli("history", "iris", "--kind", "block", "--output", "json", cwd=cloud_repo).json()["entries"]
    assert [(b["blocked"], b["by"], b["reason"]) for b in blocks] == [
        (True, "tester@example.com ($MODELOPS_USER, unauthenticated)", "rolled back by hand in us-east-1: wrong labels"),
        (False, "reviewer@example.com ($MODELOPS_USER, unauthenticated)", "labels were right after all")]
    again = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert again.exit_code == 0 and again.json()["release"] == bad, again
