"""The one context object every service call receives, built once by the CLI (or by a test).

It holds what the library needs from the outside world: where things are (working directory,
data directory), what time it is (an injectable clock, so bake times take no real time in unit
tests), the process environment, and where progress goes. Services never read ``os.environ`` or
the wall clock directly, and never print.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Progress(Protocol):
    """Where long work reports what it is doing. The CLI renders it with rich; tests may record it."""

    def step(self, message: str) -> None:
        """A one-line event: a rollout step, a stage starting, a region finishing."""

    def start(self, task: str, total: float | None = None) -> None:
        """A task with a progress bar (``total`` None: indeterminate)."""

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None: ...

    def finish(self, task: str) -> None: ...


class NullProgress:
    def step(self, message: str) -> None:
        pass

    def start(self, task: str, total: float | None = None) -> None:
        pass

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``$MODELOPS_DATA_DIR``, else ``$XDG_DATA_HOME/modelops``, else ``~/.local/share/modelops``."""
    if environ.get("MODELOPS_DATA_DIR"):
        return Path(environ["MODELOPS_DATA_DIR"]).expanduser()
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "modelops"


@dataclass(frozen=True)
class Runtime:
    """What a service call may know about the world around it."""

    cwd: Path
    data_dir: Path
    environ: Mapping[str, str]
    clock: Clock = field(default_factory=SystemClock)
    progress: Progress = field(default_factory=NullProgress)
    verbose: bool = False

    @property
    def local_cloud_dir(self) -> Path:
        """Data dir of the local cloud: ``$MODELOPS_LOCAL_DATA_DIR``, else ``<data_dir>/localcloud``."""
        override = self.environ.get("MODELOPS_LOCAL_DATA_DIR")
        return Path(override).expanduser() if override else self.data_dir / "localcloud"

    @property
    def user(self) -> str:
        """Who this process says it acts for, normalised, without asking git or STS: the CI user
        (``$MODELOPS_CI_USER``), else ``$MODELOPS_USER``, else ``$USER``, else "unknown". Enough to
        name a lock's holder or an STS session; who acts, and whether that is authenticated, is
        :func:`modelops.identity.identify`'s to say."""
        from modelops.identity import CI_USER, claimed, normalise

        return normalise(self.environ.get(CI_USER) or "") or claimed(self.environ).name

    @classmethod
    def from_environment(cls, *, progress: Progress | None = None, verbose: bool = False) -> Runtime:
        environ = dict(os.environ)
        return cls(
            cwd=Path.cwd(),
            data_dir=default_data_dir(environ),
            environ=environ,
            progress=progress or NullProgress(),
            verbose=verbose,
        )
