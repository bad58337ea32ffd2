"""`deploy --through` whose tests fail in an environment says which check failed and by how much, in the
terminal, in --output json and in the report files, not only "tests failed" (real local cloud, real
container, real locust)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import commit_all, run_cli


@pytest.mark.slow
def test_a_through_stopped_by_a_failed_slo_prints_the_check_with_measured_and_threshold(cloud_repo: Path) -> None:
    # Given: iris asks for a throughput no endpoint on a test machine gives (a million requests a second).
    model = cloud_repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace("min_rps: 1\n", "min_rps: 1000000\n"))
    commit_all(cloud_repo, "an SLO nothing meets")

    # When: it is deployed through staging (dev's tests stand between)
    reports = cloud_repo / "reports"
    deploy = run_cli("deploy", "models/iris", "--through", "staging", "--junit", reports / "deploy.xml",
                     "--markdown", reports / "deploy.md", cwd=cloud_repo)

    # Then: it stops after dev with exit 1 and prints the failed check inline: what, measured, threshold.
    assert deploy.exit_code == 1, deploy
    failed = [line for line in deploy.stderr.splitlines() if line.startswith("FAILED dev us-east-1 slo.rps: measured ")]
    assert len(failed) == 1, deploy.stderr
    assert failed[0].endswith(" req/s, threshold >= 1000000.0 req/s [models/iris/model.yaml]"), failed
    assert "tests failed: tests of iris-" in deploy.stderr and "failed in dev (1 failed check(s)); not promoting to " \
        "staging" in deploy.stderr, deploy.stderr
    # ...and the report files hold the same check.
    junit = ET.parse(reports / "deploy.xml").getroot()
    tests = next(c for c in junit.iter("testcase") if c.get("name") == "dev tests")
    failure = tests.find("failure")
    assert failure is not None and "(limit >= 1000000.0 req/s) FAILED" in (failure.get("message") or ""), \
        ET.tostring(tests)
    assert "| ❌ us-east-1 | slo.rps |" in (reports / "deploy.md").read_text()

    # When: the same deploy is asked for as JSON (dev serves the release already; its tests run again)
    again = run_cli("deploy", "models/iris", "--through", "staging", "--output", "json", cwd=cloud_repo)

    # Then: the document is the result, not an error: the failed check with its figures.
    assert again.exit_code == 1, again
    doc = json.loads(again.stdout)
    assert doc["result"] == "tests_failed" and doc["environments"] == ["dev"], doc
    [tests_doc] = doc["tests"]
    assert tests_doc["environment"] == "dev" and tests_doc["passed"] is False
    [check] = tests_doc["failed_checks"]
    assert (check["check"], check["kind"], check["threshold"]) == ("slo.rps", "slo", ">= 1000000.0 req/s"), check
    assert check["measured"].endswith(" req/s"), check
