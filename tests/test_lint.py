"""Static checks run as tests: ruff, mypy and the import contracts of DESIGN.md (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "ruff"), "check", "modelops", "tests", "bench"],
        [str(BIN / "mypy")],
        [str(BIN / "lint-imports")],
    ],
    ids=["ruff", "mypy", "import-linter"],
)
def test_static_check_passes(command: list[str]) -> None:
    proc = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
