"""The deploy summary and status tables stay readable at 100 columns (release ids whole, no detail
that only repeats another column), and at 80 (a CI log) give way to one line per item with region
names, statuses and release ids whole; history is a log, one line per entry."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console

from modelops.cli.deploy import render_deploy, render_status
from modelops.deploy.api import DeployResult, EndpointState, StatusReport, Weight
from modelops.deploy.health import Health
from modelops.deploy.rollout import RegionOutcome

NEW = "fraud-score-401fd5c68a"
OLD = "fraud-score-0b9e77c1d2"


def _render(render: Callable[[Console, Any], None], result: object, width: int = 100) -> str:
    out = io.StringIO()
    # The CLI's console: soft wrap (a terminal wraps a long line itself; a CI log keeps it whole).
    render(Console(file=out, width=width, color_system=None, soft_wrap=True), result)
    return out.getvalue()


def test_deploy_summary_fits_100_columns_without_repeating_the_serving_release() -> None:
    rolled = f"rolled back to {OLD} because the rollout tripped alarm fraud-score-prod-5xx-rate"
    result = DeployResult("fraud-score", NEW, "rolled_back", (
        RegionOutcome("prod", "us-east-1", "fraud-score-prod", NEW, "succeeded", f"serving {NEW}", OLD, NEW),
        RegionOutcome("prod", "eu-west-1", "fraud-score-prod", NEW, "rolled_back", rolled, OLD, OLD),
        RegionOutcome("prod", "ap-southeast-2", "fraud-score-prod", NEW, "skipped", "not touched", OLD, OLD),
    ))
    text = _render(render_deploy, result)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines), text
    assert "…" not in text, text
    us = next(line for line in lines if "us-east-1" in line)
    assert us.count(NEW) == 1, text  # in the serving column, not again as "serving <release>"
    assert OLD in next(line for line in lines if "eu-west-1" in line), text
    assert "tripped alarm" in text and "not touched" in text


def test_status_names_one_model_in_the_title_and_shortens_the_last_step() -> None:
    weights = (Weight("blue", f"fraud-score-dev-{NEW[-10:]}-ec", "primary", 1.0, 1.0, 1),)
    report = StatusReport((
        EndpointState("fraud-score", "dev", "us-east-1", "fraud-score-dev", NEW, "InService", weights,
                      f"{NEW} succeeded (succeeded)"),
        EndpointState("fraud-score", "staging", "us-east-1", "fraud-score-staging", OLD, "Updating", weights,
                      f"{NEW} update-endpoint (in_progress)"),
        EndpointState("fraud-score", "prod", "ap-southeast-2", "fraud-score-prod", None, "absent"),
    ))
    text = _render(render_status, report)
    lines = text.splitlines()
    assert lines[0].strip() == "modelops status: fraud-score", text
    assert all(len(line) <= 100 for line in lines), text
    assert "…" not in text, text
    dev = next(line for line in lines if line.lstrip().startswith("dev"))
    assert dev.count(NEW) == 1 and dev.rstrip().endswith("succeeded") and "(succeeded)" not in dev, text
    staging = next(line for line in lines if "staging" in line)
    assert OLD in staging, text
    # another release's step keeps its id whole (folded over lines, not cut with an ellipsis)
    assert f"{NEW}update-endpoint(in_progress)" in "".join(text.split()), text


def test_status_of_several_models_has_a_model_column() -> None:
    report = StatusReport((
        EndpointState("iris", "dev", "us-east-1", "iris-dev", "iris-0123456789", "InService"),
        EndpointState("fraud-score", "dev", "us-east-1", "fraud-score-dev", NEW, "InService"),
    ))
    text = _render(render_status, report)
    assert text.splitlines()[0].strip() == "modelops status", text
    assert "model" in text.splitlines()[1] and "iris-0123456789" in text and NEW in text, text


def test_history_is_a_log_with_one_line_per_entry_even_at_80_columns() -> None:
    from modelops.cli.deploy import history_lines
    from modelops.deploy.api import HistoryReport

    image = "000000000000.dkr.ecr.us-east-1.amazonaws.com/modelops/fraud-score:3557bb9e6ebfbc50"
    report = HistoryReport("fraud-score", (
        {"entry": "build", "at": 1.0, "release": NEW, "environment": "dev", "region": "us-east-1",
         "image_uri": image},
        {"entry": "step", "at": 2.0, "release": NEW, "environment": "dev", "region": "us-east-1",
         "step": "succeeded", "status": "succeeded", "detail": ""},
        {"entry": "test", "at": 3.0, "release": NEW, "environment": "dev", "region": "us-east-1",
         "kind": "load", "passed": False, "summary": "p95 210 ms > 150 ms"},
        {"entry": "approval", "at": 4.0, "release": NEW, "environment": "prod", "by": "ana@example.com"},
        {"entry": "approval", "at": 5.0, "release": NEW, "environment": "prod", "by": "carol", "source": "jenkins",
         "authenticated": True},
        {"entry": "approval", "at": 6.0, "release": NEW, "environment": "prod", "by": "bob@example.com",
         "source": "git", "authenticated": False},
    ))
    out = io.StringIO()
    # The CLI's console (soft wrap: the terminal, if any, wraps a long line; a CI log keeps it whole).
    Console(file=out, width=80, color_system=None, soft_wrap=True).print(history_lines(report))
    lines = out.getvalue().splitlines()
    assert lines[0] == "history of fraud-score" and lines[1].split() == ["time", "(UTC)", "kind", "release", "where", "what"]
    assert len(lines) == 2 + 6, lines  # one line per entry, nothing folded
    assert lines[2].endswith(f"dev/us-east-1  image {image}"), lines
    assert lines[3].endswith("dev/us-east-1  succeeded"), lines  # not "succeeded (succeeded)"
    assert lines[4].endswith("load FAILED: p95 210 ms > 150 ms"), lines
    assert "prod  " in lines[5] and lines[5].endswith("approved by ana@example.com"), lines  # an older entry
    assert lines[6].endswith("approved by carol (jenkins)"), lines  # who, and where that came from
    assert lines[7].endswith("approved by bob@example.com (git user.email, unauthenticated)"), lines
    # The columns before "what" line up.
    assert len({line.index("  " + NEW) for line in lines[2:]}) == 1, lines


def test_at_80_columns_deploy_and_status_are_one_line_per_region_with_nothing_cut() -> None:
    rolled = f"rolled back to {OLD} because the rollout tripped alarm fraud-score-prod-5xx-rate"
    result = DeployResult("fraud-score", NEW, "rolled_back", (
        RegionOutcome("prod", "us-east-1", "fraud-score-prod", NEW, "succeeded", f"serving {NEW}", OLD, NEW),
        RegionOutcome("prod", "ap-southeast-2", "fraud-score-prod", NEW, "rolled_back", rolled, OLD, OLD),
    ))
    lines = _render(render_deploy, result, width=80).splitlines()
    assert lines == [f"fraud-score {NEW}", f"prod/us-east-1: succeeded, serving {NEW}",
                     f"prod/ap-southeast-2: rolled_back, serving {OLD}: {rolled}"], lines

    degraded = Health("degraded", ("alarm fraud-score-prod-5xx-rate in ALARM",), 20, 31.0, 1.0, 4.0)
    report = StatusReport((
        EndpointState("fraud-score", "prod", "ap-southeast-2", "fraud-score-prod", NEW, "UpdateRollbackFailed",
                      (Weight("blue", "c", "primary", 1.0, 1.0, 2),), f"{NEW} failed (failed)",
                      health=Health("unhealthy", ("endpoint is UpdateRollbackFailed",))),
        EndpointState("fraud-score", "prod", "us-east-1", "fraud-score-prod", None, "InService",
                      config="fraud-score-hotfix-ec", health=degraded, release_tag=NEW),
    ))
    text = _render(render_status, report, width=80)
    lines = text.splitlines()
    assert "…" not in text, text
    assert lines[1] == (f"prod/ap-southeast-2: UpdateRollbackFailed, unhealthy, release {NEW}, weights blue 1, "
                        "last step: failed"), lines
    assert lines[2].startswith("prod/us-east-1: InService, degraded, release unknown (config fraud-score-hotfix-ec)"), lines
    # What the health rests on, and that the tag is only a hint, follow the rows.
    assert "  prod/us-east-1: degraded: alarm fraud-score-prod-5xx-rate in ALARM; its tag says " + NEW in lines, lines
