"""The cloud going away in the middle of a rollout: the region fails (exit 3) with a reason said once,
and the same command converges once the cloud is back."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from modelops.deploy import DeployRequest, deploy
from modelops.runtime import NullProgress, Runtime

pytestmark = pytest.mark.slow


class _KillTheCloudAt(NullProgress):
    """Progress that SIGKILLs the local cloud when the rollout reports ``step``."""

    def __init__(self, data_dir: Path, step: str):
        self.data_dir, self.step_name = data_dir, step
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        from modelops import localcloud

        self.lines.append(message)
        if message.endswith(": " + self.step_name):
            info = localcloud.status(self.data_dir)
            assert info is not None
            os.kill(info.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # reap it when this process started it
                os.waitpid(info.pid, 0)


def test_a_cloud_killed_mid_rollout_fails_the_region_naming_it_once_then_a_rerun_converges(cloud_repo: Path) -> None:
    data_dir = Path(os.environ["MODELOPS_LOCAL_DATA_DIR"])
    progress = _KillTheCloudAt(data_dir, "create-model")
    runtime = Runtime(cwd=cloud_repo, data_dir=cloud_repo.parent / "data", environ=dict(os.environ), progress=progress)
    result = deploy(DeployRequest("models/iris", environment="dev"), runtime)
    assert result.exit_status == 3, result
    (region,) = result.deployments
    # It tried for OUTAGE_POLLS polls (a dead local cloud does not come back), then failed the region
    # with the last thing it could not reach.
    assert any(line.startswith("dev/us-east-1: model iris-dev-") and line.endswith("trying again for up to 4 s")
               for line in progress.lines), progress.lines
    assert region.status == "failed" and region.detail.startswith("endpoint iris-dev: cannot reach http://127.0.0.1:"), region
    # The reason named dev/us-east-1 twice ("... failed in dev/us-east-1: dev/us-east-1: model ...").
    assert result.message.startswith(f"{result.release} failed in dev/us-east-1: endpoint iris-dev: cannot reach"), \
        result.message
    assert result.message.count("dev/us-east-1") == 1, result.message
    assert any(line.startswith("dev/us-east-1: failed: endpoint iris-dev: cannot reach") for line in progress.lines), \
        progress.lines

    again = deploy(DeployRequest("models/iris", environment="dev"),
                   Runtime(cwd=cloud_repo, data_dir=cloud_repo.parent / "data", environ=dict(os.environ)))
    assert again.exit_status == 0 and again.deployments[0].status == "succeeded", again


def test_a_blip_mid_rollout_is_ridden_out_not_a_failed_region(cloud_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With clients that fail fast on an unreachable cloud, one lost poll failed the region (and, in prod,
    # rolled back the regions that had moved) while SageMaker went on deploying. A rollout in progress now
    # keeps trying for OUTAGE_POLLS polls.
    from modelops.deploy import rollout
    from modelops.errors import CloudUnreachableError

    real_observe = rollout.observe
    calls: list[int] = []

    def observe_with_a_blip(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) in (2, 3):  # the second and third looks cannot reach the cloud
            raise CloudUnreachableError("dev/us-east-1: endpoint iris-dev: cannot reach http://127.0.0.1:1")
        return real_observe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout, "observe", observe_with_a_blip)
    progress = _KillTheCloudAt(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]), "never")
    runtime = Runtime(cwd=cloud_repo, data_dir=cloud_repo.parent / "data", environ=dict(os.environ), progress=progress)
    result = deploy(DeployRequest("models/iris", environment="dev"), runtime)
    assert result.exit_status == 0 and result.deployments[0].status == "succeeded", result
    blips = [line for line in progress.lines if "trying again" in line]
    assert blips == ["dev/us-east-1: endpoint iris-dev: cannot reach http://127.0.0.1:1; trying again for up to 4 s"], \
        progress.lines


def test_a_ledger_write_that_cannot_reach_its_table_is_ridden_out_too(cloud_repo: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # On AWS the ledger is a DynamoDB table: a blip while recording a step must not fail the region.
    from modelops.deploy import rollout
    from modelops.errors import CloudUnreachableError

    real_record = rollout.Journal.record
    failed: list[str] = []

    def record_with_a_blip(self: rollout.Journal, step: str, *args: object, **kwargs: object) -> object:
        if step == "create-endpoint-config" and not failed:
            failed.append(step)
            raise CloudUnreachableError("ledger table modelops-ledger (us-east-1): EndpointConnectionError")
        return real_record(self, step, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout.Journal, "record", record_with_a_blip)
    progress = _KillTheCloudAt(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]), "never")
    runtime = Runtime(cwd=cloud_repo, data_dir=cloud_repo.parent / "data", environ=dict(os.environ), progress=progress)
    result = deploy(DeployRequest("models/iris", environment="dev"), runtime)
    assert failed and result.exit_status == 0 and result.deployments[0].status == "succeeded", result
    assert sum("trying again" in line for line in progress.lines) == 1, progress.lines
    assert progress.lines.count("dev/us-east-1: create-endpoint-config") == 1, progress.lines  # taken once
