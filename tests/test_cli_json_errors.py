"""With --output json a failure is still one JSON document on stdout (human text stays on stderr), the
same shape for every command, so a CI step that parses stdout reads why it failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, write


@pytest.mark.parametrize("args", [
    ("build", "nope", "--output", "json"),
    ("deploy", "nope", "-o", "json"),
    ("status", "nope", "--output=json"),
    ("history", "nope", "--output", "json"),
    ("plan", "nope", "--env", "dev", "--output", "json"),
    ("test", "nope", "--env", "dev", "--output", "json"),
    ("validate", "models/nope", "--output", "json"),
    ("ci", "changed", "--since", "no-such-ref", "--output", "json"),
])
def test_bad_input_in_json_mode_is_one_error_document(repo: Path, args: tuple[str, ...]) -> None:
    result = run_cli(*args, cwd=repo)
    assert result.exit_code == 2, result
    doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing text
    assert set(doc) == {"error"} and doc["error"]["exit_status"] == 2, result
    assert doc["error"]["message"] and doc["error"]["message"] in result.stderr, result


@pytest.mark.parametrize("command", [("build",), ("deploy",), ("plan", "--env", "dev"), ("status",), ("history",)])
def test_a_model_folder_of_another_repository_is_refused_naming_both(repo: Path, tmp_path: Path,
                                                                     command: tuple[str, ...]) -> None:
    # It used to be read from there and mixed with this repository's git and pipelines: build ended in
    # "git failed in REPO: Cmd('git') failed due to: exit code(128) ..." and status answered for it.
    from tests.helpers import init_repo

    other = init_repo(tmp_path / "other")
    for given in (str(other / "models" / "iris"), "models/../../other/models/iris"):
        result = run_cli(command[0], given, *command[1:], "--output", "json", cwd=repo)
        assert result.exit_code == 2, result
        error = json.loads(result.stdout)["error"]
        assert error["message"] == f"{given} is outside the repository {repo}", result
        assert error["hint"].endswith("name a model of this one: iris, llm-chat, minilm-embeddings"), result


def test_usage_errors_in_json_mode_are_an_error_document_too(repo: Path) -> None:
    result = run_cli("deploy", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    assert json.loads(result.stdout)["error"]["message"] == "Missing argument 'model'.", result


def test_a_hint_travels_in_the_document(repo: Path) -> None:
    result = run_cli("deploy", "models/iris", "--env", "nowhere", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    error = json.loads(result.stdout)["error"]
    assert error["message"] == "unknown environment 'nowhere'", result
    assert "pipelines/environments.yaml" in error["hint"], result


def test_a_command_that_printed_its_document_prints_no_second_one(repo: Path) -> None:
    write(repo / "models/iris/model.yaml", "apiVersion: modelops/v1\nkind: Model\nspec: [\n")
    result = run_cli("validate", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    doc = json.loads(result.stdout)
    assert "error" not in doc and doc["findings"][0]["rule"] == "yaml.syntax", result


def test_text_mode_keeps_stdout_empty_on_errors(repo: Path) -> None:
    result = run_cli("deploy", "nope", cwd=repo)
    assert result.exit_code == 2 and result.stdout == "", result


@pytest.mark.parametrize("command", [("test",), ("deploy",), ("invoke", "--body", "{}")])
def test_an_unknown_region_reads_the_same_in_every_command(repo: Path, command: tuple[str, ...]) -> None:
    result = run_cli(command[0], "iris", "--env", "dev", "--region", "mars-1", *command[1:], "--output", "json",
                     cwd=repo)
    assert result.exit_code == 2, result
    assert result.json()["error"]["message"] == "environment dev has no region mars-1 (it has us-east-1)", result


@pytest.mark.parametrize("command", [("build", "iris"), ("deploy", "models/iris"), ("plan", "iris", "--env", "dev")])
def test_a_data_dir_that_cannot_be_one_is_an_environment_error_not_an_internal_one(
        repo: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    # It used to end in "internal error: FileNotFoundError: ..." / "NotADirectoryError" (the bug text, exit 3).
    not_a_dir = write(tmp_path / "a-file", "")
    result = run_cli("--data-dir", not_a_dir, *command, "--output", "json", cwd=repo)
    assert result.exit_code == 3, result
    error = json.loads(result.stdout)["error"]
    assert error["message"] == f"cannot use {not_a_dir}: Not a directory", result
    assert "MODELOPS_DATA_DIR" in error["hint"], result
    assert "internal error" not in result.stderr, result


def test_a_bad_option_value_before_output_json_is_still_an_error_document(repo: Path) -> None:
    # --output is read first (eager), whatever its place on the command line.
    result = run_cli("test", "iris", "--workers", "many", "--output", "json", cwd=repo)
    assert result.exit_code == 2, result
    assert "'--workers'" in result.json()["error"]["message"], result
