"""Iris classifier served with the SageMaker inference toolkit contract (scikit-learn DLC, CPU).

The model is a linear classifier stored as JSON (see ../train.py); only numpy is needed to serve it.

Requests: ``application/json`` with ``{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}`` (or a single
list of four numbers), or ``text/csv`` with one row of four numbers per line.
Responses: ``application/json`` with ``{"predictions": [{"label": "setosa", "probabilities":
{"setosa": 0.97, ...}}, ...]}``.
"""

from __future__ import annotations

import json
import os

import numpy as np

N_FEATURES = 4


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    return {
        "classes": list(doc["class_names"]),
        "coef": np.asarray(doc["coefficients"], dtype=np.float64),
        "intercept": np.asarray(doc["intercepts"], dtype=np.float64),
    }


def input_fn(request_body, request_content_type):
    if isinstance(request_body, bytes | bytearray):
        request_body = request_body.decode("utf-8")
    if request_content_type == "application/json":
        doc = json.loads(request_body)
        rows = doc.get("instances") if isinstance(doc, dict) else doc
        if rows and not isinstance(rows[0], list):
            rows = [rows]
    elif request_content_type == "text/csv":
        rows = [[float(v) for v in line.split(",")] for line in request_body.strip().splitlines() if line.strip()]
    else:
        raise ValueError(f"unsupported content type {request_content_type}; use application/json or text/csv")
    data = np.asarray(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != N_FEATURES or data.shape[0] == 0:
        raise ValueError(f"expected rows of {N_FEATURES} numbers, got shape {data.shape}")
    return data


def predict_fn(input_data, model):
    scores = input_data @ model["coef"].T + model["intercept"]
    scores -= scores.max(axis=1, keepdims=True)
    probabilities = np.exp(scores)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    # output_fn sees only what predict_fn returns, so the class names travel with the numbers.
    return {"classes": model["classes"], "probabilities": probabilities}


def output_fn(prediction, accept):
    classes = prediction["classes"]
    predictions = [
        {
            "label": classes[int(np.argmax(row))],
            "probabilities": {name: round(float(p), 6) for name, p in zip(classes, row)},
        }
        for row in prediction["probabilities"]
    ]
    return json.dumps({"predictions": predictions})
