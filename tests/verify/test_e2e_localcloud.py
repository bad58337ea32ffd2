"""``modelops test`` end to end on the real local cloud: the iris example passes its cases and SLOs;
a release whose handler sleeps fails its p95 SLO (the stored baseline's change is shown, not gated); a
release whose answers changed fails the right case; a good release whose stored baseline is far better
(recorded on a quiet machine) passes, showing the change; reports (JSON, JUnit, HTML) carry the figures;
send_traffic feeds an endpoint."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops import naming
from tests.helpers import PROJECT_ROOT, init_repo, run_cli
from tests.localcloud_fixtures import ECHO_HANDLER, LocalCloud, local_cloud  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

IRIS_CODE = (PROJECT_ROOT / "models/iris/code/inference.py").read_text()
# The iris handler with a 200 ms pause per prediction: a release that got slow.
SLOW_CODE = IRIS_CODE + "\n\nimport time as _time\n_predict = predict_fn\n\n" \
    "def predict_fn(input_data, model):\n    _time.sleep(0.2)\n    return _predict(input_data, model)\n"
# The iris handler with its class names rotated: a release whose answers changed.
CHANGED_CODE = IRIS_CODE + "\n\n_model_fn = model_fn\n\n" \
    "def model_fn(model_dir):\n    m = _model_fn(model_dir)\n    m['classes'] = m['classes'][1:] + m['classes'][:1]\n" \
    "    return m\n"
ENDPOINT = naming.endpoint_name("iris", "dev")
REGION = "us-east-1"
LOAD = ("--users", "4", "--duration", "4")


@pytest.fixture(scope="module")
def iris_data(local_cloud: LocalCloud) -> str:  # noqa: F811
    model_json = (PROJECT_ROOT / "models/iris/artifacts/model.json").read_text()
    return local_cloud.put_model_data("s3://modelops-test/iris/model.tar.gz", {"model.json": model_json})


def serve(cloud: LocalCloud, release: str, code: str, model_data: str) -> None:
    """Make (or move) the iris-dev endpoint serve ``release`` built from ``code``, tagged like deploy does."""
    uri = cloud.add_test_image(f"iris-{naming.release_suffix(release)}", {"inference.py": code})
    sm = cloud.client("sagemaker", REGION)
    name = naming.model_name("iris", "dev", release)
    config = naming.endpoint_config_name("iris", "dev", release)
    cloud.create_model(name, uri, region=REGION, model_data_url=model_data)
    cloud.create_config(config, {naming.PRIMARY_VARIANT: name}, region=REGION)
    tags = [{"Key": naming.TAG_RELEASE, "Value": release}, {"Key": naming.TAG_MODEL, "Value": "iris"}]
    try:
        described = sm.describe_endpoint(EndpointName=ENDPOINT)
    except sm.exceptions.ClientError:
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config, Tags=tags)
    else:
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
        sm.add_tags(ResourceArn=described["EndpointArn"], Tags=tags)
    cloud.wait_for(ENDPOINT, "InService", region=REGION)
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == config


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_repo(tmp_path_factory.mktemp("verify") / "repo")


@pytest.fixture
def env(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:  # noqa: F811
    # modelops finds the running local cloud (and its ledger) through its data dir.
    monkeypatch.setenv("MODELOPS_LOCAL_DATA_DIR", str(local_cloud.data_dir))
    yield {"MODELOPS_LOCAL_DATA_DIR": str(local_cloud.data_dir)}


def test_iris_then_slow_then_changed(local_cloud: LocalCloud, iris_data: str, repo: Path,  # noqa: F811
                                     env: dict[str, str], tmp_path: Path) -> None:
    # 1. The iris example passes its cases and SLOs; its load result becomes the baseline.
    serve(local_cloud, "iris-aaaaaaaaaa", IRIS_CODE, iris_data)
    good = run_cli("test", "iris", "--env", "dev", *LOAD, "--junit", tmp_path / "good.xml", "--output", "json",
                   cwd=repo, env=env)
    assert good.exit_code == 0, good
    doc = good.json()
    assert doc["passed"] and doc["release"] == "iris-aaaaaaaaaa"
    assert [(c["case"], c["passed"]) for c in doc["regression"]] == [
        ("setosa-from-json", True), ("two-rows-two-classes", True), ("csv-row", True), ("response-shape", True),
        ("wrong-width-is-a-client-error", True)]
    assert doc["load"]["passed"] and doc["load"]["rps"] >= 20 and doc["load"]["error_rate"] == 0
    assert doc["regions"][0]["load"]["baseline"] is None
    junit = ET.parse(tmp_path / "good.xml").getroot()
    names = {c.get("name") for c in junit.iter("testcase")}
    assert {"regression/csv-row", "slo/p95_ms", "slo/rps", "slo/error_rate"} <= names
    assert junit.get("failures") == "0"

    # 2. A release whose handler sleeps 200 ms fails its p95 SLO, figures in the report; the baseline's
    #    change is shown beside them and fails nothing.
    serve(local_cloud, "iris-bbbbbbbbbb", SLOW_CODE, iris_data)
    # Through locust's master and 2 workers (--workers), load only (--only load).
    slow = run_cli("test", "iris", "--env", "dev", "--only", "load", *LOAD, "--workers", "2",
                   "--html", tmp_path / "slow.html", "--junit", tmp_path / "slow.xml", cwd=repo, env=env)
    assert slow.exit_code == 1, slow
    assert "p95_ms" in slow.stderr and "FAILED" in slow.stderr and "iris-aaaaaaaaaa" in slow.stderr
    failed = {c.get("name"): c.find("failure") for c in ET.parse(tmp_path / "slow.xml").getroot().iter("testcase")}
    assert failed["slo/p95_ms"] is not None and failed["baseline/p95_ms"] is None
    assert failed["slo/error_rate"] is None and not any(str(name).startswith("regression/") for name in failed)
    page = (tmp_path / "slow.html").read_text()
    # The figures: the measured p95 (>= the 200 ms pause) against the SLO, and the baseline's p95.
    measured = re.search(r"p95_ms (\d+(?:\.\d+)?) ms \(limit &lt;= 150 ms\) FAILED", page)
    assert measured and float(measured.group(1)) >= 200, page
    assert re.search(r"p95_ms \d+(?:\.\d+)? ms vs [\d.]+ ms in iris-aaaaaaaaaa \(\+[\d.]+%\).*history, not a gate",
                     page), page
    assert "baseline p95 (iris-aaaaaaaaaa, history)" in page and page.count("<svg") == 2 and ", 2 workers" in page

    # 3. A release whose answers changed fails the right cases, naming path, expected and actual.
    serve(local_cloud, "iris-cccccccccc", CHANGED_CODE, iris_data)
    changed = run_cli("test", "iris", "--env", "dev", "--only", "regression", "--output", "json", cwd=repo, env=env)
    assert changed.exit_code == 1, changed
    assert changed.json()["load"] is None  # --only regression
    results = {c["case"]: c for c in changed.json()["regression"]}
    assert not results["setosa-from-json"]["passed"]
    first = results["setosa-from-json"]["failures"][0]
    assert first["path"] == "$.predictions[0].label" and first["expected"] == 'equals "setosa"'
    assert first["actual"] == '"versicolor"'
    assert results["wrong-width-is-a-client-error"]["passed"] and results["response-shape"]["passed"]
    # The terminal summary: a verdict per case, then each failed expectation on its own line.
    text = run_cli("test", "iris", "--env", "dev", "--only", "regression", cwd=repo, env=env)
    assert text.exit_code == 1, text
    assert ('FAILED setosa-from-json (models/iris/tests/cases.yaml:23): $.predictions[0].label: '
            'expected equals "setosa", got "versicolor"') in text.stderr.splitlines()
    assert any(line.split()[:1] == ["response-shape"] and line.split()[-1] == "ok" for line in text.stderr.splitlines())

    # The ledger holds what deploy's gates read: promoting to staging needs passed tests in dev.
    from modelops.config import Workspace, load_environments
    from modelops.deploy.gates import check_tests
    from modelops.errors import GateError
    from modelops.ledger import sqlite_ledger
    from modelops.runtime import Runtime

    ledger = sqlite_ledger(Runtime(cwd=repo, data_dir=tmp_path, environ=env))
    envs = load_environments(Workspace.discover(repo))
    check_tests(ledger, "iris-aaaaaaaaaa", "iris", envs.get("staging"), envs.get("dev"))
    for untested in ("iris-bbbbbbbbbb", "iris-cccccccccc"):  # failed its load test; failed its cases
        with pytest.raises(GateError):
            check_tests(ledger, untested, "iris", envs.get("staging"), envs.get("dev"))
    base = ledger.baseline("iris", "dev", REGION, exclude_release="iris-cccccccccc")
    assert base is not None and base.release == "iris-aaaaaaaaaa"
    assert base.metrics["rps"] == pytest.approx(doc["load"]["rps"], rel=1e-3)

    # 4. A baseline far better than anything this machine does today (as if recorded on a quiet one)
    #    no longer fails a good release: the run passes and shows the change, the trend and why.
    from modelops.ledger import LOAD as LOAD_TEST
    from modelops.ledger import TestRecord

    ledger.record_test(TestRecord("iris", "iris-9999999999", "dev", REGION, LOAD_TEST, True, "quiet machine",
                                  {"p95_ms": 0.01, "rps": 1_000_000.0, "p50_ms": 0.01, "p99_ms": 0.02,
                                   "error_rate": 0.0}))
    ledger.close()
    serve(local_cloud, "iris-dddddddddd", IRIS_CODE, iris_data)
    again = run_cli("test", "iris", "--env", "dev", "--only", "load", *LOAD, "--output", "json",
                    "--junit", tmp_path / "again.xml", cwd=repo, env=env)
    assert again.exit_code == 0, again
    load = again.json()["regions"][0]["load"]
    assert load["passed"] and all(c["name"].startswith("slo.") for c in load["checks"])
    assert load["baseline"]["release"] == "iris-9999999999" and load["baseline"]["gate"] is False
    changes = {c["metric"]: c for c in load["baseline"]["changes"]}
    assert changes["rps"]["change_pct"] < -90 and changes["rps"]["worse"], changes
    assert changes["p95_ms"]["change_pct"] > 1000 and len(changes["rps"]["trend"]) >= 3, changes
    junit = ET.parse(tmp_path / "again.xml").getroot()
    assert junit.get("failures") == "0"
    [rps] = [c for c in junit.iter("testcase") if c.get("name") == "baseline/rps"]
    assert "vs 1000000.0 req/s in iris-9999999999" in rps.find("system-out").text
    text = run_cli("test", "iris", "--env", "dev", "--only", "load", *LOAD, cwd=repo, env=env)
    assert text.exit_code == 0, text
    assert re.search(r"us-east-1: rps [\d.]+ req/s vs 1000000\.0 req/s in iris-9999999999 \(-\d+\.\d%\); "
                     r"last \d+ runs: .* \(history, not a gate\)", text.stderr), text.stderr
    assert "judged canary" in text.stderr and "passed" in text.stderr.splitlines()[-1]


def test_missing_endpoint_is_one_line(local_cloud: LocalCloud, repo: Path, env: dict[str, str]) -> None:  # noqa: F811
    result = run_cli("test", "iris", "--env", "staging", cwd=repo, env=env)
    assert result.exit_code == 2, result
    assert "endpoint iris-staging not found in us-east-1 (staging)" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_traffic_counts_answers(local_cloud: LocalCloud, repo: Path, env: dict[str, str]) -> None:  # noqa: F811
    import os

    from modelops.clients import clients_for
    from modelops.config import Workspace, load_cases, load_environments, load_model
    from modelops.runtime import Runtime
    from modelops.verify import send_traffic

    uri = local_cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER})
    local_cloud.create_endpoint("iris-prod", uri, region="eu-west-1", variant=naming.PRIMARY_VARIANT)
    runtime = Runtime(cwd=repo, data_dir=repo / ".data", environ={**os.environ, **env})
    ws = Workspace.discover(repo)
    cases = load_cases(ws, load_model(ws, "iris"))
    clients = clients_for(load_environments(ws).get("prod"), runtime)
    with send_traffic(clients, "eu-west-1", "iris-prod", cases, rate=50, runtime=runtime) as sender:
        while sender.stats().sent < 20:
            runtime.clock.sleep(0.05)
    stats = sender.stop()
    assert not sender.running and stats.sent >= 20 and stats.errors == 0 and set(stats.by_status) == {200}



def test_a_cloud_that_dies_during_the_load_test_is_exit_3_not_a_failed_release(repo: Path, tmp_path: Path) -> None:
    # The local cloud killed mid-load used to come out as the release failing its SLOs (exit 1, "error_rate
    # 99% FAILED", recorded in the ledger against the release), while nothing had been learnt about it.
    import os
    import signal
    import subprocess
    import sys
    import time

    from modelops.ledger import sqlite_ledger
    from modelops.localcloud import stop
    from modelops.runtime import Runtime
    from tests.localcloud_fixtures import start_local_cloud

    cloud = start_local_cloud(tmp_path / "cloud")
    try:
        model_json = (PROJECT_ROOT / "models/iris/artifacts/model.json").read_text()
        serve(cloud, "iris-dddddddddd", IRIS_CODE,
              cloud.put_model_data("s3://modelops-test/iris/model.tar.gz", {"model.json": model_json}))
        env = {**os.environ, "MODELOPS_LOCAL_DATA_DIR": str(cloud.data_dir)}
        proc = subprocess.Popen([sys.executable, "-m", "modelops", "test", "iris", "--env", "dev", "--users", "2",
                                 "--duration", "6", "--output", "json"], cwd=repo, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("load us-east-1"):
                break
        time.sleep(1.5)  # the load is running
        os.kill(cloud.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, (proc.returncode, out, "".join(seen) + err)
        message = json.loads(out)["error"]["message"]
        assert message.startswith("dev/us-east-1: the cloud stopped answering during the load test ("), message
        assert "cannot reach http://127.0.0.1:" in message, message
        assert err.splitlines()[-2].startswith("error: dev/us-east-1: the cloud stopped answering"), err
        with sqlite_ledger(Runtime(cwd=repo, data_dir=tmp_path / "data", environ=env)) as ledger:
            assert ledger.test_results("iris-dddddddddd", "dev") == ()  # nothing held against the release
    finally:
        start_local_cloud(cloud.data_dir)  # restarting kills the containers the crash left behind
        stop(cloud.data_dir)
