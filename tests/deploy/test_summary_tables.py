"""The deploy summary and status tables stay readable at 100 columns (release ids whole, no detail
that only repeats another column); history is a log, one line per entry."""

from __future__ import annotations

import io

from rich.console import Console

from modelops.cli.deploy import deploy_table, status_table
from modelops.deploy.api import DeployResult, EndpointState, StatusReport, Weight
from modelops.deploy.rollout import RegionOutcome

NEW = "fraud-score-401fd5c68a"
OLD = "fraud-score-0b9e77c1d2"


def _render(table: object, width: int = 100) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue()


def test_deploy_summary_fits_100_columns_without_repeating_the_serving_release() -> None:
    rolled = f"rolled back to {OLD} because the rollout tripped alarm fraud-score-prod-5xx-rate"
    result = DeployResult("fraud-score", NEW, "rolled_back", (
        RegionOutcome("prod", "us-east-1", "fraud-score-prod", NEW, "succeeded", f"serving {NEW}", OLD, NEW),
        RegionOutcome("prod", "eu-west-1", "fraud-score-prod", NEW, "rolled_back", rolled, OLD, OLD),
        RegionOutcome("prod", "ap-southeast-2", "fraud-score-prod", NEW, "skipped", "not touched", OLD, OLD),
    ))
    text = _render(deploy_table(result))
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
    text = _render(status_table(report))
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
    text = _render(status_table(report))
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
