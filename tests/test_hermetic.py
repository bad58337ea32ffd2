"""The suite itself: every test file is collected, and no test sees the user's machine (their data
dirs, a local cloud that `make demo` left running, AWS or CI variables, their git identity)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.runtime import Runtime, default_data_dir
from tests.helpers import PROJECT_ROOT


def _pytest(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=PROJECT_ROOT,
                          env=env if env is not None else dict(os.environ), capture_output=True, text=True,
                          timeout=timeout)


def test_every_test_file_is_collected() -> None:
    # pytest's default norecursedirs skips folders named like build outputs (build, dist, ...): a test
    # folder with such a name silently never runs unless the configuration says otherwise.
    listed = _pytest("--collect-only", "-q")
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    collected = {line.split("::", 1)[0] for line in listed.stdout.splitlines() if "::" in line}
    on_disk = {str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "tests").rglob("test_*.py")}
    assert on_disk - collected == set(), "test files pytest never collects"
    assert "tests/build/test_context.py" in collected


def test_the_session_sees_none_of_the_users_state() -> None:
    home = Path(os.environ["HOME"])
    assert Path(tempfile_root := home.parent).name.startswith("modelops-tests-"), tempfile_root
    assert not [name for name in os.environ if name.startswith("AWS_") and name not in (
        "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED")]
    assert "CI" not in os.environ and "BUILD_USER_ID" not in os.environ
    for path in (os.environ["AWS_CONFIG_FILE"], os.environ["AWS_SHARED_CREDENTIALS_FILE"]):
        assert not Path(path).exists()
    # git reads no global or system configuration: no identity but what a test's repo sets.
    assert subprocess.run(["git", "config", "--get", "user.email"], cwd=home, capture_output=True).returncode == 1
    runtime = Runtime.from_environment()
    assert runtime.data_dir != Path("~/.local/share/modelops").expanduser()
    assert str(default_data_dir({})).startswith(str(home))  # even with every variable gone


@pytest.mark.slow
def test_the_suite_passes_beside_a_running_local_cloud_credentials_and_a_git_identity(tmp_path: Path) -> None:
    """A user's laptop after `make demo`: a local cloud running in the default data dir, AWS variables
    and a git identity set, CI variables exported. The tests that look for a running local cloud
    (ci pr's cloud plan) and the user's identity must not see any of it."""
    from modelops import localcloud

    home = tmp_path / "user-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\temail = someone@corp.example\n\tname = Some One\n")
    user_cloud = home / ".local" / "share" / "modelops" / "localcloud"
    running = localcloud.ensure_running(user_cloud)
    try:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("MODELOPS_", "GIT_", "AWS_"))}
        env.update({"HOME": str(home), "CI": "true", "BUILD_USER_ID": "jenkins-someone",
                    "AWS_ACCESS_KEY_ID": "AKIAUSERSREALKEY0000", "AWS_SECRET_ACCESS_KEY": "secret",
                    "AWS_PROFILE": "production", "AWS_DEFAULT_REGION": "eu-central-1"})
        run = _pytest("-q", "tests/ci/test_pr.py", "tests/test_cli_local.py", "-k", "not suite_passes", env=env)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        # The user's local cloud is still there, untouched by the tests' `local down`s.
        assert localcloud.status(user_cloud) is not None and localcloud.status(user_cloud).pid == running.pid
    finally:
        localcloud.stop(user_cloud)
