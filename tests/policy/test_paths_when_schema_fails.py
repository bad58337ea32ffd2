"""A path out of the model folder is reported even when the config also fails its schema (as a
secret is): the reviewer sees every problem at once, not the escape only after the typo is fixed."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli

MODEL = Path("models/iris/model.yaml")


def test_path_escapes_are_reported_next_to_a_schema_error(repo: Path) -> None:
    text = (repo / MODEL).read_text()
    text = text.replace("entry_point: code/inference.py", "entry_point: ../minilm-embeddings/code/model.py")
    text = text.replace("requirements: code/requirements.txt", "requirements: /etc/passwd")  # the schema's own
    text = text.replace("cases: tests/cases.yaml", "cases: ../../../etc/cases.yaml")
    (repo / MODEL).write_text(text.replace("instance_type: ml.m5.large", "instanse_type: ml.m5.large"))

    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)

    assert result.exit_code == 1, result
    found = [(f["rule"], f["path"]) for f in result.json()["findings"]]
    assert found == [
        ("security.path-escape", "$.spec.container.handler.entry_point"),
        ("schema.invalid", "$.spec.container.requirements"),  # reported once, by the schema
        ("schema.unknown-key", "$.spec.resources.instanse_type"),
        ("security.path-escape", "$.spec.tests.cases"),
    ], result
