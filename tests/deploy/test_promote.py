"""`modelops promote RELEASE --to ENV`: a release built before goes on at its own commit, whatever HEAD
is now; a release that cannot be promoted is refused before anything in the environment changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.test_pipeline_e2e import _ledger, given_tests_passed
from tests.helpers import commit_all, run_cli


def _endpoints(repo: Path, env: str) -> list[dict[str, object]]:
    result = run_cli("status", "iris", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return [row for row in result.json()["endpoints"] if row["env"] == env]


@pytest.mark.slow
def test_promote_deploys_the_release_at_its_commit_and_refuses_what_it_cannot_promote(cloud_repo: Path) -> None:
    shutil.rmtree(cloud_repo / "models" / "minilm-embeddings")  # one local model keeps the test lean
    commit_all(cloud_repo, "only iris")
    dev = run_cli("deploy", "models/iris", "--env", "dev", "--output", "json", cwd=cloud_repo)
    assert dev.exit_code == 0, dev
    release = str(dev.json()["release"])
    given_tests_passed(cloud_repo, release, "dev")

    # HEAD moves on (a new release of iris); promote still takes the tested one.
    model = cloud_repo / "models" / "iris" / "model.yaml"
    model.write_text(model.read_text().replace('SAGEMAKER_CONTAINER_LOG_LEVEL: "20"', 'SAGEMAKER_CONTAINER_LOG_LEVEL: "10"'))
    commit_all(cloud_repo, "more logging")

    unknown = run_cli("promote", "iris-0000000000", "--to", "staging", "--output", "json", cwd=cloud_repo)
    assert unknown.exit_code == 2, unknown

    # A release whose commit this clone does not have says so, naming the release (not only a git ref).
    from modelops.ledger.records import ReleaseRecord

    ledger = _ledger(cloud_repo, "dev")
    try:
        ledger.record_release(ReleaseRecord(model="iris", release="iris-00000000aa", commit="0" * 40,
                                            config_digest="sha256:0", build_digest="sha256:0", created_by="x"))
        # And one recorded for this very commit whose build gives another id (not reproducible).
        head = run_cli("build", "models/iris", "--output", "json", cwd=cloud_repo).json()["commit"]
        ledger.record_release(ReleaseRecord(model="iris", release="iris-00000000bb", commit=head,
                                            config_digest="sha256:0", build_digest="sha256:0", created_by="x"))
    finally:
        ledger.close()
    # A release built from uncommitted changes (dev allows them) says so, not "not reproducible".
    readme = cloud_repo / "models" / "iris" / "code" / "inference.py"
    saved = readme.read_text()
    readme.write_text(saved + "\n# an uncommitted edit\n")
    dirty = run_cli("build", "models/iris", "--output", "json", cwd=cloud_repo).json()
    readme.write_text(saved)
    assert dirty["commit"].endswith("-dirty"), dirty
    uncommitted = run_cli("promote", dirty["release"], "--to", "staging", "--output", "json", cwd=cloud_repo)
    assert uncommitted.exit_code == 2, uncommitted
    assert uncommitted.json()["error"]["message"] == (
        f"release {dirty['release']} was built from uncommitted changes (on top of commit {dirty['commit'][:12]})")
    assert "modelops deploy iris --through staging" in uncommitted.json()["error"]["hint"], uncommitted
    missing = run_cli("promote", "iris-00000000aa", "--to", "staging", cwd=cloud_repo)
    assert missing.exit_code == 2, missing
    assert "release iris-00000000aa was built from commit 000000000000, which this clone does not have" in missing.stderr
    mismatch = run_cli("promote", "iris-00000000bb", "--to", "staging", cwd=cloud_repo)
    assert mismatch.exit_code == 2 and "but that commit now builds" in mismatch.stderr, mismatch
    assert [e["status"] for e in _endpoints(cloud_repo, "staging")] == ["absent"]  # refused: nothing deployed

    promoted = run_cli("promote", release, "--to", "staging", "--output", "json", cwd=cloud_repo)
    assert promoted.exit_code == 0, promoted
    assert promoted.json()["release"] == release and promoted.json()["result"] == "succeeded", promoted
    [staging] = _endpoints(cloud_repo, "staging")
    assert staging["release"] == release and staging["status"] == "InService", staging


@pytest.mark.slow
def test_deploy_through_an_environment_runs_its_tests_so_the_next_promotion_is_not_refused(cloud_repo: Path) -> None:
    # `deploy --through staging` used to stop before staging's tests: the next `promote --to prod` was
    # then refused for "no passing tests in staging" that nobody had been asked to run.
    shutil.rmtree(cloud_repo / "models" / "minilm-embeddings")
    commit_all(cloud_repo, "only iris")
    through = run_cli("deploy", "models/iris", "--through", "staging", "--output", "json", cwd=cloud_repo)
    assert through.exit_code == 0, through
    release = str(through.json()["release"])
    assert "staging: testing " + release in through.stderr, through
    ledger = _ledger(cloud_repo, "staging")
    try:
        assert ledger.tests_passed(release, "staging", regions=("us-east-1",))
    finally:
        ledger.close()
