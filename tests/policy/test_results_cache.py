"""validate's results cache, on a real git repository: a re-run checks no model; changing anything
a result depends on re-checks exactly the models it can change, and cached results equal fresh ones.

Which models a run checks is observed with a real checker passed to validate that records the models
it is shown (validate shows checkers the models it does not take from the cache)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from modelops.config.findings import Finding
from modelops.policy import CheckContext, ValidateRequest, ValidationResult, validate
from modelops.runtime import Runtime
from tests.helpers import commit_all, init_repo

IRIS, MINILM = "models/iris", "models/minilm-embeddings"
ALL = {"iris", "minilm-embeddings", "llm-chat"}


class Recorder:
    """A checker that reports nothing and remembers the models it was shown."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, ctx: CheckContext) -> Iterator[Finding | None]:
        self.seen.update(m.name for m in ctx.models)
        return iter(())


RECORD = Recorder()


def _settle(repo: Path) -> None:
    """Date the files written in the last seconds a minute back (as if the user had edited them a
    minute ago): such fresh files are not cached yet, since their stat data could hide a second write
    in the same clock tick. Older files keep their dates, as they would."""
    now = time.time()
    past = now - 60
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in (*filenames, *dirnames):
            path = os.path.join(dirpath, name)
            if os.lstat(path).st_mtime > now - 30:
                os.utime(path, (past, past), follow_symlinks=False)


def _run(repo: Path, **request: object) -> tuple[set[str], ValidationResult]:
    RECORD.seen.clear()
    runtime = replace(Runtime.from_environment(), cwd=repo)
    result = validate(ValidateRequest(bandit=False, **request), runtime, extra_checkers=(RECORD,))  # type: ignore[arg-type]
    return set(RECORD.seen), result


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, rel
    path.write_text(text.replace(old, new, 1))
    _settle(repo)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    _settle(repo)
    checked, _ = _run(repo)
    assert checked == ALL
    checked, _ = _run(repo)
    assert checked == set(), "a re-run with nothing changed checks no model"
    return repo


def test_cached_results_are_the_fresh_results(repo: Path, tmp_path: Path) -> None:
    _edit(repo, f"{IRIS}/model.yaml", "instance_type: ml.m5.large", "instance_type: ml.m5.lrge")
    first_checked, fresh = _run(repo)
    again_checked, cached = _run(repo)
    assert (first_checked, again_checked) == ({"iris"}, set())
    assert cached.to_dict() == fresh.to_dict()
    assert [f.rule for f in cached.findings] == ["capacity.unknown-instance-type"]


@pytest.mark.parametrize(("rel", "old", "new", "checked"), [
    # the model's own files: its config, its code, its cases, its requirements, its artifact
    (f"{IRIS}/model.yaml", "p99_ms: 300", "p99_ms: 301", {"iris"}),
    (f"{IRIS}/code/inference.py", "import json", "import json  # edited", {"iris"}),
    (f"{IRIS}/tests/cases.yaml", "setosa-from-json", "setosa-as-json", {"iris"}),
    (f"{MINILM}/code/requirements.txt", "", "\n", {"minilm-embeddings"}),
    # what every model is checked against
    ("pipelines/policy.yaml", "headroom: 0.2", "headroom: 0.25", ALL),
    ("pipelines/environments.yaml", "wait_interval_seconds: 5", "wait_interval_seconds: 6", ALL),
])
def test_a_change_rechecks_the_models_it_can_change(repo: Path, rel: str, old: str, new: str,
                                                    checked: set[str]) -> None:
    if rel.endswith("requirements.txt"):
        path = repo / rel
        path.write_text(path.read_text() + new)
        _settle(repo)
    else:
        _edit(repo, rel, old, new)
    assert _run(repo)[0] == checked
    assert _run(repo)[0] == set()


def test_files_added_removed_and_committed(repo: Path) -> None:
    (repo / IRIS / "code" / "helpers.py").write_text("VALUE = 1\n")
    _settle(repo)
    assert _run(repo)[0] == {"iris"}  # an untracked file
    assert _run(repo)[0] == set()
    commit_all(repo, "add helpers")
    _settle(repo)
    _run(repo)  # its key moves from the untracked file's stat data to the folder's tree id
    assert _run(repo)[0] == set()
    (repo / IRIS / "code" / "helpers.py").unlink()
    _settle(repo)
    assert _run(repo)[0] == {"iris"}


def test_the_artifact_content_and_the_signing_key(repo: Path) -> None:
    artifact = repo / IRIS / "artifacts" / "model.json"
    artifact.write_bytes(artifact.read_bytes() + b" ")
    _settle(repo)
    checked, result = _run(repo)
    assert checked == {"iris"} and [f.rule for f in result.findings] == ["security.artifact-sha256"]
    (repo / "pipelines" / "artifact-signing.pub").write_text("not a key\n")
    _settle(repo)
    assert _run(repo)[0] == ALL


def test_modelops_its_rules_its_checkers_and_the_options(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelops
    from modelops.policy import rules

    monkeypatch.setattr(modelops, "__version__", modelops.__version__ + ".post1")
    assert _run(repo)[0] == ALL
    changed = rules.Rule("config.name-mismatch", rules.Severity.error, "stricter")
    monkeypatch.setitem(rules.RULES, "config.name-mismatch", changed)
    assert _run(repo)[0] == ALL
    RECORD.seen.clear()
    runtime = replace(Runtime.from_environment(), cwd=repo)
    validate(ValidateRequest(bandit=True), runtime, extra_checkers=(RECORD,))
    assert RECORD.seen == ALL  # another option
    other = Recorder()
    validate(ValidateRequest(bandit=False), runtime, extra_checkers=(RECORD, other))
    assert other.seen == ALL  # another checker


def test_a_file_written_just_now_is_checked_every_time_until_it_settles(repo: Path) -> None:
    path = repo / IRIS / "model.yaml"
    path.write_text(path.read_text().replace("p99_ms: 300", "p99_ms: 302"))
    assert _run(repo)[0] == {"iris"}
    assert _run(repo)[0] == {"iris"}  # not cached: another write in the same tick could hide
    _settle(repo)
    assert _run(repo)[0] == {"iris"}
    assert _run(repo)[0] == set()


def test_without_git_the_folders_are_walked(tmp_path: Path) -> None:
    import shutil

    repo = init_repo(tmp_path / "repo")
    shutil.rmtree(repo / ".git")
    _settle(repo)
    assert _run(repo)[0] == ALL
    assert _run(repo)[0] == set()
    _edit(repo, f"{IRIS}/code/inference.py", "import json", "import json  # edited")
    assert _run(repo)[0] == {"iris"}


def test_at_a_ref_the_tree_is_the_key(repo: Path) -> None:
    assert _run(repo, ref="HEAD")[0] == ALL
    assert _run(repo, ref="HEAD")[0] == set()
    _edit(repo, f"{IRIS}/model.yaml", "p99_ms: 300", "p99_ms: 303")
    commit_all(repo, "iris slo")
    assert _run(repo, ref="HEAD")[0] == {"iris"}
