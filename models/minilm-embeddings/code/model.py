"""all-MiniLM-L6-v2 sentence embeddings behind DJL Serving's Python engine: ``handle(inputs)``.

Requests: ``application/json`` with ``{"inputs": ["a sentence", ...]}`` (or a single string).
Responses: ``{"embeddings": [[384 floats], ...], "dimensions": 384}``; vectors are L2-normalized,
so a dot product is the cosine similarity.
"""

from __future__ import annotations

import os

MAX_INPUTS = 64
_model = None


def _load(properties):
    from sentence_transformers import SentenceTransformer

    model_dir = properties.get("model_dir") or os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    return SentenceTransformer(model_dir, device="cpu")


def embed(model, sentences):
    """The embeddings of ``sentences`` as lists of floats (separate from ``handle`` for tests)."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
        raise ValueError("inputs must be a non-empty list of strings")
    if len(sentences) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} inputs per request")
    vectors = model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
    return {"embeddings": [[round(float(v), 6) for v in row] for row in vectors], "dimensions": int(vectors.shape[1])}


def handle(inputs):
    """DJL's entry point: called once with an empty input at start-up (load the model), then per request."""
    from djl_python import Output

    global _model
    if _model is None:
        _model = _load(inputs.get_properties())
    if inputs.is_empty():
        return None
    body = inputs.get_as_json()
    sentences = body.get("inputs") if isinstance(body, dict) else body
    try:
        result = embed(_model, sentences)
    except ValueError as exc:
        return Output().error(str(exc), code=400)
    return Output().add_as_json(result)
