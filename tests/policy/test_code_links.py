"""A symlink in the code folder that leads out of the model folder is a located path-escape finding
(build packages no symlinks, so the container would miss the file)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import commit_all, run_cli


def _escape_findings(repo: Path, *args: str) -> list[dict]:
    result = run_cli("validate", "models/iris", "--output", "json", *args, cwd=repo)
    return [f for f in result.json()["findings"] if f["rule"] == "security.path-escape"]


def test_a_symlink_out_of_the_code_folder_is_found_in_the_tree_and_at_a_ref(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not the model's\n")
    code = repo / "models" / "iris" / "code"
    os.symlink(outside, code / "leak.txt")
    os.symlink("../../minilm-embeddings", code / "elsewhere")
    os.symlink("inference.py", code / "alias.py")  # inside the model folder: not an escape, still dropped

    found = _escape_findings(repo)
    assert sorted(f["message"] for f in found) == [
        "'code/elsewhere' is a symlink that leads out of the model folder models/iris",
        "'code/leak.txt' is a symlink that leads out of the model folder models/iris",
    ], found
    assert {(f["file"], f["path"]) for f in found} == {("models/iris/model.yaml", "$.spec.container.handler.source_dir")}
    assert found[0]["line"] > 1
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    inside = [f["message"] for f in result.json()["findings"] if f["rule"] == "config.symlink"]
    assert inside == ["'code/alias.py' is a symlink; build packs regular files only, so the image would not have it"]
    assert result.exit_code == 1, result

    commit_all(repo, "links")  # git keeps the symlinks as links: read at the ref, not the working tree
    assert sorted(f["message"] for f in _escape_findings(repo, "--ref", "HEAD")) == sorted(f["message"] for f in found)
