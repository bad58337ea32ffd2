"""Benchmark: what `modelops deploy MODEL --through prod` costs beyond the waits it is told to make.

    .venv/bin/python -m bench.deploy [--model iris]

Makes a fresh git repository of the example models with the test pipeline (dev, staging, and three
prod regions in two waves with a 4 s canary bake; tests/deploy/conftest.py), starts the local cloud
in a temp dir, and puts a first release in prod (not measured: creating endpoints has no canary).
Then, in this same run, a second release goes ``--through prod`` in process, and the bench prints:

- wall time, the tests' time (``modelops test`` in dev and staging, timed around ``run_tests``), the
  configured waits (per environment and wave: the canary/linear bake and termination wait of the
  rollout policy; regions of a wave bake side by side, so once per wave), and the pipeline's own
  overhead = wall - tests - configured waits. That overhead is split into the local cloud's own
  time (per environment and wave, from the first CreateEndpoint/UpdateEndpoint sent, as the ledger's
  step says, to the last endpoint's LastModifiedTime once InService, beyond the configured waits:
  the emulator starting the new containers and moving through its phases) and modelops' own work
  (the rest: builds' cache hits, gates, the ledger, API calls, noticing an endpoint is through, the
  hand-over between environments and waves). The time spent polling the cloud
  (``runtime.clock.sleep`` beyond the configured waits) is shown too: mostly waiting on the former.
- the two-region prod wave (wave 2): from the end of wave 1 to its last region's end (ledger step
  times: the hand-over between waves counts) against its slowest region's own start to end. Goal: at
  most 1.2x (regions of a wave run in parallel; run one after the other it would be about 2x).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelops.runtime import NullProgress

ROOT = Path(__file__).resolve().parent.parent
REVIEWER = "reviewer@example.com"
WAVE_GOAL = 1.2


class TimingClock:
    """The system clock, keeping the intervals the pipeline sleeps while it polls the cloud."""

    def __init__(self) -> None:
        self.sleeps: list[tuple[float, float]] = []

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        start = time.monotonic()
        time.sleep(seconds)
        self.sleeps.append((start, time.monotonic()))  # list.append is atomic: regions poll from threads

    def slept(self) -> float:
        """Seconds during which some region was polling (the union of the intervals: the regions of a
        wave poll side by side)."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.sleeps):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total


class StderrProgress(NullProgress):
    """The pipeline's one-line steps on stderr with the seconds since the start (--verbose); no bars."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.origin = time.monotonic()

    def step(self, message: str) -> None:
        if self.verbose:
            print(f"  {time.monotonic() - self.origin:7.2f} {message}", file=sys.stderr)


@contextmanager
def _timed_tests() -> Iterator[list[float]]:
    """Time every ``run_tests`` the pipeline makes (deploy imports it from modelops.verify per call)."""
    import modelops.verify as verify

    spent: list[float] = []
    real = verify.run_tests

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    verify.run_tests = timed
    try:
        yield spent
    finally:
        verify.run_tests = real


def _wave_waits(repo: Path, model_folder: str, through: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """Seconds the rollout policies tell SageMaker to wait on an update, per (environment, wave): a
    bake (WaitIntervalInSeconds) after each traffic shift (canary: the canary, then all; linear: each
    step; all at once: one) and the termination wait. Regions of a wave bake side by side."""
    from modelops.config import Workspace, effective, load_environments, load_model
    from modelops.config.rollout import total_wait

    ws = Workspace.discover(repo)
    envs = load_environments(ws)
    model = load_model(ws, model_folder)
    waits = {}
    for env in envs.in_promotion_order()[: envs.promotion.index(through) + 1]:
        config = effective(model, env)
        counted = total_wait(config.rollout, config.resources.instance_count)
        for wave in env.waves:
            waits[(env.name, tuple(wave))] = float(counted[0] if counted else 0)
    return waits


def _cloud_time(repo: Path, model: str, release: str, runtime: Any,
                waits: dict[tuple[str, tuple[str, ...]], float]) -> float:
    """The local cloud's own time: per environment and wave, from the first CreateEndpoint or
    UpdateEndpoint sent (the ledger's step, recorded just before the call) to the last endpoint's
    LastModifiedTime (when it went InService; tagging does not change it), less the configured waits."""
    from modelops import naming
    from modelops.clients import clients_for
    from modelops.config import Workspace, load_environments
    from modelops.deploy.cloud import RegionCloud
    from modelops.ledger import open_ledger

    envs = load_environments(Workspace.discover(repo))
    total = 0.0
    for (name, wave), wait in waits.items():
        env = envs.get(name)
        clients = clients_for(env, runtime)
        ledger = open_ledger(clients, runtime)
        try:
            sent = min(s.at for region in wave for s in ledger.steps(model, name, region, release=release)
                       if s.step in ("create-endpoint", "update-endpoint"))
            done = []
            for region in wave:
                view = RegionCloud(clients, region).endpoint(naming.endpoint_name(model, name), with_tags=False)
                assert view is not None and view.status == "InService", (name, region, view)
                done.append(view.last_modified)
        finally:
            ledger.close()
        total += max(done) - sent - wait
    return total


def _wave_times(repo: Path, model: str, release: str, runtime: Any) -> tuple[float, float, str]:
    """(prod's last wave: from the end of the wave before it to its last region's end; its slowest
    region alone, from its start to its end; the wave's regions), from the ledger's step times."""
    from modelops.clients import clients_for
    from modelops.config import Workspace, load_environments
    from modelops.ledger import open_ledger

    env = load_environments(Workspace.discover(repo)).get("prod")
    before, wave = env.waves[-2], env.waves[-1]
    ledger = open_ledger(clients_for(env, runtime), runtime)
    try:
        def span(region: str) -> tuple[float, float]:
            steps = ledger.steps(model, "prod", region, release=release)
            return (min(s.at for s in steps if s.step == "started"), max(s.at for s in steps if s.step == "succeeded"))

        spans = {region: span(region) for region in wave}
        wave_start = max(span(region)[1] for region in before)
    finally:
        ledger.close()
    whole = max(e for _, e in spans.values()) - wave_start
    slowest = max(e - s for s, e in spans.values())
    return whole, slowest, " + ".join(wave)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="iris")
    parser.add_argument("--verbose", action="store_true", help="print the pipeline's progress lines")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured deploy to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from modelops import localcloud
    from modelops.build import BuildRequest, build
    from modelops.deploy import ApproveRequest, DeployRequest, approve, deploy
    from modelops.ledger.records import LOAD, REGRESSION, TestRecord
    from modelops.runtime import Runtime
    from tests.deploy.conftest import FAST_ENVIRONMENTS, fast_model_yaml
    from tests.helpers import commit_all, init_repo

    folder = f"models/{args.model}"
    with tempfile.TemporaryDirectory(prefix="modelops-bench-deploy-") as tmp:
        root = Path(tmp)
        environ = {**os.environ, "MODELOPS_DATA_DIR": str(root / "data"),
                   "MODELOPS_LOCAL_DATA_DIR": str(root / "localcloud")}
        environ.pop("MODELOPS_USER", None)
        repo = init_repo(root / "repo", copy_examples=True)
        (repo / "pipelines" / "environments.yaml").write_text(FAST_ENVIRONMENTS)
        spec = repo / folder / "model.yaml"
        spec.write_text(fast_model_yaml(spec.read_text()))
        commit_all(repo, "bench pipeline")
        clock = TimingClock()
        runtime = Runtime(cwd=repo, data_dir=root / "data", environ=environ, clock=clock,
                          progress=StderrProgress(args.verbose))
        reviewer = replace(runtime, environ={**environ, "MODELOPS_USER": REVIEWER})
        try:
            # Not measured: a first release in prod (endpoints created), so the measured one updates.
            print("setting up: a first release in dev and prod ...", file=sys.stderr)
            first = deploy(DeployRequest(folder, environment="dev"), runtime)
            _given_tested_in_staging(repo, first.release, args.model, runtime, TestRecord, (REGRESSION, LOAD))
            approve(ApproveRequest(first.release, "prod"), reviewer)
            made = deploy(DeployRequest(folder, environment="prod"), runtime)
            if made.result != "succeeded":
                sys.exit(f"setting up prod failed: {made.message}")

            code = repo / folder / "code" / "inference.py"
            code.write_text(code.read_text() + "\n# the measured release\n")
            commit_all(repo, "the measured release")
            release = build(BuildRequest(folder, environment="prod", ref="HEAD"), runtime).release
            approve(ApproveRequest(release, "prod"), reviewer)

            print(f"measuring: deploy {folder} --through prod ({release}) ...", file=sys.stderr)
            clock.sleeps.clear()
            with _timed_tests() as tests:
                profiler = cProfile.Profile() if args.profile else None
                start = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                result = deploy(DeployRequest(folder, through="prod"), runtime)
                wall = time.perf_counter() - start
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
            if result.result != "succeeded":
                sys.exit(f"deploy --through prod {result.result}: {result.message}")
            wave_waits = _wave_waits(repo, folder, "prod")
            waits = sum(wave_waits.values())
            tested = sum(tests)
            overhead = wall - tested - waits
            polling = max(0.0, clock.slept() - waits)
            cloud = _cloud_time(repo, args.model, result.release, runtime, wave_waits)
            wave, slowest, regions = _wave_times(repo, args.model, result.release, runtime)
        finally:
            localcloud.stop(root / "localcloud")

    print(f"deploy {folder} --through prod: dev, staging, prod in 2 waves (3 regions), canary baking 4 s per shift")
    print(f"  wall time                        {wall:7.1f} s")
    print(f"  tests (dev, staging: {len(tests)} runs)      {tested:7.1f} s")
    print(f"  configured waits                 {waits:7.1f} s")
    print(f"  pipeline overhead                {overhead:7.1f} s  (wall - tests - configured waits), "
          f"{overhead / wall:.1%} of the wall time")
    print(f"    the local cloud's own time     {cloud:7.1f} s  (update sent -> InService beyond the waits: "
          "containers starting)")
    print(f"    modelops' own work             {overhead - cloud:7.1f} s  (builds' cache hits, gates, ledger, calls, "
          "noticing the end)")
    print(f"  polling the cloud beyond waits   {polling:7.1f} s  (runtime.clock.sleep: mostly waiting on the local cloud)")
    print(f"prod wave 2 ({regions} in parallel, from the end of wave 1): {wave:.1f} s; "
          f"its slowest region, start to end: {slowest:.1f} s")
    ratio = wave / slowest if slowest else float("inf")
    verdict = "meets" if ratio <= WAVE_GOAL else "misses"
    print(f"  wave / slowest region = {ratio:.2f}x ({verdict} the goal of at most {WAVE_GOAL}x)")
    return 0


def _given_tested_in_staging(repo: Path, release: str, model: str, runtime: Any, record: Any,
                             kinds: tuple[str, ...]) -> None:
    """Setup only: the first release's staging tests recorded as passed (it is not what is measured)."""
    from modelops.clients import clients_for
    from modelops.config import Workspace, load_environments
    from modelops.ledger import open_ledger

    env = load_environments(Workspace.discover(repo)).get("staging")
    ledger = open_ledger(clients_for(env, runtime), runtime)
    try:
        for kind in kinds:
            ledger.record_test(record(model=model, release=release, environment="staging", region=env.regions[0],
                                      kind=kind, passed=True, summary="bench setup"))
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
