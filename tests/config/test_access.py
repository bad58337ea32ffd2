"""pipelines/access.yaml: its schema, its typed config and decisions, and what validate says about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.config import Workspace
from modelops.config.access import APPROVE, DEPLOY, OPEN, ROLLBACK, UNBLOCK, load_access, read_access
from modelops.errors import InputError
from modelops.identity import Identity, identify
from tests.helpers import commit_all, init_repo, run_cli, write

ACCESS = """\
apiVersion: modelops/v1
kind: Access
owners: [platform]
groups:
  platform:
    emails: [platform@example.com]
  reviewers:
    emails: ["*@risk.example.com", reviewer@example.com]
    arns: ["arn:aws:iam::123456789012:role/Reviewer"]
    ci_users: ["jenkins:*"]
  oncall:
    ci_users: ["github:octocat"]
defaults:
  deploy: [anyone]
environments:
  prod:
    deploy: [reviewers]
    approve: [reviewers]
    rollback: [oncall, reviewers]
    unblock: [oncall]
    authenticated: [approve, unblock]
"""
JENKINS = {"JENKINS_URL": "https://ci/", "BUILD_URL": "https://ci/job/1/"}


@pytest.fixture
def access_repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"pipelines/access.yaml": ACCESS})


def test_decisions_follow_groups_defaults_and_authentication(access_repo: Path) -> None:
    access = load_access(Workspace.discover(access_repo))
    risk = identify({"MODELOPS_USER": "Quant@Risk.example.com"})
    assert access.decide(risk, DEPLOY, "prod").allowed  # by e-mail pattern
    refused = access.decide(risk, APPROVE, "prod")  # a member, but nothing authenticated it
    assert not refused.allowed and refused.unauthenticated and refused.rule.where == "pipelines/access.yaml:18:5"
    role = identify({}, caller_arn=lambda: "arn:aws:sts::123456789012:assumed-role/Reviewer/ana")
    approved = access.decide(role, APPROVE, "prod")  # the role's ARN, from its session's
    assert approved.allowed and approved.member == "reviewers: arn:aws:iam::123456789012:role/Reviewer"
    jenkins = identify({"MODELOPS_CI_USER": "alice", "MODELOPS_CI_SYSTEM": "jenkins", **JENKINS})
    assert access.decide(jenkins, APPROVE, "prod").allowed
    octocat = Identity("octocat", "github", authenticated=True)
    assert access.decide(octocat, ROLLBACK, "prod").allowed and access.decide(octocat, UNBLOCK, "prod").allowed
    assert not access.decide(octocat, APPROVE, "prod").allowed
    bob = identify({"MODELOPS_USER": "bob@example.com"})
    assert not access.decide(bob, DEPLOY, "prod").allowed
    assert access.decide(bob, DEPLOY, "staging").rule.where == "pipelines/access.yaml:14:3"  # the default
    assert access.decide(bob, ROLLBACK, "staging").rule.where == "no access rule (anyone may)"
    # A claim never admits: the STS caller is who acts, whatever $MODELOPS_USER says.
    claimer = identify({"MODELOPS_USER": "reviewer@example.com"}, caller_arn=lambda: "arn:aws:iam::123456789012:user/bob")
    assert not access.decide(claimer, DEPLOY, "prod").allowed


def test_without_the_file_anyone_may_do_anything(repo: Path) -> None:
    (repo / "pipelines" / "access.yaml").unlink()
    access = load_access(Workspace.discover(repo))
    assert access == OPEN and access.file is None
    assert all(access.decide(Identity("x", "os", False), action, "prod").allowed
               for action in (DEPLOY, APPROVE, ROLLBACK, UNBLOCK))


def test_the_project_file_lets_the_reviewer_approve_prod_and_anyone_deploy() -> None:
    from tests.helpers import PROJECT_ROOT

    access = load_access(Workspace(PROJECT_ROOT))
    assert access.decide(identify({"MODELOPS_USER": "reviewer@example.com"}), APPROVE, "prod").allowed
    assert not access.decide(identify({"MODELOPS_USER": "ada@example.com"}), APPROVE, "prod").allowed
    assert access.decide(identify({"MODELOPS_USER": "ada@example.com"}), DEPLOY, "prod").allowed


def test_validate_reports_unknown_groups_environments_and_bad_patterns_where_they_are(access_repo: Path) -> None:
    broken = (ACCESS.replace("owners: [platform]", "owners: [platfrom]")
              .replace("    rollback: [oncall, reviewers]", "    rollback: [oncall, reviewer]")
              .replace('emails: [platform@example.com]', 'emails: [platform@example.com, "*@*"]')
              .replace('ci_users: ["github:octocat"]', 'emails: ["[oncall@example.com"]')
              + "  prdo:\n    deploy: [anyone]\n  dev:\n    deploy: [nobody-here]\n")
    write(access_repo / "pipelines" / "access.yaml", broken)
    result = run_cli("validate", "pipelines", "--output", "json", cwd=access_repo)
    assert result.exit_code == 1, result
    found = {(f["rule"], f["line"], f["path"]): f["message"] for f in result.json()["findings"]}
    assert found[("access.unknown-group", 3, "$.owners[0]")] == (
        "owners names group 'platfrom', which access.yaml does not define (did you mean 'platform'?)")
    assert found[("access.unknown-group", 19, "$.environments.prod.rollback[1]")].endswith("(did you mean 'reviewers'?)")
    assert found[("access.unknown-group", 25, "$.environments.dev.deploy[0]")] == (
        "environments.dev.deploy names group 'nobody-here', which access.yaml does not define")
    assert found[("access.unknown-environment", 22, "$.environments.prdo")] == (
        "environment 'prdo' is not in pipelines/environments.yaml (did you mean 'prod'?)")
    assert "matches every email" in found[("access.pattern", 6, "$.groups.platform.emails[1]")]
    assert "has a '[' without its ']'" in found[("access.pattern", 12, "$.groups.oncall.emails[0]")]
    severities = {f["rule"]: f["severity"] for f in result.json()["findings"]}
    assert severities["access.unknown-environment"] == "warning" and severities["access.unknown-group"] == "error"
    # The strict loader (what deploy and approve use) refuses it with the first problem's place.
    with pytest.raises(InputError, match=r"^pipelines/access.yaml:3:\d+: owners names group 'platfrom'"):
        load_access(Workspace.discover(access_repo))


def test_schema_errors_are_located_and_the_schema_is_printed(access_repo: Path) -> None:
    write(access_repo / "pipelines" / "access.yaml", ACCESS.replace(
        'arns: ["arn:aws:iam::123456789012:role/Reviewer"]', 'arns: ["arn:aws:iam::12345:role/Reviewer"]')
          .replace("unblock: [oncall]", "unblok: [oncall]"))
    loaded = read_access(Workspace.discover(access_repo))
    assert loaded.value is None
    messages = {(f.rule, f.location.line): f.message for f in loaded.findings}
    assert "groups.reviewers.arns[0]: 'arn:aws:iam::12345:role/Reviewer' does not match" in messages[("schema.invalid", 9)]
    assert "did you mean 'unblock'" in messages[("schema.unknown-key", 20)]
    write(access_repo / "pipelines" / "access.yaml", ACCESS.replace("  oncall:\n", "  anyone:\n    emails: [a@b.c]\n  oncall:\n"))
    reserved = read_access(Workspace.discover(access_repo)).findings
    assert [(f.rule, f.location.line, f.message) for f in reserved] == [
        ("access.reserved-group", 11, "group 'anyone' is built in (every identity): it may not be defined")]
    printed = run_cli("schema", "access")
    assert printed.exit_code == 0 and json.loads(printed.stdout)["title"].startswith("modelops access control")


def test_ci_pr_and_validate_read_the_file_at_the_ref_asked(access_repo: Path) -> None:
    commit_all(access_repo, "access")
    write(access_repo / "pipelines" / "access.yaml", ACCESS.replace("[platform]", "[nobody]"))
    assert run_cli("validate", "pipelines", "--ref", "HEAD", cwd=access_repo).exit_code == 0
    assert run_cli("validate", "pipelines", cwd=access_repo).exit_code == 1


def test_the_readme_example_validates(tmp_path: Path) -> None:
    from tests.helpers import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Access control", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    repo = init_repo(tmp_path / "repo", {"pipelines/access.yaml": example})
    result = run_cli("validate", "pipelines", "--output", "json", cwd=repo)
    assert result.exit_code == 0 and result.json()["findings"] == [], result
    access = load_access(Workspace.discover(repo))
    assert access.decide(identify({"MODELOPS_USER": "quant@risk.example.com"}), APPROVE, "prod").unauthenticated
