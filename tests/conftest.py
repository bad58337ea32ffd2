"""Fixtures shared by every test, and the isolation that keeps the suite away from the user's machine.

The suite must pass on a laptop where ``make demo`` left a local cloud running, where AWS variables,
a git identity and CI variables are set: none of it may leak into a test. Isolation therefore
happens once per process in ``pytest_configure`` (before collection, so module- and session-scoped
fixtures see it too), and again per test for the data dirs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import init_repo
from tests.localcloud_fixtures import local_cloud  # noqa: F401  (the shared running local cloud)

# Variables that carry the user's (or the CI agent's) identity, credentials or state. Every variable
# with one of these prefixes is removed for the whole session; ``CI`` and the CI users' variables too.
_USER_STATE_PREFIXES = ("AWS_", "MODELOPS_", "GIT_", "GITHUB_", "JENKINS_", "BUILD_", "XDG_", "SPINNAKER_")
_USER_STATE_NAMES = ("CI", "USER", "LOGNAME", "HF_HOME", "HUGGINGFACE_HUB_CACHE")

_session_home: Path | None = None


def isolate_process_environment(root: Path, environ: os._Environ[str] | dict[str, str]) -> None:
    """Point ``environ`` at fresh state under ``root``: a home with no git or AWS configuration,
    empty modelops data dirs, no AWS, CI or modelops variables, and git reading no global or system
    configuration. Exported for the test that proves it."""
    for name in [n for n in environ if n.startswith(_USER_STATE_PREFIXES) or n in _USER_STATE_NAMES]:
        del environ[name]
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("")
    environ.update({
        "HOME": str(home),
        "MODELOPS_DATA_DIR": str(root / "data"),
        "MODELOPS_LOCAL_DATA_DIR": str(root / "localcloud"),
        "MODELOPS_USER": "tester@example.com",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        # boto3 finds no profile, no credentials file, and never asks an instance metadata service.
        "AWS_CONFIG_FILE": str(home / "aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    })


def pytest_configure(config: pytest.Config) -> None:
    global _session_home
    _session_home = Path(tempfile.mkdtemp(prefix="modelops-tests-"))
    isolate_process_environment(_session_home, os.environ)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_home is not None:
        from modelops import localcloud

        # A session-scoped user of the session's local cloud dir may have left a server running.
        localcloud.stop(_session_home / "localcloud")
        shutil.rmtree(_session_home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test shares state with another: data dirs live in a temp dir per test."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MODELOPS_DATA_DIR", str(state / "data"))
    monkeypatch.setenv("MODELOPS_LOCAL_DATA_DIR", str(state / "localcloud"))
    monkeypatch.setenv("MODELOPS_USER", "tester@example.com")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repo holding the project's example models and pipelines, committed on main."""
    return init_repo(tmp_path / "repo")
