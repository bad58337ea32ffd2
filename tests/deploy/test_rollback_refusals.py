"""Commands say nothing misleading: a rollback that cannot be done is the user's request (exit 2, one
line, a hint), not a cloud failure, and one that can be done serves the release before; plan does not
report its throw-away build; invoke reports the container's answer, and a missing endpoint as bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import commit_all, run_cli


@pytest.mark.slow
def test_rollback_of_nothing_is_bad_input_and_of_a_second_release_serves_the_first(cloud_repo: Path) -> None:
    absent = run_cli("rollback", "iris", "--env", "prod", "--output", "json", cwd=cloud_repo)
    assert absent.exit_code == 2, absent
    assert absent.json()["error"]["message"] == "iris is not deployed in prod/us-east-1", absent
    assert "modelops deploy iris --env prod" in absent.stderr, absent

    deployed = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert deployed.exit_code == 0, deployed
    release = deployed.json()["release"]
    first = run_cli("rollback", "iris", "--env", "dev", cwd=cloud_repo)
    assert first.exit_code == 2, first
    assert f"error: no release before {release} succeeded in dev/us-east-1" in first.stderr, first
    assert "modelops history iris" in first.stderr, first

    # Once a second release served, the rollback can be done: it takes the region back to the first.
    code = cloud_repo / "models" / "iris" / "code" / "inference.py"
    code.write_text(code.read_text() + "\n# the second release\n")
    commit_all(cloud_repo, "a second release")
    second = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert second.exit_code == 0 and second.json()["release"] != release, second
    back = run_cli("rollback", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert back.exit_code == 0, back
    [region] = back.json()["deployments"]
    assert (region["status"], region["serving"], region["detail"]) == ("rolled_back", release, f"serving {release}")
    history = run_cli("history", "iris", "--output", "json", cwd=cloud_repo)
    assert f"rolled back to {release} by " in history.stdout, history


@pytest.mark.slow
def test_plan_does_not_report_the_temporary_build_context_it_renders(cloud_repo: Path) -> None:
    result = run_cli("plan", "iris", "--env", "dev", cwd=cloud_repo)
    assert result.exit_code == 0, result
    assert "modelops-plan-" not in result.stderr and "wrote the build context" not in result.stderr, result
    assert "plan: iris -> dev" in result.stderr and "create" in result.stderr, result



@pytest.mark.slow
def test_invoke_answers_with_the_containers_status_and_a_missing_endpoint_is_bad_input(cloud_repo: Path) -> None:
    missing = run_cli("invoke", "iris", "--env", "dev", "--body", "[[1, 2, 3, 4]]", "--output", "json", cwd=cloud_repo)
    assert missing.exit_code == 2, missing
    assert missing.json()["error"]["message"] == "endpoint iris-dev not found in us-east-1 (dev)", missing

    deployed = run_cli("deploy", "iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert deployed.exit_code == 0, deployed
    ok = run_cli("invoke", "iris", "--env", "dev", "--body", "[[5.1, 3.5, 1.4, 0.2]]", cwd=cloud_repo)
    assert ok.exit_code == 0 and "iris-dev (us-east-1): HTTP 200" in ok.stderr, ok
    assert json.loads(ok.stdout)["predictions"][0]["label"] == "setosa", ok
    # A ModelError reads as in every report (and as a case expects it): SageMaker's 424, the container's
    # own status inside it, and its message.
    bad = run_cli("invoke", "iris", "--env", "dev", "--body", "[[1]]", "--output", "json", cwd=cloud_repo)
    assert bad.exit_code == 1, bad
    doc = bad.json()
    assert (doc["status"], doc["error"], doc["model_status"], doc["content_type"]) == (
        424, "ModelError", 500, "text/plain"), bad
    assert "expected rows of 4 numbers" in doc["body"], bad
    text = run_cli("invoke", "iris", "--env", "dev", "--body", "[[1]]", cwd=cloud_repo)
    assert "iris-dev (us-east-1): HTTP 424 ModelError (the container answered 500)" in text.stderr, text


@pytest.mark.slow
def test_a_model_that_cannot_run_on_the_environments_cloud_says_so_instead_of_deploy_it_first(
        cloud_repo: Path) -> None:
    # llm-chat is aws only and prod here is on the local cloud: rollback used to hint "deploy it first:
    # modelops deploy llm-chat --env prod" (which is refused), invoke printed the raw ValidationError and
    # test said "endpoint llm-chat-prod not found ... deploy the model first".
    for args in (("rollback", "llm-chat", "--env", "prod"), ("invoke", "llm-chat", "--env", "prod", "--body", "{}")):
        refused = run_cli(*args, "--output", "json", cwd=cloud_repo)
        assert refused.exit_code == 2, refused
        error = refused.json()["error"]
        assert error["message"] == "model llm-chat does not run on the local cloud of environment prod", refused
        assert "spec.clouds in models/llm-chat/model.yaml" in error["hint"], refused
    tested = run_cli("test", "llm-chat", "--env", "prod", "--only", "regression", "--output", "json", cwd=cloud_repo)
    assert tested.exit_code == 2, tested
    assert tested.json()["error"]["message"] == (
        "model llm-chat does not run on the local cloud of environment prod, so it has no endpoint there"), tested
    # A model that can run there but is not deployed: one line naming the endpoint, not the service's error.
    missing = run_cli("invoke", "iris", "--env", "prod", "--body", "{}", "--output", "json", cwd=cloud_repo)
    assert missing.exit_code == 2, missing
    assert missing.json()["error"] == {"message": "endpoint iris-prod not found in us-east-1 (prod)",
                                       "hint": "deploy the model first: modelops deploy iris --env prod",
                                       "exit_status": 2}
