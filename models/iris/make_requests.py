"""Regenerate tests/requests.jsonl: requests that judgments replay to both releases (spec.tests.replay).

300 requests over the iris feature space: the 150 rows of scikit-learn's iris data set, then 150
copies jittered by a seeded normal noise (a tenth of each feature's standard deviation, at most
the data set's range), every twelfth of them as text/csv. Deterministic, so re-running it leaves
the file unchanged:

    .venv/bin/python models/iris/make_requests.py && .venv/bin/python models/iris/make_requests.py --check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REQUESTS = Path(__file__).resolve().parent / "tests" / "requests.jsonl"
SEED = 12


def requests() -> list[dict[str, object]]:
    import numpy as np
    from sklearn.datasets import load_iris

    data = load_iris().data
    rng = np.random.default_rng(SEED)
    noise = rng.normal(0.0, 1.0, size=data.shape) * data.std(axis=0) * 0.1
    jittered = np.clip(data + noise, data.min(axis=0), data.max(axis=0))
    out: list[dict[str, object]] = []
    for row in data:
        out.append({"content_type": "application/json", "json": {"instances": [[round(float(v), 1) for v in row]]}})
    for i, row in enumerate(jittered):
        values = [round(float(v), 2) for v in row]
        if i % 12 == 11:
            out.append({"content_type": "text/csv", "body": ",".join(f"{v:g}" for v in values)})
        else:
            out.append({"content_type": "application/json", "json": {"instances": [values]}})
    return out


def render() -> str:
    return "".join(json.dumps(r, separators=(", ", ": ")) + "\n" for r in requests())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from what this makes")
    args = parser.parse_args()
    text = render()
    if args.check:
        same = REQUESTS.exists() and REQUESTS.read_text() == text
        print("up to date" if same else f"{REQUESTS} differs: re-run without --check")
        return 0 if same else 1
    REQUESTS.write_text(text)
    print(f"wrote {REQUESTS} ({text.count(chr(10))} requests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
