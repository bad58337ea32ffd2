"""Benchmark: `modelops validate` over 1,000 model configs, side by side with a baseline.

    .venv/bin/python -m bench.validate [--models 1000] [--repeat 5] [--baseline /work/main/.venv/bin/modelops]

Generates a git repository of N models made from the three examples (renamed, with varied instance
types, SLOs and environment variables; each with its code, cases and artifacts), warms the caches
every version keeps (bandit, hadolint, artifact hashes) once, then times, alternating in this same
run, each as a fresh process (best of ``--repeat``):

- **cold**: ``modelops validate models`` with no validate results cached (what follows a change to
  the policy or the environments: every model is checked again);
- **re-run**: the same after one model.yaml changed (the others' results come from the cache);
- the **baseline** (``--baseline``: another install's ``modelops``, e.g. main's) on the same repository,
  with its own data dir, run the same way (it caches no results: its re-run is a cold run);
- ``check-jsonschema`` over the same files with the same schema (schema only);
- ``modelops --help`` of both.

Goals on the 2-core CI machine: cold < 0.6 s and re-run < 0.2 s for 1,000 models, where the
baseline took 0.90-0.96 s; ``--help`` < 0.3 s. The machine is shared, so the ratios (measured in
the same run, interleaved) say more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INSTANCE_TYPES = {"iris": ["ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.m6i.large"],
                  "minilm-embeddings": ["ml.c5.xlarge", "ml.c5.2xlarge", "ml.m5.xlarge"],
                  "llm-chat": ["ml.g5.12xlarge", "ml.g5.24xlarge", "ml.g6.12xlarge"]}
RESULTS_CACHE = "cache/validate-results.json"


def generate(root: Path, count: int) -> list[Path]:
    """A repository with ``count`` models cloned from the examples; returns their model.yaml files."""
    shutil.copytree(ROOT / "pipelines", root / "pipelines")
    examples = sorted(INSTANCE_TYPES)
    files = []
    for i in range(count):
        example = examples[i % len(examples)]
        src = ROOT / "models" / example
        name = f"{example[:20]}-{i:04d}"
        dest = root / "models" / name
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "artifacts" if example != "iris" else "_"))
        text = (src / "model.yaml").read_text()
        text = text.replace(f"name: {example}\n", f"name: {name}\n", 1)
        base_type = next(t for t in INSTANCE_TYPES[example] if t in text)
        text = text.replace(f"instance_type: {base_type}", f"instance_type: {INSTANCE_TYPES[example][i % len(INSTANCE_TYPES[example])]}", 1)
        text = text.replace("max_error_rate: 0.01", f"max_error_rate: 0.0{1 + i % 9}")
        (dest / "model.yaml").write_text(text)
        files.append(dest / "model.yaml")
    return files


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def _age(root: Path, seconds: float = 60.0) -> None:
    """Date every file back: validate does not cache results of files written in the last seconds."""
    past = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in (*filenames, *dirnames):
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)


CPU: dict[str, list[float]] = {}


def run(command: list[str], cwd: Path, env: dict[str, str], label: str | None = None) -> tuple[float, int, str]:
    """Wall-clock seconds, exit status and stderr of one run; its CPU seconds (user + system, its
    forked workers included) go to ``CPU[label]``: on a machine others share, CPU time varies far less
    than wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label is not None:
        CPU.setdefault(label, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, proc.returncode, proc.stderr.decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another install's modelops executable (e.g. main's)")
    args = parser.parse_args()
    ours_exe = str(BIN / "modelops")
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        repo = Path(tmp) / "repo"
        files = generate(repo, args.models)
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "models")
        _age(repo)
        schema = Path(tmp) / "model.schema.json"
        from modelops.config.schema import schema_text

        schema.write_text(schema_text("model"))
        ours_data, base_data = Path(tmp) / "data", Path(tmp) / "data-baseline"
        env = {**os.environ, "MODELOPS_DATA_DIR": str(ours_data)}
        base_env = {**os.environ, "MODELOPS_DATA_DIR": str(base_data)}
        validate = ["validate", "models"]
        first, status, err = run([ours_exe, *validate], repo, env)  # empty data dir: nothing cached
        if status != 0:
            print(f"modelops validate failed with exit {status}:\n{err[-2000:]}", file=sys.stderr)
            return 1
        if args.baseline:
            base_first, status, err = run([str(args.baseline), *validate], repo, base_env)
            if status != 0:
                print(f"the baseline failed with exit {status}:\n{err[-2000:]}", file=sys.stderr)
                return 1
        times: dict[str, list[float]] = {}
        changed = files[len(files) // 2]
        original = changed.read_text()
        for i in range(args.repeat):
            (ours_data / RESULTS_CACHE).unlink(missing_ok=True)
            times.setdefault("cold", []).append(run([ours_exe, *validate], repo, env, "cold")[0])
            # One model changes (a value of its config), as in a pull request: the others come from the cache.
            changed.write_text(original.replace("max_error_rate: 0.0", f"max_error_rate: 0.00{i + 1}", 1))
            times.setdefault("rerun", []).append(run([ours_exe, *validate], repo, env, "rerun")[0])
            changed.write_text(original)
            _age(repo)
            times.setdefault("help", []).append(run([ours_exe, "--help"], repo, env, "help")[0])
            if args.baseline:
                times.setdefault("baseline", []).append(run([str(args.baseline), *validate], repo, base_env,
                                                            "baseline")[0])
                times.setdefault("baseline_help", []).append(run([str(args.baseline), "--help"], repo, base_env,
                                                                 "baseline_help")[0])
        theirs, status, _ = run([str(BIN / "check-jsonschema"), "--schemafile", str(schema), *map(str, files)], repo, env)
    best = {k: min(v) for k, v in times.items()}
    cpu = {k: min(v) for k, v in CPU.items()}

    def line(label: str, key: str, goal: str = "") -> None:
        print(f"{label:46s} {best[key]:6.3f} s wall  {cpu[key]:6.3f} s cpu  {goal}")

    print(f"models: {args.models}; best of {args.repeat}, interleaved; cpu = user + system, workers included")
    print(f"{'first run, empty data dir (bandit cold):':46s} {first:6.3f} s wall")
    line("cold (no results cached; bandit etc. warm):", "cold", "(goal < 0.6 s)")
    line("re-run, one model changed:", "rerun", "(goal < 0.2 s)")
    line("modelops --help:", "help", "(goal < 0.3 s)")
    if args.baseline:
        print(f"{'baseline first run, empty data dir:':46s} {base_first:6.3f} s wall")
        line("baseline (caches warm, no results cache):", "baseline")
        line("baseline --help:", "baseline_help")
        for key, label in (("cold", "cold"), ("rerun", "re-run"), ("help", "--help")):
            base = "baseline_help" if key == "help" else "baseline"
            print(f"{'ratio ' + label + ' / baseline:':46s} {best[key] / best[base]:6.2f} wall  "
                  f"{cpu[key] / cpu[base]:6.2f} cpu")
    print(f"{'check-jsonschema (schema only, same files):':46s} {theirs:6.3f} s wall")
    print(f"{'ratio check-jsonschema / cold:':46s} {theirs / best['cold']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
