"""`modelops ci changed` on real git repos: what a change touches, as the JSON the Jenkinsfile fans out from."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import commit_all, git, run_cli, write


def _changed(repo: Path, since: str = "main") -> dict:
    result = run_cli("ci", "changed", "--since", since, "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    return result.json()


def test_a_changed_model_is_the_only_one_listed_with_its_environments(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "models/iris/code/extra.py", "X = 1\n")
    commit_all(repo, "touch iris")

    doc = _changed(repo)

    assert doc["models"] == [{"name": "iris", "folder": "models/iris", "valid": True,
                              "environments": ["dev", "staging", "prod"]}]
    assert doc["pipelines_changed"] is False
    assert doc["base_commit"] == git(repo, "rev-parse", "main")
    assert doc["head_commit"] == git(repo, "rev-parse", "HEAD")


def test_the_document_carries_environments_regions_and_waves_in_promotion_order(repo: Path) -> None:
    doc = _changed(repo)

    assert doc["models"] == []
    assert [e["name"] for e in doc["environments"]] == ["dev", "staging", "prod"]
    prod = doc["environments"][2]
    assert prod["waves"] == [["us-east-1"], ["eu-west-1", "ap-southeast-2"]]
    assert prod["approval"] is True and prod["cloud"] == "local"
    assert doc["environments"][0]["approval"] is False


def test_a_pipelines_change_lists_every_model(repo: Path) -> None:
    path = repo / "pipelines/environments.yaml"
    path.write_text(path.read_text().replace("wait_interval_seconds: 5", "wait_interval_seconds: 6"))

    doc = _changed(repo, "HEAD")  # uncommitted changes count

    assert doc["pipelines_changed"] is True
    assert [m["folder"] for m in doc["models"]] == ["models/iris", "models/llm-chat", "models/minilm-embeddings"]


def test_a_model_whose_config_does_not_load_is_still_listed(repo: Path) -> None:
    write(repo / "models/iris/model.yaml", "apiVersion: modelops/v1\nkind: Model\nspec: [\n")

    doc = _changed(repo, "HEAD")

    assert doc["models"] == [{"name": "iris", "folder": "models/iris", "valid": False, "environments": []}]


def test_text_output_names_the_folders(repo: Path) -> None:
    write(repo / "models/iris/code/extra.py", "X = 1\n")
    result = run_cli("ci", "changed", "--since", "HEAD", cwd=repo)
    assert result.exit_code == 0, result
    assert result.stdout == ""
    assert "models/iris" in result.stderr and "1 model(s) changed since HEAD" in result.stderr


def test_all_lists_every_model_for_a_first_build_with_nothing_to_compare_with(tmp_path: Path) -> None:
    # The Jenkinsfile's first build of a branch has no previous successful commit; HEAD~1 did not exist
    # in a one-commit repository (exit 2), and where it did, models untouched by the last commit were missed.
    from tests.helpers import init_repo

    repo = init_repo(tmp_path / "one-commit")
    assert run_cli("ci", "changed", "--since", "HEAD~1", cwd=repo).exit_code == 2
    result = run_cli("ci", "changed", "--all", "--output", "json", cwd=repo)
    assert result.exit_code == 0, result
    doc = result.json()
    assert [m["folder"] for m in doc["models"]] == ["models/iris", "models/llm-chat", "models/minilm-embeddings"]
    assert doc["since"] is None and doc["base_commit"] is None and doc["environments"], doc
    for args in ((), ("--all", "--since", "HEAD")):
        refused = run_cli("ci", "changed", *args, cwd=repo)
        assert refused.exit_code == 2 and "give --since REF" in refused.stderr, refused


def test_an_unknown_ref_is_bad_input(repo: Path) -> None:
    result = run_cli("ci", "changed", "--since", "no-such-branch", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    assert "git ref 'no-such-branch' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_shallow_clone_without_the_merge_base_is_bad_input_not_a_wrong_list(repo: Path, tmp_path: Path) -> None:
    # main moves on after the branch forked; a depth-1 clone holds neither the fork point nor the history.
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "models/llm-chat/notes.txt", "touched\n")
    commit_all(repo, "touch llm-chat")
    git(repo, "checkout", "-q", "main")
    path = repo / "models/iris/model.yaml"
    path.write_text(path.read_text().replace("max_instances: 4", "max_instances: 5"))
    commit_all(repo, "main moves")
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", repo.as_uri(), str(clone))
    git(clone, "checkout", "-q", "feature")

    for args in (("ci", "changed", "--since", "origin/main"), ("ci", "pr", "--base", "origin/main"),
                 ("validate", "--changed-since", "origin/main")):
        result = run_cli(*args, "--output", "json", cwd=clone)
        assert result.exit_code == 2, (args, result)
        error = result.json()["error"]
        assert "no common ancestor" in error["message"] and "shallow clone" in error["message"]
        assert "--unshallow" in error["hint"]
        assert "Traceback" not in result.stderr


def test_unrelated_histories_are_bad_input(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "elsewhere")
    commit_all(repo, "a root of its own")

    result = run_cli("ci", "changed", "--since", "main", "--output", "json", cwd=repo)

    assert result.exit_code == 2, result
    assert "no common ancestor" in result.json()["error"]["message"]
