"""`modelops local up --port`: a port that cannot exist is bad usage; a cloud already running elsewhere
is reported with the port it really listens on."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli
from tests.localcloud_fixtures import LocalCloud


def test_a_port_out_of_range_is_bad_usage_and_starts_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    result = run_cli("local", "up", "--port", "99999", "--data-dir", data_dir, "--output", "json")
    assert result.exit_code == 2, result
    assert "'--port'" in result.json()["error"]["message"] and "65535" in result.json()["error"]["message"], result
    assert not (data_dir / "server.json").exists()


def test_up_on_another_port_than_the_running_one_says_so(local_cloud: LocalCloud) -> None:
    port = int(local_cloud.url.rsplit(":", 1)[1])
    other = 1 if port != 1 else 2
    result = run_cli("local", "up", "--port", str(other), "--data-dir", local_cloud.data_dir)
    assert result.exit_code == 0, result
    assert f"already running at {local_cloud.url}" in result.stderr, result
    assert f"note: it listens on port {port}, not {other}" in result.stderr, result
