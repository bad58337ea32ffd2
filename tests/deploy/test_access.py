"""Access control end to end, through the CLI on real git repos: who may approve, deploy and roll back
(pipelines/access.yaml), four-eyes on normalised identities, the STS caller on an aws environment
(moto), and a ledger edited behind modelops' back refusing deploys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelops.ledger.records import ReleaseRecord
from tests.helpers import commit_all, git, init_repo, run_cli, write

REVIEWERS_AND_ADA = """\
apiVersion: modelops/v1
kind: Access
owners: [platform]
groups:
  platform:
    emails: [platform@example.com]
  release-reviewers:
    emails: [reviewer@example.com, ada@example.com]
    arns: ["arn:aws:sts::123456789012:assumed-role/modelops-reviewer/*"]
    ci_users: ["jenkins:*"]
defaults:
  deploy: [anyone]
  rollback: [anyone]
environments:
  prod:
    approve: [release-reviewers]
"""
JENKINS = {"JENKINS_URL": "https://ci.example.com/", "BUILD_URL": "https://ci.example.com/job/iris/7/"}


def built(repo: Path) -> str:
    """Given: a release of iris built for dev (local builder: no cloud runs)."""
    result = run_cli("build", "models/iris", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return str(result.json()["release"])


def history(repo: Path) -> list[dict[str, Any]]:
    result = run_cli("history", "iris", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return list(result.json()["entries"])


def approvals(repo: Path) -> list[dict[str, Any]]:
    return [e for e in history(repo) if e["entry"] == "approval"]


def test_an_approver_outside_the_group_is_refused_naming_the_rule(repo: Path) -> None:
    release = built(repo)
    refused = run_cli("approve", release, "--env", "prod", "--output", "json", cwd=repo,
                      env={"MODELOPS_USER": "bob@example.com"})
    assert refused.exit_code == 1, refused
    line = ("access: bob@example.com ($MODELOPS_USER, unauthenticated) may not approve in prod: "
            "pipelines/access.yaml:29:5 allows release-reviewers")
    assert refused.stderr.splitlines()[0] == f"error: {line}"
    error = refused.json()["error"]
    assert error["message"] == line and error["exit_status"] == 1
    assert "reviewer@example.com" in error["hint"]  # who could
    assert approvals(repo) == []
    approved = run_cli("approve", release, "--env", "prod", "--output", "json", cwd=repo,
                       env={"MODELOPS_USER": "reviewer@example.com"})
    assert approved.exit_code == 0, approved
    assert approved.json() | {"release": release} == {
        "model": "iris", "release": release, "env": "prod", "by": "reviewer@example.com", "source": "env",
        "authenticated": False, "rule": "pipelines/access.yaml:29:5", "recorded": True, "shown_only": False,
        "answers": None}  # iris does not expect its answers to change, and no judgment of it exists


@pytest.mark.parametrize("claim", [" ada@example.com", "ADA@Example.com", "ada@example.com ", "\u200bada@example.com"])
def test_the_author_with_whitespace_or_case_changes_may_not_approve(tmp_path: Path, claim: str) -> None:
    # Given: the author is a release reviewer (so only four-eyes stands between her and her release)
    repo = init_repo(tmp_path / "repo", {"pipelines/access.yaml": REVIEWERS_AND_ADA})
    release = built(repo)
    refused = run_cli("approve", release, "--env", "prod", cwd=repo, env={"MODELOPS_USER": claim})
    assert refused.exit_code == 1, refused
    assert refused.stderr.startswith("error: four-eyes: ada@example.com wrote commit ")
    assert approvals(repo) == []
    # Nor does an approval written by hand (an older modelops, a script) with the same trick count.
    from modelops.ledger.records import Approval
    from tests.deploy.test_pipeline_e2e import _ledger, given_tests_passed

    ledger = _ledger(repo, "prod")
    ledger.record_approval(Approval("iris", release, "prod", by=claim))
    ledger.close()
    given_tests_passed(repo, release, "staging")
    blocked = run_cli("deploy", "models/iris", "--env", "prod", cwd=repo)
    assert blocked.exit_code == 1, blocked
    assert "needs an approval for prod from someone other than its author (ada@example.com) in release-reviewers " \
           "(not counted: ada@example.com is its author)" in blocked.stderr


def test_where_the_policy_asks_approvals_need_an_authenticated_identity(tmp_path: Path) -> None:
    strict = REVIEWERS_AND_ADA.replace("    approve: [release-reviewers]\n",
                                       "    approve: [release-reviewers]\n    authenticated: [approve]\n")
    repo = init_repo(tmp_path / "repo", {"pipelines/access.yaml": strict})
    release = built(repo)
    laptop = run_cli("approve", release, "--env", "prod", cwd=repo, env={"MODELOPS_USER": "reviewer@example.com"})
    assert laptop.exit_code == 1, laptop
    assert laptop.stderr.splitlines()[0] == (
        "error: access: reviewer@example.com ($MODELOPS_USER, unauthenticated) may not approve in prod: "
        "pipelines/access.yaml:16:5 requires an authenticated identity (an STS caller or a CI user)")
    # The Jenkinsfile's approve stage: the input's submitter, inside Jenkins.
    ci = run_cli("approve", release, "--env", "prod", cwd=repo,
                 env={"MODELOPS_CI_USER": "Carol", "MODELOPS_CI_SYSTEM": "jenkins", **JENKINS})
    assert ci.exit_code == 0, ci
    [approval] = approvals(repo)
    assert (approval["by"], approval["source"], approval["authenticated"]) == ("carol", "jenkins", True)
    # The same variables outside Jenkins are a claim, not an authentication.
    fake = run_cli("approve", release, "--env", "prod", cwd=repo,
                   env={"MODELOPS_CI_USER": "dave", "MODELOPS_CI_SYSTEM": "jenkins"})
    assert fake.exit_code == 1 and "dave (jenkins, unauthenticated) may not approve" in fake.stderr


def test_deploy_and_rollback_are_refused_before_anything_runs(tmp_path: Path) -> None:
    locked = REVIEWERS_AND_ADA.replace("defaults:\n  deploy: [anyone]\n  rollback: [anyone]\n",
                                       "defaults:\n  deploy: [platform]\n  rollback: [platform]\n")
    repo = init_repo(tmp_path / "repo", {"pipelines/access.yaml": locked})
    deploy = run_cli("deploy", "models/iris", "--env", "dev", cwd=repo)
    assert deploy.exit_code == 1, deploy
    assert ("\nerror: access: tester@example.com ($MODELOPS_USER, unauthenticated) may not deploy in dev: "
            "pipelines/access.yaml:12:3 allows platform\n") in deploy.stderr
    rollback = run_cli("rollback", "models/iris", "--env", "dev", cwd=repo)
    assert rollback.exit_code == 1 and "may not rollback in dev: pipelines/access.yaml:13:3 allows platform" in (
        rollback.stderr)
    assert history(repo) == []  # nothing was built, nothing recorded


def test_an_uncommitted_edit_of_access_yaml_does_not_loosen_it(repo: Path) -> None:
    release = built(repo)
    access = repo / "pipelines" / "access.yaml"
    write(access, access.read_text().replace("emails: [reviewer@example.com]", "emails: [reviewer@example.com, bob@example.com]"))
    bob = {"MODELOPS_USER": "bob@example.com"}
    assert run_cli("approve", release, "--env", "prod", cwd=repo, env=bob).exit_code == 1
    commit_all(repo, "bob reviews releases")  # a commit: what a pull request's review lets through
    assert run_cli("approve", release, "--env", "prod", cwd=repo, env=bob).exit_code == 0


AWS_PROD = """\
apiVersion: modelops/v1
kind: Environments
promotion: [dev, prod]
environments:
  dev:
    cloud: local
    regions: [us-east-1]
    approval: {required: false}
  prod:
    cloud: aws
    account: "123456789012"
    regions: [eu-west-1]
    approval: {required: true, four_eyes: true}
    aws: {role_arn: "arn:aws:iam::123456789012:role/modelops-reviewer"}
"""


def test_an_approval_on_aws_records_the_sts_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    from modelops.ledger.dynamo import DynamoLedger

    repo = init_repo(tmp_path / "repo", {"pipelines/environments.yaml": AWS_PROD})
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        # Given: a release built for prod, in prod's ledger (the DynamoDB table in its first region)
        ledger = DynamoLedger(boto3.client("dynamodb", region_name="eu-west-1"), region="eu-west-1")
        ledger.record_release(ReleaseRecord("iris", "iris-0123456789", git(repo, "rev-parse", "HEAD"), "cfg", "bld",
                                            "ci", author="ada@example.com"))
        # When: the author approves from her clone, under the reviewers' role: refused (git's e-mail is hers)
        own = run_cli("approve", "iris-0123456789", "--env", "prod", cwd=repo,
                      env={"MODELOPS_USER": "reviewer@example.com"})
        assert own.exit_code == 1, own
        session = "arn:aws:sts::123456789012:assumed-role/modelops-reviewer/modelops-reviewer@example.com"
        assert own.stderr.startswith(f"error: four-eyes: {session} (also ada@example.com) wrote commit ")
        # When: the reviewer approves from her own clone
        git(repo, "config", "user.email", "reviewer@example.com")
        approved = run_cli("approve", "iris-0123456789", "--env", "prod", "--output", "json", cwd=repo,
                           env={"MODELOPS_USER": "reviewer@example.com"})
        assert approved.exit_code == 0, approved
        # Then: the ledger says who STS says she is, authenticated, by the rule that let her
        assert (approved.json()["by"], approved.json()["source"]) == (session, "sts")
        [approval] = ledger.approvals("iris-0123456789", "prod")
        assert (approval.by, approval.source, approval.authenticated) == (session, "sts", True)
        assert ledger.verify("iris", releases=["iris-0123456789"]).ok


def test_a_ledger_edited_behind_modelops_back_is_found_and_blocks_deploy(repo: Path) -> None:
    release = built(repo)
    path = Path(run_cli("local", "status", "--output", "json", cwd=repo).json()["data_dir"]) / "ledger.sqlite"
    raw = sqlite3.connect(path)
    body = json.loads(raw.execute("SELECT body FROM entries WHERE entry = 'release'").fetchone()[0])
    raw.execute("DROP TRIGGER entries_no_update")  # what it takes, with the file and the sqlite3 shell
    raw.execute("UPDATE entries SET body = ? WHERE entry = 'release'",
                (json.dumps({**body, "author": "mallory@example.com"}, sort_keys=True, separators=(",", ":")),))
    raw.commit()
    raw.close()
    problem = (f"ledger {path}: iris: entry 1 (release of {release}) was changed after it was written "
               "(its hash does not match)")
    verify = run_cli("ledger", "verify", "--output", "json", cwd=repo)
    assert verify.exit_code == 3, verify
    assert problem in verify.stderr
    [chain] = [m for ledger in verify.json()["ledgers"] for m in ledger["models"]]
    assert chain["problem"]["seq"] == 1 and not chain["ok"]
    deploy = run_cli("deploy", "models/iris", "--env", "dev", cwd=repo)
    assert deploy.exit_code == 3, deploy
    assert f"\nerror: {problem}\n" in deploy.stderr
    assert "Restore the ledger from a backup" in deploy.stderr
    assert not [e for e in history(repo) if e["entry"] == "step"]  # nothing rolled out


def test_a_rollback_target_is_verified_before_its_build_is_used(repo: Path) -> None:
    # On DynamoDB the build records a rollback reads live under the release (copies of the history):
    # one forged there would name another image. Building the target verifies them first.
    moto = pytest.importorskip("moto")
    import boto3

    from modelops.config import Workspace, load_environments, load_model
    from modelops.deploy.repo import target_for_release
    from modelops.ledger import BuildRecord, LedgerTamperedError
    from modelops.ledger.dynamo import DynamoLedger

    ws = Workspace.discover(repo)
    model, prod = load_model(ws, "iris"), load_environments(ws).get("prod")
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
        ledger = DynamoLedger(client, region="eu-west-1")
        ledger.record_build(BuildRecord("iris", "iris-0123456789", "prod", "us-east-1", "good/image:1", "", "sha256:1"))
        assert target_for_release(model, prod, "us-east-1", "iris-0123456789", ledger, ws).image_uri == "good/image:1"
        forged = BuildRecord("iris", "iris-0123456789", "prod", "us-east-1", "evil/image:1", "", "sha256:1", at=1e10)
        client.put_item(TableName="modelops-ledger", Item={
            "pk": {"S": "RELEASE#iris-0123456789"}, "sk": {"S": "SEQ#000000000099"}, "seq": {"N": "99"},
            "entry_id": {"S": "forged"}, "entry": {"S": "build"}, "environment": {"S": "prod"},
            "region": {"S": "us-east-1"}, "body": {"S": forged.to_json()}})
        assert ledger.builds("iris-0123456789", "prod")[0].image_uri == "evil/image:1"  # what a rollback would read
        with pytest.raises(LedgerTamperedError, match=r"release iris-0123456789 holds an entry .* not in iris.s history"):
            target_for_release(model, prod, "us-east-1", "iris-0123456789", ledger, ws)
