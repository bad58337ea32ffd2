"""Failures outside a command's own checks: Ctrl-C (one clear line with what to do, exit 130, and with
--output json still one document) and a state directory modelops cannot write (one line, exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli


class _CtrlCWhileReading:
    """stdin whose read is where the user presses Ctrl-C (Python raises KeyboardInterrupt there)."""

    @property
    def buffer(self) -> _CtrlCWhileReading:
        return self

    def read(self, *_: object) -> bytes:
        raise KeyboardInterrupt


@pytest.mark.parametrize("output", [(), ("--output", "json")])
def test_ctrl_c_says_interrupted_and_exits_130(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                               output: tuple[str, ...]) -> None:
    monkeypatch.setattr("sys.stdin", _CtrlCWhileReading())
    result = run_cli("invoke", "iris", "--env", "dev", "--file", "-", *output, cwd=repo)
    assert result.exit_code == 130, result
    assert "error: interrupted (Ctrl-C)" in result.stderr and "run the same command again" in result.stderr, result
    if output:
        assert json.loads(result.stdout)["error"]["exit_status"] == 130, result
    else:
        assert result.stdout == "", result


@pytest.mark.parametrize("output", [(), ("--output", "json")])
def test_ctrl_c_while_bandit_scans_says_interrupted_not_a_silent_exit_2(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       output: tuple[str, ...]) -> None:
    # bandit catches KeyboardInterrupt and calls sys.exit(2): a Ctrl-C during a cold validate (or a deploy's
    # policy gate) ended with exit 2, no message, and in json mode nothing on stdout.
    from bandit.core.manager import BanditManager

    def ctrl_c(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(BanditManager, "_execute_ast_visitor", ctrl_c)  # where the user presses Ctrl-C
    result = run_cli("validate", "models/iris", *output, cwd=repo)
    assert result.exit_code == 130, result
    assert "error: interrupted (Ctrl-C)" in result.stderr, result
    assert "resumes" not in result.stderr, result  # only rollouts resume; validate simply runs again
    # The same Ctrl-C in a deploy's policy gate: a deploy resumes where it stopped.
    deploy = run_cli("--data-dir", str(repo / ".state"), "deploy", "models/iris", *output, cwd=repo)
    assert deploy.exit_code == 130, deploy
    assert "it resumes from what the ledger and the cloud say" in deploy.stderr, deploy
    if output:
        assert json.loads(result.stdout)["error"]["exit_status"] == 130, result
    else:
        assert result.stdout == "", result


def test_an_unusable_state_dir_is_one_line_exit_3_not_an_internal_error(repo: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    result = run_cli("build", "iris", "--context-only", tmp_path / "ctx", "--output", "json", cwd=repo,
                     env={"MODELOPS_DATA_DIR": str(not_a_dir / "state")})
    assert result.exit_code == 3, result
    assert "internal error" not in result.stderr, result
    error = json.loads(result.stdout)["error"]
    assert error["message"].startswith(f"cannot use {not_a_dir}/state") and "Not a directory" in error["message"]
    assert "MODELOPS_DATA_DIR" in error["hint"], result
