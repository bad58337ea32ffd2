from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import init_repo
from tests.localcloud_fixtures import local_cloud  # noqa: F401  (the shared running local cloud)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's real state: data dirs live in a temp dir per test."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MODELOPS_DATA_DIR", str(state / "data"))
    monkeypatch.setenv("MODELOPS_LOCAL_DATA_DIR", str(state / "localcloud"))
    monkeypatch.setenv("MODELOPS_USER", "tester@example.com")
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repo holding the project's example models and pipelines, committed on main."""
    return init_repo(tmp_path / "repo")
