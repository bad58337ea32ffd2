"""Benchmark: `modelops validate` over 1,000 model configs vs check-jsonschema over the same files.

    .venv/bin/python -m bench.validate [--models 1000] [--repeat 3]

Generates a repository of N models made from the three examples (renamed, with varied instance
types, SLOs and environment variables; each with its code, cases and artifacts), warms the bandit
cache once, then times, in this same run:

- ``modelops validate models/`` as a fresh process: schema + policy + capacity + bandit (cached);
- ``check-jsonschema --schemafile <model schema> <the N model.yaml files>`` (the baseline: schema only).

Prints the best of ``--repeat`` wall-clock times for each and the ratio. Goal: under 1 s for 1,000
models on a 2-core machine, and at least 3x faster than check-jsonschema.
"""

from __future__ import annotations

import argparse
import os
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


def timed(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> tuple[float, int]:
    best = float("inf")
    status = 0
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        best = min(best, time.perf_counter() - start)
        status = proc.returncode
        if status not in (0,):
            sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
    return best, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        repo = Path(tmp) / "repo"
        files = generate(repo, args.models)
        schema = Path(tmp) / "model.schema.json"
        from modelops.config.schema import schema_text

        schema.write_text(schema_text("model"))
        env = {**os.environ, "MODELOPS_DATA_DIR": str(Path(tmp) / "data")}
        validate = [str(BIN / "modelops"), "validate", "models"]
        warm, status = timed(validate, repo, env, 1)  # cold bandit cache
        if status != 0:
            print(f"modelops validate failed with exit {status} on the generated configs", file=sys.stderr)
            return 1
        ours, _ = timed(validate, repo, env, args.repeat)
        baseline_cmd = [str(BIN / "check-jsonschema"), "--schemafile", str(schema), *map(str, files)]
        theirs, status = timed(baseline_cmd, repo, env, args.repeat)
        if status != 0:
            print(f"check-jsonschema failed with exit {status}", file=sys.stderr)
            return 1
    print(f"models:                                   {args.models}")
    print(f"modelops validate, cold bandit cache:     {warm:.3f} s")
    print(f"modelops validate (schema+policy+capacity+bandit cached): {ours:.3f} s  (goal < 1 s)")
    print(f"check-jsonschema (schema only, same files): {theirs:.3f} s")
    print(f"ratio check-jsonschema / modelops:        {theirs / ours:.2f}x  (goal >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
