"""Regenerate artifacts/model.json: a multinomial logistic regression on scikit-learn's iris data set.

The artifact is JSON (feature names, class names, coefficients, intercepts), not a pickle: serving
needs only numpy, and loading it cannot run code. The output is deterministic (fixed solver and
seed, rounded numbers), so its sha256 in model.yaml stays valid when this is re-run:

    .venv/bin/python models/iris/train.py && .venv/bin/python models/iris/train.py --check
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "model.json"


def train() -> dict[str, object]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=1000, random_state=0).fit(data.data, data.target)
    accuracy = float(model.score(data.data, data.target))
    return {
        "format": "modelops/linear-classifier/v1",
        "feature_names": [str(n) for n in data.feature_names],
        "class_names": [str(n) for n in data.target_names],
        "coefficients": [[round(float(v), 6) for v in row] for row in model.coef_],
        "intercepts": [round(float(v), 6) for v in model.intercept_],
        "training_accuracy": round(accuracy, 4),
    }


def render(document: dict[str, object]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed artifact")
    args = parser.parse_args()
    content = render(train())
    if args.check:
        same = ARTIFACT.read_bytes() == content
        print("artifact is up to date" if same else "artifact differs from a fresh training run")
        raise SystemExit(0 if same else 1)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(content)
    print(f"{ARTIFACT.name} sha256 {hashlib.sha256(content).hexdigest()}")


if __name__ == "__main__":
    main()
