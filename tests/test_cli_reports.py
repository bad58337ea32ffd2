"""Report files (--junit, --sarif, --markdown, --html) land where asked, their folder made if needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.helpers import run_cli


def test_reports_into_a_folder_that_does_not_exist_yet(repo: Path) -> None:
    result = run_cli("validate", "--junit", "reports/pr/validate.xml", "--sarif", "reports/pr/validate.sarif",
                     "--markdown", "reports/md/comment.md", cwd=repo)
    assert result.exit_code == 0, result
    assert ET.parse(repo / "reports/pr/validate.xml").getroot().tag == "testsuites"
    assert json.loads((repo / "reports/pr/validate.sarif").read_text())["version"] == "2.1.0"
    assert "modelops validate" in (repo / "reports/md/comment.md").read_text()


def test_a_report_path_that_cannot_be_a_file_is_one_line_exit_2(repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("validate", "--junit", blocker / "r.xml", cwd=repo)
    assert result.exit_code == 2, result
    assert result.stderr.splitlines()[-1].startswith(f"error: cannot write {blocker / 'r.xml'}"), result


def test_a_report_path_under_a_file_names_the_file_that_is_in_the_way(repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (blocker / "r.xml", blocker / "deeper" / "still" / "r.xml"):
        result = run_cli("validate", "--junit", target, "--output", "json", cwd=repo)
        assert result.exit_code == 2, result
        # It used to say "File exists" (or "Not a directory") about the report path itself.
        assert result.json()["error"]["message"] == f"cannot write {target}: {blocker} is not a directory", result


def test_a_report_path_that_is_a_directory_is_one_line_exit_2_not_an_internal_error(repo: Path) -> None:
    # `--markdown /` and `--junit .` used to end in "internal error: ValueError: ... has an empty name" (exit 3).
    for flag, target in (("--markdown", "/"), ("--junit", "."), ("--sarif", "models")):
        result = run_cli("validate", flag, target, "--output", "json", cwd=repo)
        assert result.exit_code == 2, result
        assert result.json()["error"]["message"] == f"cannot write {target}: it is a directory", result
        assert "internal error" not in result.stderr, result
    assert (repo / "models").is_dir()


def test_test_refuses_a_report_path_that_can_never_be_written_before_running_anything(repo: Path, tmp_path: Path) -> None:
    # It found out after the cases and the load test had run (20 s and more against the endpoint).
    import os

    from modelops import localcloud

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for flag, target, reason in (("--html", tmp_path, "it is a directory"),
                                 ("--junit", blocker / "r.xml", f"{blocker} is not a directory")):
        result = run_cli("test", "iris", "--env", "dev", flag, target, "--output", "json", cwd=repo)
        assert result.exit_code == 2, result
        assert result.json()["error"]["message"] == f"cannot write {target}: {reason}", result
        assert "testing iris-dev" not in result.stderr, result
    assert localcloud.status(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"])) is None  # nothing was started
