"""The CLI's own contract: help, version, usage errors, start-up cost."""

from __future__ import annotations

import subprocess
import sys

from modelops import __version__
from tests.helpers import run_cli


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0, result
    assert result.stdout.strip() == f"modelops {__version__}"


def test_unknown_command_is_bad_usage() -> None:
    result = run_cli("no-such-command")
    assert result.exit_code == 2, result
    assert "No such command" in result.stderr


def test_help_does_not_import_heavy_modules() -> None:
    """`modelops --help` stays fast: no boto3, sagemaker, locust or emulator on its import path, and
    none of the config, policy or build machinery either (only the command modules)."""
    code = (
        "import sys\n"
        "from modelops.cli.app import run\n"
        "try:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'botocore', 'sagemaker', 'locust', 'gevent', 'modelops.localcloud.server',"
        " 'yaml', 'modelops.config', 'modelops.policy', 'modelops.build')"
        " if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "HEAVY=" in err, err
    assert err.rsplit("HEAVY=", 1)[1].strip() == "", f"heavy modules imported by --help: {err}"
