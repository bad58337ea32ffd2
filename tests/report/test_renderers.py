"""Renderers take any Report: findings, or test results with passed/failed statuses."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from rich.console import Console

from modelops.config.findings import Finding, Location, Severity
from modelops.report import (
    Item,
    Report,
    from_findings,
    render_junit,
    render_markdown,
    render_sarif,
    render_terminal,
)

FINDINGS = [
    Finding("security.kms-required", Severity.error, Location("models/a/model.yaml", 3, 5, "$.spec.security"),
            "no KMS key | in prod", "set one", "a"),
    Finding("config.name-mismatch", Severity.warning, Location("models/b/model.yaml", 7, 3, "$.metadata.name"),
            "names differ", "", "b"),
    Finding("yaml.syntax", Severity.error, Location("pipelines/environments.yaml"), "cannot parse", "", None),
]


def test_sarif_omits_the_region_when_there_is_no_line() -> None:
    doc = json.loads(render_sarif(from_findings("validate", FINDINGS, subjects=["a", "b"])))
    results = doc["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "error"]
    assert "region" not in results[2]["locations"][0]["physicalLocation"]
    assert results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "$.spec.security"


def test_junit_has_a_case_per_subject_and_one_for_repository_findings() -> None:
    root = ET.fromstring(render_junit(from_findings("validate", FINDINGS, subjects=["a", "b", "c"])))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"a", "b", "c", "repository"}
    assert cases["a"].find("failure") is not None
    assert cases["b"].find("failure") is None and "names differ" in (cases["b"].findtext("system-out") or "")
    assert cases["c"].find("failure") is None
    assert root.get("failures") == "2"


def test_warnings_fail_when_the_policy_fails_on_warnings() -> None:
    report = from_findings("validate", FINDINGS[1:2], subjects=["b"], fail_on="warning")
    assert report.failed
    assert ET.fromstring(render_junit(report)).find(".//failure") is not None
    assert not from_findings("validate", FINDINGS[1:2], subjects=["b"]).failed


def test_markdown_escapes_table_cells_and_counts() -> None:
    md = render_markdown(from_findings("modelops validate", FINDINGS, subjects=["a", "b"]))
    assert md.startswith("### modelops validate: ❌ failed")
    assert "no KMS key \\| in prod" in md
    assert "2 errors, 1 warning" in md


def test_test_results_render_too() -> None:
    report = Report("modelops test", items=(
        Item("setosa-from-json", "passed", "ok", subject="iris", duration_seconds=0.01),
        Item("csv-row", "failed", "label was virginica", subject="iris", duration_seconds=0.02),
    ), subjects=("iris",))
    assert report.failed
    root = ET.fromstring(render_junit(report))
    assert root.find(".//failure") is not None and root.find(".//testcase").get("time") == "0.030"  # type: ignore[union-attr]
    console = Console(record=True, width=120)
    render_terminal(console, report)
    text = console.export_text()
    assert "csv-row" in text and "failed" in text


def test_terminal_shows_a_table_when_it_fits_and_compiler_lines_when_it_does_not() -> None:
    report = from_findings("modelops validate", FINDINGS, subjects=["a", "b"])
    wide = Console(record=True, width=160)
    render_terminal(wide, report)
    assert wide.export_text().splitlines()[0].split() == ["severity", "location", "rule", "message"]
    # A CI log (80 columns) would squeeze the message column to a few characters: one line each.
    narrow = Console(record=True, width=80, soft_wrap=True)
    render_terminal(narrow, report)
    lines = narrow.export_text().splitlines()
    assert lines[:3] == ["models/a/model.yaml:3:5: error: no KMS key | in prod [security.kms-required]",
                         "  hint: set one",
                         "models/b/model.yaml:7:3: warning: names differ [config.name-mismatch]"]
    assert lines[3] == "pipelines/environments.yaml: error: cannot parse [yaml.syntax]"
    assert lines[-1] == "modelops validate: failed: 2 errors, 1 warning in 2 model(s)"
