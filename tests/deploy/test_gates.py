"""Gates over a real git repo and a real SQLite ledger: identity, four-eyes, tests, a clean tree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from modelops.config import Workspace, load_environments, load_model
from modelops.config.access import OPEN
from modelops.deploy import gates
from modelops.errors import GateError
from modelops.identity import identify
from modelops.ledger import sqlite_ledger
from modelops.ledger.records import LOAD, REGRESSION, Approval, ReleaseRecord, TestRecord
from modelops.runtime import Runtime
from tests.helpers import git


@pytest.fixture
def ledger(tmp_path: Path):
    runtime = Runtime(cwd=tmp_path, data_dir=tmp_path / "data", environ={"MODELOPS_LOCAL_DATA_DIR": str(tmp_path / "lc")})
    with sqlite_ledger(runtime) as opened:
        yield opened


def test_identity_is_the_claim_modelops_user_then_git_email_on_the_local_cloud(repo: Path) -> None:
    ws = Workspace.discover(repo)
    runtime = Runtime(cwd=repo, data_dir=repo / "data", environ={"MODELOPS_USER": " M@X ", "USER": "u"})
    assert gates.acting_identity(runtime, ws).name == "m@x"
    git_only = gates.acting_identity(replace(runtime, environ={"USER": "u"}), ws)
    assert (git_only.name, git_only.source, git_only.authenticated) == ("ada@example.com", "git", False)


def test_four_eyes_counts_only_someone_other_than_the_author(repo: Path, ledger) -> None:
    prod = load_environments(Workspace.discover(repo)).get("prod")
    author = "ada@example.com"
    with pytest.raises(GateError) as err:
        gates.check_approval(ledger, "iris-0123456789", prod, author, OPEN)
    assert "needs an approval for prod from someone other than its author (ada@example.com)" in err.value.message
    # Recorded before names were normalised: the author with a space and capitals is still the author.
    ledger.record_approval(Approval(model="iris", release="iris-0123456789", environment="prod", by=" ADA@example.com"))
    with pytest.raises(GateError) as err:
        gates.check_approval(ledger, "iris-0123456789", prod, author, OPEN)
    assert "(not counted: ada@example.com is its author)" in err.value.message
    ledger.record_approval(Approval(model="iris", release="iris-0123456789", environment="prod", by="bob@example.com"))
    gates.check_approval(ledger, "iris-0123456789", prod, author, OPEN)
    with pytest.raises(GateError):  # an author nobody can tell fails closed
        gates.check_approval(ledger, "iris-0123456789", prod, None, OPEN)
    staging = load_environments(Workspace.discover(repo)).get("staging")
    gates.check_approval(ledger, "iris-other", staging, author, OPEN)  # no approval required there


@pytest.mark.parametrize("claim", ["ada@example.com", " ada@example.com", "ADA@Example.com", "ada@example.com\n",
                                   "\u200bAda@example.com"])
def test_the_author_may_not_approve_with_whitespace_or_case_changes(repo: Path, claim: str) -> None:
    prod = load_environments(Workspace.discover(repo)).get("prod")
    who = identify({"MODELOPS_USER": claim})
    with pytest.raises(GateError) as err:
        gates.check_approver(who, "ada@example.com", OPEN, release="iris-1", commit="c" * 40, environment=prod)
    assert err.value.message.startswith("four-eyes: ada@example.com wrote commit cccccccccccc")
    gates.check_approver(identify({"MODELOPS_USER": "bob@example.com"}), "ada@example.com", OPEN, release="iris-1",
                         commit="c" * 40, environment=prod)
    no_four_eyes = replace(prod, approval=replace(prod.approval, four_eyes=False))
    gates.check_approver(who, "ada@example.com", OPEN, release="iris-1", commit="c" * 40, environment=no_four_eyes)


def test_an_approver_whose_commit_author_is_unknown_is_refused_without_being_called_its_author(repo: Path) -> None:
    # A checkout without the release's commit (another clone, a shallow one, no git) cannot tell the author:
    # four-eyes fails closed, but it used to say "bob@example.com (author unknown) wrote commit ...".
    prod = load_environments(Workspace.discover(repo)).get("prod")
    record = ReleaseRecord("iris", "iris-1", "d" * 40, "cfg", "bld", "tester@example.com")
    assert gates.release_author(record, Workspace.discover(repo)) is None
    with pytest.raises(GateError) as err:
        gates.check_approver(identify({"MODELOPS_USER": "bob@example.com"}), None, OPEN, release="iris-1",
                             commit="d" * 40, environment=prod)
    assert err.value.message == ("four-eyes: the author of commit dddddddddddd of release iris-1 is not known here "
                                 "(this checkout does not hold that commit), so bob@example.com cannot be told "
                                 "apart from the author for prod")
    assert "wrote" not in err.value.message
    assert err.value.hint == gates.UNKNOWN_AUTHOR_HINT
    # The author the build recorded is known wherever the ledger is, normalised.
    assert gates.release_author(replace(record, author=" Ada@Example.com"), Workspace.discover(repo)) == "ada@example.com"
    head = git(repo, "rev-parse", "HEAD")
    assert gates.release_author(replace(record, commit=head), Workspace.discover(repo)) == "ada@example.com"


def test_tests_gate_fails_closed_and_needs_every_kind_in_every_region(repo: Path, ledger) -> None:
    envs = load_environments(Workspace.discover(repo))
    staging, dev = envs.get("staging"), envs.get("dev")
    gates.check_tests(ledger, "iris-1", "iris", dev, None)  # the first environment has no previous one
    with pytest.raises(GateError) as err:
        gates.check_tests(ledger, "iris-1", "iris", staging, dev)
    assert err.value.message == "release iris-1 has no passing tests in dev (needed before staging)"
    ledger.record_test(TestRecord(model="iris", release="iris-1", environment="dev", region="us-east-1",
                                  kind=REGRESSION, passed=True))
    with pytest.raises(GateError):
        gates.check_tests(ledger, "iris-1", "iris", staging, dev)
    ledger.record_test(TestRecord(model="iris", release="iris-1", environment="dev", region="us-east-1",
                                  kind=LOAD, passed=True))
    gates.check_tests(ledger, "iris-1", "iris", staging, dev)


def test_staging_and_prod_refuse_a_dirty_tree_dev_does_not(repo: Path) -> None:
    ws = Workspace.discover(repo)
    envs = load_environments(ws)
    model = load_model(ws, "iris")
    (repo / "models" / "iris" / "code" / "inference.py").write_text("# changed, not committed\n")
    gates.check_clean_tree(ws, model, envs.get("dev"), envs, None)
    gates.check_clean_tree(ws, model, envs.get("prod"), envs, "HEAD")  # a ref reads committed content
    with pytest.raises(GateError) as err:
        gates.check_clean_tree(ws, model, envs.get("prod"), envs, None)
    assert err.value.message == "prod deploys only committed releases: models/iris has uncommitted changes"
    (repo / "pipelines" / "new.yaml").write_text("untracked: true\n")
    with pytest.raises(GateError) as err:
        gates.check_clean_tree(ws, model, envs.get("staging"), envs, None)
    assert err.value.message == ("staging deploys only committed releases: models/iris and pipelines have "
                                 "uncommitted changes")


def test_a_dirty_pipelines_folder_alone_is_named_alone(repo: Path) -> None:
    ws = Workspace.discover(repo)
    envs = load_environments(ws)
    (repo / "pipelines" / "policy.yaml").write_text((repo / "pipelines" / "policy.yaml").read_text() + "\n")
    with pytest.raises(GateError) as err:
        gates.check_clean_tree(ws, load_model(ws, "iris"), envs.get("staging"), envs, None)
    assert err.value.message == "staging deploys only committed releases: pipelines has uncommitted changes"


def test_a_deploy_beyond_dev_outside_git_says_it_needs_git_not_that_an_option_was_misused(repo: Path) -> None:
    # The message used to be "... so --ref and --changed-since cannot be used", about options never given.
    import shutil

    from tests.helpers import run_cli

    shutil.rmtree(repo / ".git")
    result = run_cli("deploy", "models/iris", "--env", "staging", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    message = result.json()["error"]["message"]
    assert message.startswith(f"{repo} is not a git repository, and this needs git"), message
    assert "a deploy beyond dev" in message and "cannot be used" not in message, message
    assert result.stderr.splitlines()[-2].startswith("error: "), result


def test_the_policy_gate_names_file_line_column_and_unreadable_input_is_exit_2(repo: Path) -> None:
    from tests.helpers import commit_all, run_cli

    model = repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace("instance_type: ml.m5.large", "instance_type: ml.m5.nope"))
    commit_all(repo, "an instance type that does not exist")
    refused = run_cli("deploy", "models/iris", "--output", "json", cwd=repo)
    assert refused.exit_code == 1, refused
    message = refused.json()["error"]["message"]
    assert message.startswith("policy: 1 finding(s) block iris at the working tree: models/iris/model.yaml:"), message
    line, column = message.split("model.yaml:", 1)[1].split(": ", 1)[0].split(":")
    assert line.isdigit() and column.isdigit(), message  # file:line:col, as validate prints it

    # A file the check cannot read is bad input, exit 2 as for validate, build and test; it used to be a
    # gate (exit 1) located at "models/iris/tests/cases.yaml:None".
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True))
    (repo / "models" / "iris" / "tests" / "cases.yaml").write_text(bomb)
    commit_all(repo, "an alias bomb")
    unreadable = run_cli("deploy", "models/iris", "--output", "json", cwd=repo)
    assert unreadable.exit_code == 2, unreadable
    assert unreadable.json()["error"]["message"] == (
        "models/iris/tests/cases.yaml: document expands to more than 100000 nodes (an alias bomb?)"), unreadable
    assert "None" not in unreadable.stderr, unreadable
