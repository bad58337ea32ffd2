"""Starting, finding and stopping the local cloud; its state surviving a restart; crashed containers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelops.errors import EnvironmentFailedError
from modelops.localcloud import ensure_running, log_path, status, stop
from modelops.localcloud.lifecycle import PORT_IN_USE, PORT_IN_USE_HINT
from tests.helpers import run_cli
from tests.localcloud_fixtures import LocalCloud, container_pids, start_local_cloud

pytestmark = pytest.mark.slow

SLEEPY_HANDLER = '''
import time

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    if data == b"slow":
        time.sleep(30)
    return data

def output_fn(prediction, accept):
    return prediction
'''


def test_up_status_down_through_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    first = run_cli("local", "up", "--data-dir", data_dir, "--output", "json")
    assert first.exit_code == 0, first
    try:
        info = first.json()
        assert info["running"] is True and info["url"] == f"http://127.0.0.1:{info['port']}"
        assert info["data_dir"] == str(data_dir)
        again = run_cli("local", "up", "--data-dir", data_dir, "--output", "json")
        assert again.json()["pid"] == info["pid"]  # a second `up` reports the running one
        described = run_cli("local", "status", "--data-dir", data_dir, "--output", "json").json()
        assert described == info
        text = run_cli("local", "up", "--data-dir", data_dir)
        assert f"already running at {info['url']}" in text.stderr
        logs = run_cli("local", "logs", "--data-dir", data_dir)
        assert "local cloud listening on" in logs.stdout
    finally:
        down = run_cli("local", "down", "--data-dir", data_dir)
    assert down.exit_code == 0 and "stopped" in down.stderr
    assert run_cli("local", "status", "--data-dir", data_dir, "--output", "json").json() == {
        "running": False, "data_dir": str(data_dir)}


def test_the_default_data_dir_comes_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-env"
    up = run_cli("local", "up", "--output", "json", env={"MODELOPS_LOCAL_DATA_DIR": str(data_dir)})
    try:
        assert up.json()["data_dir"] == str(data_dir)
        assert status(data_dir) is not None
    finally:
        stop(data_dir)


def test_a_stale_record_after_a_crash_is_cleaned_and_a_new_server_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    info = ensure_running(data_dir)
    os.kill(info.pid, signal.SIGKILL)  # a crash: the record stays behind
    deadline = time.monotonic() + 10
    while Path(f"/proc/{info.pid}").exists() and time.monotonic() < deadline:
        with_status = Path(f"/proc/{info.pid}/stat").read_text() if Path(f"/proc/{info.pid}/stat").exists() else ""
        if ") Z" in with_status:
            break
        time.sleep(0.05)
    assert (data_dir / "server.json").exists()
    assert status(data_dir) is None
    assert not (data_dir / "server.json").exists()
    restarted = ensure_running(data_dir)
    try:
        assert restarted.pid != info.pid
    finally:
        stop(data_dir)


def test_a_taken_port_is_an_environment_error_that_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EnvironmentFailedError) as failed:
            ensure_running(tmp_path / "cloud", port)
    assert failed.value.message == PORT_IN_USE.format(port=port)
    assert failed.value.hint == PORT_IN_USE_HINT


def test_a_server_that_cannot_start_names_its_log_and_quotes_only_this_attempt(tmp_path: Path) -> None:
    import fcntl

    from modelops.localcloud.server import ALREADY_SERVING, SERVER_LOCK_FILE

    root = tmp_path / "cloud"
    root.mkdir()
    # Another process holds the data dir's server lock (with no record): the new server refuses to start.
    with open(root / SERVER_LOCK_FILE, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for _attempt in range(2):
            with pytest.raises(EnvironmentFailedError) as failed:
                ensure_running(root)
            assert str(log_path(root)) in failed.value.message
            # The log keeps both attempts; the message quotes the last one only.
            assert failed.value.message.count(ALREADY_SERVING.format(data_dir=root)) == 1


@pytest.mark.parametrize("damaged", ["state.sqlite", "cloudwatch.sqlite"])
def test_a_damaged_state_file_is_named_in_one_line_not_quoted_as_a_traceback(tmp_path: Path, damaged: str) -> None:
    # The server died on sqlite3.DatabaseError with a traceback, and the CLI quoted its tail:
    # "... self.store = Store(data_dir) | ^^^^^^^^ | File \".../state.py\", line 37 ... | sqlite3.DatabaseError ...".
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    (data_dir / damaged).write_text("not a database\n")
    result = run_cli("local", "up", "--data-dir", data_dir, "--output", "json")
    assert result.exit_code == 3, result
    message = result.json()["error"]["message"]
    assert message.endswith(f"ERROR modelops.localcloud: cannot open {data_dir / damaged}: file is not a database; "
                            "move that file away and the local cloud starts with it empty"), message
    assert "Traceback" not in message and "File \"" not in message, message
    assert status(data_dir) is None


def test_state_survives_a_restart_and_crashed_containers_come_back(tmp_path: Path) -> None:
    cloud = start_local_cloud(tmp_path / "cloud", env={"MODELOPS_LOCAL_CONTAINER_TIMEOUT": "2"})
    try:
        uri = cloud.add_test_image("sleepy", {"inference.py": SLEEPY_HANDLER})
        cloud.create_endpoint("durable", uri, region="eu-west-1")
        cloud.client("sagemaker", "eu-west-1").add_tags(
            ResourceArn="arn:aws:sagemaker:eu-west-1:000000000000:endpoint/durable",
            Tags=[{"Key": "modelops:release", "Value": "r1"}])
        # The container timeout of the server (2 s here) turns a slow answer into a ModelError.
        with pytest.raises(ClientError) as timed_out:
            cloud.client("sagemaker-runtime", "eu-west-1").invoke_endpoint(EndpointName="durable", Body=b"slow")
        assert timed_out.value.response["Error"]["Code"] == "ModelError"
        # The service's words, in full (callers match on them).
        assert timed_out.value.response["Error"]["Message"] == (
            "Your invocation timed out while waiting for a response from container primary. Review the latency "
            "metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")

        assert stop(cloud.data_dir)
        assert container_pids(cloud.data_dir) == []  # containers stop with the server
        cloud = start_local_cloud(cloud.data_dir)
        sm = cloud.client("sagemaker", "eu-west-1")
        assert sm.describe_endpoint(EndpointName="durable")["EndpointStatus"] == "InService"
        assert sm.list_tags(ResourceArn="arn:aws:sagemaker:eu-west-1:000000000000:endpoint/durable")["Tags"] == [
            {"Key": "modelops:release", "Value": "r1"}]
        eu = LocalCloud(cloud.url, cloud.data_dir, cloud.pid)
        runtime = eu.client("sagemaker-runtime", "eu-west-1")
        deadline = time.monotonic() + 60
        while True:  # the restarted server brings the container back
            try:
                assert runtime.invoke_endpoint(EndpointName="durable", Body=b"hello")["Body"].read() == b"hello"
                break
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ModelNotReadyException"
                assert time.monotonic() < deadline
                time.sleep(0.2)

        (pid,) = container_pids(cloud.data_dir)
        os.killpg(pid, signal.SIGKILL)  # a crashed instance is restarted
        deadline = time.monotonic() + 60
        while True:
            try:
                assert runtime.invoke_endpoint(EndpointName="durable", Body=b"again")["Body"].read() == b"again"
                break
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("ModelNotReadyException", "ModelError")
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert container_pids(cloud.data_dir) != [pid]
    finally:
        stop(cloud.data_dir)


def test_an_instance_draining_when_the_server_dies_is_killed_by_the_next_start_not_left_running(
        tmp_path: Path) -> None:
    # A blue/green update drains the old instance for a moment before terminating it. A server killed
    # (kill -9) in that moment used to have forgotten the instance already: the next start neither
    # killed nor knew the process, which then ran, holding its port, until someone found it by hand.
    from modelops.localcloud.state import Store
    from modelops.localcloud.supervisor import HEALTHY, InstanceSpec, Supervisor

    cloud = LocalCloud("http://unused", tmp_path / "cloud", 0)
    cloud.data_dir.mkdir()
    uri = cloud.add_test_image("sleepy", {"inference.py": SLEEPY_HANDLER})
    spec = InstanceSpec(iid="i-old", region="eu-west-1", endpoint="ep", variant="blue", image_uri=uri,
                        model_data_url=None)
    crashed = Supervisor(cloud.data_dir, Store(cloud.data_dir))
    crashed.start(spec)
    deadline = time.monotonic() + 60
    while crashed.state("i-old")[0] != HEALTHY:
        assert time.monotonic() < deadline, crashed.state("i-old")
        crashed.tick()
        time.sleep(0.1)
    (pid,) = container_pids(cloud.data_dir)
    crashed.stop("i-old", drain=600)  # draining; the server dies now, never ticking again

    restarted = Supervisor(cloud.data_dir, Store(cloud.data_dir))
    try:
        assert restarted.restore({"i-old"}) == []  # the stopping instance is not started again...
        deadline = time.monotonic() + 10
        while container_pids(cloud.data_dir):  # ...and the process it left is gone
            assert time.monotonic() < deadline, f"container {pid} outlived the server that was stopping it"
            time.sleep(0.05)
        assert restarted.store.load("instance") == {}
    finally:
        for left in container_pids(cloud.data_dir):
            os.killpg(left, signal.SIGKILL)


def test_the_server_module_runs_in_the_foreground_and_refuses_a_second_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    info = ensure_running(data_dir)
    try:
        second = subprocess.run([sys.executable, "-m", "modelops.localcloud", "--data-dir", str(data_dir)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 3
        assert "another local cloud already serves" in second.stderr
        assert json.loads((data_dir / "server.json").read_text())["pid"] == info.pid
    finally:
        stop(data_dir)


def test_bad_ports_and_unusable_data_dirs_are_one_line_errors(tmp_path: Path) -> None:
    from modelops.errors import InputError
    from modelops.localcloud.lifecycle import BAD_PORT, CANNOT_USE_DATA_DIR

    with pytest.raises(InputError) as bad:
        ensure_running(tmp_path / "cloud", 99999)
    assert bad.value.message == BAD_PORT.format(port=99999)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(EnvironmentFailedError) as unusable:
        ensure_running(a_file / "cloud")
    assert unusable.value.message.startswith(CANNOT_USE_DATA_DIR.format(data_dir=a_file / "cloud", reason="")[:-1])
    assert not (tmp_path / "cloud").exists()


def test_ctrl_c_while_the_server_starts_leaves_no_server_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `local up` interrupted after ~0.7 s said "interrupted", and `local status` then showed a server running.
    from modelops.localcloud import lifecycle

    started: list[int] = []
    answers = lifecycle._answers

    def ctrl_c_once_it_listens(info: object) -> bool:
        if started:  # later calls (status below) ask the real question
            return answers(info)  # type: ignore[arg-type]
        started.append(info.pid)  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "_answers", ctrl_c_once_it_listens)
    with pytest.raises(KeyboardInterrupt):
        ensure_running(tmp_path / "cloud")
    assert started, "the server never wrote its record"
    assert status(tmp_path / "cloud") is None
    assert not Path(f"/proc/{started[0]}").exists()  # stopped and reaped, not a zombie
    assert not (tmp_path / "cloud" / "server.json").exists()


def test_a_users_aws_profile_reaches_neither_the_local_cloud_nor_its_clients(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI agent exports AWS_PROFILE for its AWS jobs while ~/.aws/config does not name it: botocore's
    default session raises ProfileNotFound on first use, which kept the local cloud from starting."""
    from modelops import clients
    from modelops.config import Environment
    from modelops.runtime import Runtime

    monkeypatch.setenv("AWS_PROFILE", "production-not-configured-here")
    monkeypatch.setattr(clients, "_LOCAL_SESSIONS", [])  # no session made before the variable was set
    cloud = start_local_cloud(tmp_path / "cloud")
    try:
        env = Environment(name="dev", cloud="local", account="000000000000", regions=("us-east-1",),
                          waves=(("us-east-1",),))
        runtime = Runtime(cwd=tmp_path, data_dir=tmp_path / "data",
                          environ={**os.environ, "MODELOPS_LOCAL_DATA_DIR": str(cloud.data_dir)})
        sm = clients.clients_for(env, runtime).client("sagemaker", "us-east-1")
        assert sm.list_endpoints()["Endpoints"] == []
        assert sm.meta.endpoint_url == cloud.url
    finally:
        stop(cloud.data_dir)
