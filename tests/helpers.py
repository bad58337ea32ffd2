"""Test helpers that read like the user's terminal: run the CLI, make real git repos."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # what pytest shows when an assertion on the result fails
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@contextlib.contextmanager
def _patched_process(cwd: Path | None, env: Mapping[str, str] | None) -> Iterator[None]:
    old_cwd = os.getcwd()
    old_env = dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env:
            os.environ.update(env)
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> CliResult:
    """Run ``modelops ARGS`` in this process, as a user would in a terminal (no TTY)."""
    from modelops.cli.app import run

    out, err = io.StringIO(), io.StringIO()
    with _patched_process(cwd, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([os.fspath(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> CliResult:
    """Run ``modelops ARGS`` as a separate process (for start-up, signals and crash tests)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "modelops", *[os.fspath(a) for a in args]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada Author",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Author",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def init_repo(path: Path, files: Mapping[str, str | bytes] | None = None, *, copy_examples: bool = True) -> Path:
    """A real git repository at ``path`` holding the project's ``models/`` and ``pipelines/`` (unless
    ``copy_examples`` is False) plus ``files``, all committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "ada@example.com")
    git(path, "config", "user.name", "Ada Author")
    if copy_examples:
        for folder in ("models", "pipelines"):
            src = PROJECT_ROOT / folder
            if src.exists():
                shutil.copytree(src, path / folder, ignore=shutil.ignore_patterns("__pycache__", ".modelops"))
    for rel, content in (files or {}).items():
        write(path / rel, content)
    commit_all(path, "initial")
    return path


#: prod's rollout in pipelines/environments.yaml (a judged canary)...
PROD_ROLLOUT_STRATEGY = "      strategy: judged_canary\n      steps: [10, 50, 100]\n"
#: ...and SageMaker's own 50% canary, for tests of SageMaker's canary arithmetic and limits in prod.
SAGEMAKER_CANARY = "      strategy: canary\n      step_size: {type: CAPACITY_PERCENT, value: 50}\n"


def sagemaker_canary_in_prod(text: str) -> str:
    """``pipelines/environments.yaml``'s text with prod on SageMaker's 50% canary (same bakes) instead
    of the judged canary."""
    assert text.count(PROD_ROLLOUT_STRATEGY) == 1, "prod's rollout in pipelines/environments.yaml changed"
    return text.replace(PROD_ROLLOUT_STRATEGY, SAGEMAKER_CANARY)


def use_sagemaker_canary_in_prod(repo: Path) -> None:
    """Put ``repo``'s prod on SageMaker's 50% canary (uncommitted)."""
    envs = repo / "pipelines" / "environments.yaml"
    envs.write_text(sagemaker_canary_in_prod(envs.read_text()))


#: A one-region dev that rolls out by the judged canary (STEPS: its steps), the first environment.
JUDGED_DEV = """\
  dev:
    cloud: local
    regions: [us-east-1]
    approval: {required: false}
    rollout: {strategy: judged_canary, steps: STEPS, wait_interval_seconds: 5, max_execution_timeout_seconds: 600}
"""


def judged_iris_repo(path: Path, *, steps: str = "[50, 100]", more: str = "", promotion: str = "[dev]") -> Path:
    """A repository of iris alone whose dev (``JUDGED_DEV``, then the environments in ``more``) judges
    releases with the shipped policy, dev's minimum agreement raised to prod's; committed."""
    repo = init_repo(path, copy_examples=True)
    for other in ("llm-chat", "minilm-embeddings"):
        shutil.rmtree(repo / "models" / other)
    write(repo / "pipelines" / "environments.yaml", f"apiVersion: modelops/v1\nkind: Environments\n"
          f"promotion: {promotion}\nenvironments:\n" + JUDGED_DEV.replace("STEPS", steps) + more)
    model = repo / "models" / "iris" / "model.yaml"
    text = model.read_text()
    model.write_text(text[:text.index("  environments:\n    prod:")])
    policy = repo / "pipelines" / "policy.yaml"
    policy.write_text(policy.read_text().replace("environments: {dev: 0.95}", "environments: {}"))
    commit_all(repo, "iris with a judged dev")
    return repo


#: Headless Chromium, which checks the HTML reports as a browser lays them out (`make system-deps`).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def measured_in_chromium(page: str, script: str, work: Path) -> Any:
    """Lay ``page`` out in headless Chromium with ``script`` (which must put its findings, as JSON, in
    ``<pre id="measured">``) added at the end of its body, and return those findings."""
    html_file = work / "measure.html"
    html_file.write_text(page.replace("</body>", script + "</body>"))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={work / 'chromium-profile'}", "--virtual-time-budget=5000",
                          "--dump-dom", html_file.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return json.loads(dom.split('<pre id="measured">', 1)[1].split("</pre>", 1)[0])


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")
