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
    assert region.status == "failed" and region.detail.startswith("model iris-dev-"), region
    assert "cannot reach http://127.0.0.1:" in region.detail, region
    # The reason named dev/us-east-1 twice ("... failed in dev/us-east-1: dev/us-east-1: model ...").
    assert result.message.startswith(f"{result.release} failed in dev/us-east-1: model iris-dev-"), result.message
    assert result.message.count("dev/us-east-1") == 1, result.message
    assert any(line.startswith("dev/us-east-1: failed: model iris-dev-") for line in progress.lines), progress.lines

    again = deploy(DeployRequest("models/iris", environment="dev"),
                   Runtime(cwd=cloud_repo, data_dir=cloud_repo.parent / "data", environ=dict(os.environ)))
    assert again.exit_status == 0 and again.deployments[0].status == "succeeded", again
