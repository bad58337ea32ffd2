"""A canary followed live from another terminal, and aborted: ``modelops watch`` in a real terminal
(tmux: new-session, send-keys, capture-pane) shows the canary's weights while SageMaker bakes it,
``modelops rollout abort`` rolls it back (the running deploy honours it, or, after a Ctrl-C, the abort
runs the rollback itself), and the release is refused afterwards."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import FAST_ENVIRONMENTS
from tests.helpers import commit_all, run_cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is the real terminal this test drives")]

EXIT = re.compile(r"^EXIT=(\d+)$", re.MULTILINE)  # what `; echo EXIT=$?` prints (not the typed line)
DEV_ALL_AT_ONCE = "    rollout: {strategy: all_at_once, wait_interval_seconds: 0, max_execution_timeout_seconds: 600}\n"
# dev as a canary: half the traffic on the new fleet for 30 s, watched by the SLO alarms, fed by traffic.
DEV_CANARY = """\
    rollout:
      strategy: canary
      step_size: {type: CAPACITY_PERCENT, value: 50}
      wait_interval_seconds: 30
      termination_wait_seconds: 0
      max_execution_timeout_seconds: 600
      alarms: {p99_latency_ms: 5000, error_rate_5xx: 0.05, period_seconds: 10, evaluation_periods: 1}
    synthetic_traffic: {enabled: true, requests_per_second: 5}
"""


class Terminal:
    """A tmux server of its own (its socket in the test's temp dir), started from the test's isolated
    environment, with one window per command."""

    def __init__(self, socket: Path, cwd: Path):
        self.socket, self.cwd = socket, cwd
        self.tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "60", "-c", str(cwd))

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, env=dict(os.environ)).stdout

    def run(self, window: int, *argv: str) -> None:
        """Type ``modelops ARGV`` in ``window`` (made if new), then the exit status as ``EXIT=<n>``."""
        if window > 0 and f"{window}:" not in self.tmux("list-windows", "-F", "#{window_index}:"):
            self.tmux("new-window", "-t", f"t:{window}", "-c", str(self.cwd))
        line = shlex.join([sys.executable, "-m", "modelops", *argv]) + "; echo EXIT=$?"
        self.tmux("send-keys", "-t", f"t:{window}", "clear", "Enter")
        self.tmux("send-keys", "-t", f"t:{window}", line, "Enter")

    def ctrl_c(self, window: int) -> None:
        self.tmux("send-keys", "-t", f"t:{window}", "C-c")

    def screen(self, window: int) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", f"t:{window}")

    def wait_for(self, window: int, text: str, timeout: float = 240) -> str:
        return wait_until(lambda: self.screen(window), lambda screen: text in screen, timeout,
                          f"{text!r} in window {window}")

    def wait_exit(self, window: int, timeout: float = 240) -> tuple[str, int]:
        """The window's screen once its command ended, and the exit status it printed."""
        screen = wait_until(lambda: self.screen(window), lambda s: EXIT.search(s) is not None, timeout,
                            f"the command in window {window} to end")
        match = EXIT.search(screen)
        assert match is not None
        return screen, int(match.group(1))

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True)


def wait_until(read: Callable[[], str], done: Callable[[str], bool], timeout: float, what: str) -> str:
    """Poll ``read`` until ``done`` says so (a generous deadline: this waits for the cloud, it times nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = read()
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last seen:\n{seen}")
        time.sleep(0.3)


@pytest.fixture
def terminal(cloud_repo: Path, tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path / "tmux.sock", cloud_repo)
    try:
        yield term
    finally:
        term.close()


def new_release(repo: Path, note: str) -> None:
    inference = repo / "models" / "iris" / "code" / "inference.py"
    inference.write_text(inference.read_text() + f"\n# {note}\n")
    commit_all(repo, note)


def baking(repo: Path) -> str:
    """Wait until dev's update bakes its canary (SageMaker shifted half the traffic); its status line."""
    def dev_status() -> str:
        row = next(r for r in run_cli("status", "iris", "--output", "json", cwd=repo).json()["endpoints"]
                   if r["env"] == "dev")
        return " ".join(f"{w['fleet']}={w['weight']:g}" for w in row["weights"]) + f" {row['status']}"
    return wait_until(dev_status, lambda s: "green=0.5" in s, 240, "the canary to take half the traffic")


def test_watch_shows_a_canary_live_and_abort_rolls_it_back(cloud_repo: Path, terminal: Terminal) -> None:
    environments = cloud_repo / "pipelines" / "environments.yaml"
    assert FAST_ENVIRONMENTS.count(DEV_ALL_AT_ONCE) == 2  # dev's first, then staging's
    environments.write_text(FAST_ENVIRONMENTS.replace(DEV_ALL_AT_ONCE, DEV_CANARY, 1))
    shutil.rmtree(cloud_repo / "models" / "minilm-embeddings")
    model = cloud_repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace("    instance_count: 1\n", "    instance_count: 2\n", 1))
    commit_all(cloud_repo, "dev rolls out as a canary")
    first = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert first.exit_code == 0, first
    good = first.json()["release"]

    # Given: a deploy of a new release in one terminal, SageMaker baking its canary
    new_release(cloud_repo, "the release to abort")
    terminal.run(0, "deploy", "iris", "--env", "dev")
    baking(cloud_repo)

    # When: someone watches from another terminal
    terminal.run(1, "watch", "iris", "--env", "dev")
    live = terminal.wait_for(1, "weights blue 0.5, green 0.5")
    # Then: the canary shows live: its phase as SageMaker says it, the weights, the alarms' states
    assert "us-east-1: Updating | green Baking (Baking for 30 seconds with 50% of the traffic on the new fleet" in live
    assert "alarms 5xx-rate OK, p99-latency OK" in live or "alarms p99-latency OK, 5xx-rate OK" in live, live

    # When: they abort it
    aborted = run_cli("rollout", "abort", "iris", "--env", "dev", "--reason", "answers look wrong", cwd=cloud_repo)

    # Then: SageMaker rolls it back (its rollback alarm forced), the deploy honours the abort, the watch
    # shows it happen and ends
    assert aborted.exit_code == 0, aborted
    assert "forced modelops-iris-dev-p99-latency, modelops-iris-dev-5xx-rate to ALARM" in aborted.stderr, aborted
    assert f"dev/us-east-1: rolled back, serving {good}" in aborted.stderr, aborted
    watched, status = terminal.wait_exit(1)
    assert "us-east-1: RollingBack" in watched, watched
    assert "us-east-1: abort asked by tester@example.com ($MODELOPS_USER, unauthenticated): answers look wrong" in watched, watched
    assert "ended: us-east-1 rolled back" in watched and status == 1, watched
    deployed, status = terminal.wait_exit(0)
    assert "rolled back: " in deployed and "aborted by tester@example.com ($MODELOPS_USER, unauthenticated): answers look wrong" in deployed, deployed
    assert status == 1, deployed
    refused = run_cli("deploy", "iris", "--env", "dev", cwd=cloud_repo)
    assert refused.exit_code == 1 and "is blocked in dev" in refused.stderr, refused

    # Given: another release, its deploy stopped with Ctrl-C while SageMaker bakes its canary
    new_release(cloud_repo, "the release left to SageMaker")
    terminal.run(0, "deploy", "iris", "--env", "dev")
    baking(cloud_repo)
    terminal.ctrl_c(0)
    stopped, status = terminal.wait_exit(0)
    # Then: it says what the cloud will now do and how to follow or stop it
    assert "error: interrupted (Ctrl-C): dev/us-east-1: the update to iris-" in stopped, stopped
    assert "goes on in SageMaker: it will reach 100% unwatched unless an alarm fires" in stopped, stopped
    assert "modelops watch iris --env dev" in stopped and "modelops rollout abort iris --env dev" in stopped, stopped
    assert status == 130, stopped

    # When: aborted with no deploy running; Then: the abort itself sees the rollback through
    orphan = run_cli("rollout", "abort", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert orphan.exit_code == 0, orphan
    [outcome] = orphan.json()["outcomes"]
    assert (outcome["status"], outcome["serving"]) == ("rolled_back", good), orphan
    row = next(r for r in run_cli("status", "iris", "--output", "json", cwd=cloud_repo).json()["endpoints"]
               if r["env"] == "dev")
    assert (row["status"], row["release"]) == ("InService", good), row
