"""What judgments read from the configs: JSONPath wildcards with the concrete place of each match,
spec.answers and spec.tests.replay of model.yaml, judgment: of policy.yaml (defaults when absent)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from modelops.config import Judgment, Workspace, jsonpath, load_model, load_policy, load_replay
from modelops.config.answers import AnswerRule, AnswerRules
from modelops.config.cases import CaseRequest, load_replay_file, parse_replay
from modelops.errors import InputError
from tests.helpers import init_repo, write

DOC = {"predictions": [{"label": "setosa", "probabilities": {"setosa": 0.9, "virginica": 0.1}},
                       {"label": "virginica", "probabilities": {"setosa": 0.2, "virginica": 0.8}}],
       "x y": {"it's": 1}}


@pytest.mark.parametrize(("path", "expected"), [
    ("$.predictions[*].label", (("$.predictions[0].label", "setosa"), ("$.predictions[1].label", "virginica"))),
    ("$.predictions[1].probabilities.*", (("$.predictions[1].probabilities.setosa", 0.2),
                                          ("$.predictions[1].probabilities.virginica", 0.8))),
    ("$.predictions[-1].label", (("$.predictions[1].label", "virginica"),)),
    ("$.predictions[*].nope", ()),
    ("$.predictions[5]", ()),
    ("$['x y'].*", (("$['x y']['it\\'s']", 1),)),
    ("$", (("$", DOC),)),
])
def test_jsonpath_matches_give_each_value_with_its_concrete_path(path: str, expected: tuple) -> None:
    assert jsonpath.matches(DOC, path) == expected


def test_jsonpath_concrete_paths_parse_back_to_the_same_value() -> None:
    for at, value in jsonpath.matches(DOC, "$.*.*"):
        assert jsonpath.find(DOC, at) == (True, value)


def test_jsonpath_wildcards_and_find() -> None:
    assert jsonpath.has_wildcard("$.a[*].b") and jsonpath.has_wildcard("$.a.*")
    assert not jsonpath.has_wildcard("$.a[0]['*']")
    assert jsonpath.find(DOC, "$.predictions[*].probabilities.setosa") == (True, [0.9, 0.2])
    assert jsonpath.find({"a": []}, "$.a[*]") == (False, [])
    with pytest.raises(ValueError):
        jsonpath.matches(DOC, "$.predictions[*")


def test_the_example_models_declare_their_answer_rules(repo: Path) -> None:
    ws = Workspace.discover(repo)
    iris = load_model(ws, "iris")
    assert iris.answers == AnswerRules(False, (AnswerRule("$.predictions[*].label", "equals"),
                                              AnswerRule("$.predictions[*].probabilities.*", "tolerance", 0.02)))
    assert iris.tests.replay == "tests/requests.jsonl"
    assert load_model(ws, "minilm-embeddings").answers.rules[-1] == AnswerRule("$.embeddings[*]", "cosine", 0.99)
    [llm] = load_model(ws, "llm-chat").answers.rules
    assert (llm.kind, llm.threshold, llm.length_ratio) == ("similarity", 0.6, 2.0)
    assert llm.describe() == "$.generated_text: text similarity >= 0.6, lengths within x2"
    assert iris.position("spec", "answers", "rules", 1).line > iris.position("spec", "answers").line


def test_a_model_without_answers_compares_exactly(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    text = (repo / "models/iris/model.yaml").read_text()
    start = text.index("  # How a judgment compares")
    end = text.index("  environments:")
    write(repo / "models/iris/model.yaml", text[:start] + text[end:])
    assert load_model(Workspace.discover(repo), "iris").answers == AnswerRules()


def test_the_iris_replay_file_covers_the_data_set_and_jittered_copies(repo: Path) -> None:
    ws = Workspace.discover(repo)
    requests = load_replay(ws, load_model(ws, "iris"))
    assert len(requests) == 300
    assert requests[0] == CaseRequest(body=b'{"instances":[[5.1,3.5,1.4,0.2]]}')
    assert {r.content_type for r in requests} == {"application/json", "text/csv"}
    assert len(load_replay(ws, load_model(ws, "minilm-embeddings"))) == 50
    assert load_replay(ws, load_model(ws, "llm-chat")) == ()  # names none


def test_parse_replay_reads_json_and_text_bodies_and_locates_each_bad_line() -> None:
    data = (b'{"content_type": "application/json", "json": {"instances": [[1, 2, 3, 4]]}}\n'
            b'\n'
            b'{"content_type": "text/csv", "body": "1,2,3,4", "accept": "text/csv"}\n'
            b'{"content_type": "text/csv", "body": "1,2", "json": 1}\n'
            b'[1, 2]\n'
            b'{"content_type": "text/csv" "body": ""}\n'
            b'{"body": 5}\n'
            b'{"bdy": "x"}\n')
    requests, findings = parse_replay(data, "models/m/tests/r.jsonl", model="m")
    assert requests == (CaseRequest(body=b'{"instances":[[1,2,3,4]]}'),
                        CaseRequest(content_type="text/csv", accept="text/csv", body=b"1,2,3,4"))
    assert [(str(f.location), f.rule, f.message) for f in findings] == [
        ("models/m/tests/r.jsonl:4:1", "cases.replay", "line 4: give exactly one of json and body"),
        ("models/m/tests/r.jsonl:5:1", "cases.replay", "line 5 is not a JSON object"),
        ("models/m/tests/r.jsonl:6:29", "cases.replay", "line 6 is not JSON: Expecting ',' delimiter"),
        ("models/m/tests/r.jsonl:7:1", "cases.replay", "line 7: body must be a string"),
        ("models/m/tests/r.jsonl:8:1", "cases.replay",
         "line 8: unknown key 'bdy' (allowed: content_type, accept, json, body)"),
    ]
    assert all(f.hint.startswith("each line: ") for f in findings)
    _, [bad] = parse_replay(b"\xff\xfe", "r.jsonl")
    assert bad.message.startswith("the file is not UTF-8 text") and bad.location.line is None


def test_load_replay_refuses_a_bad_file_naming_file_and_line(repo: Path) -> None:
    lines = (repo / "models/iris/tests/requests.jsonl").read_text().splitlines()
    lines[41] = '{"content_type": "application/json"}'
    write(repo / "models/iris/tests/requests.jsonl", "\n".join(lines) + "\n")
    ws = Workspace.discover(repo)
    with pytest.raises(InputError) as caught:
        load_replay(ws, load_model(ws, "iris"))
    assert str(caught.value).startswith("models/iris/tests/requests.jsonl:42:1: line 42: give exactly one of json and body")


def test_judgment_defaults_when_the_policy_says_nothing(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    (repo / "pipelines/policy.yaml").unlink()
    judgment = load_policy(Workspace.discover(repo)).judgment
    assert judgment == Judgment()
    assert (judgment.confidence, judgment.max_rounds, judgment.on_inconclusive) == (0.95, 3, "pass")
    assert (judgment.latency_quantile, judgment.latency_margin, judgment.error_margin) == (95.0, 0.10, 0.005)
    assert judgment.min_agreement_for("dev") == judgment.min_agreement_for("prod") == 0.99


def test_the_policy_template_sets_the_judgment_with_an_agreement_per_environment(repo: Path) -> None:
    judgment = load_policy(Workspace.discover(repo)).judgment
    assert judgment.min_agreement_for("dev") == 0.95
    assert judgment.min_agreement_for("staging") == judgment.min_agreement_for("prod") == 0.99
    assert judgment.latency_margin == 0.10 and judgment.error_margin == 0.005


def test_a_partial_judgment_section_keeps_the_other_defaults(repo: Path) -> None:
    text = (repo / "pipelines/policy.yaml").read_text()
    head = text[: text.index("judgment:")]
    write(repo / "pipelines/policy.yaml", head + "judgment:\n  latency: {margin: 0.2}\n  on_inconclusive: fail\n")
    judgment = load_policy(Workspace.discover(repo)).judgment
    assert judgment == Judgment(latency_margin=0.2, on_inconclusive="fail")


def test_a_captured_replay_file_anywhere_loads_or_names_its_bad_line(tmp_path: Path) -> None:
    good = write(tmp_path / "captured.jsonl", '{"body": "1,2,3,4", "content_type": "text/csv"}\n')
    assert load_replay_file(good) == (CaseRequest(content_type="text/csv", body=b"1,2,3,4"),)
    bad = write(tmp_path / "bad.jsonl", '{"body": "x"}\nnope\n{}\n')
    with pytest.raises(InputError) as caught:
        load_replay_file(bad)
    assert str(caught.value) == f"{bad}:2:1: line 2 is not JSON: Expecting value (and 1 more)"
    with pytest.raises(InputError, match="No such file"):
        load_replay_file(tmp_path / "absent.jsonl")


def test_sagemaker_data_capture_records_replay_as_the_requests_they_captured(tmp_path: Path) -> None:
    # Records as SageMaker Data Capture writes them to S3 (one JSON object a line): the input's data in
    # its encoding, the observed content types of the request and of the answer.
    def record(content_type: str, data: str, encoding: str, answer: str = "application/json") -> str:
        return json.dumps({"captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
            "endpointOutput": {"observedContentType": answer, "mode": "OUTPUT", "data": "{}", "encoding": "JSON"}},
            "eventMetadata": {"eventId": "b0a3c2e8", "inferenceTime": "2026-12-01T10:00:00Z"}, "eventVersion": "0"})

    body = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    captured = write(tmp_path / "capture.jsonl", "\n".join((
        record("application/json", body, "JSON"),
        record("text/csv", "5.1,3.5,1.4,0.2", "CSV", answer="text/csv; charset=utf-8"),
        record("application/json", base64.b64encode(body.encode()).decode(), "BASE64"))) + "\n")
    assert load_replay_file(captured) == (
        CaseRequest(content_type="application/json", body=body.encode()),
        CaseRequest(content_type="text/csv", accept="text/csv", body=b"5.1,3.5,1.4,0.2"),
        CaseRequest(content_type="application/json", body=body.encode()))
    broken = write(tmp_path / "broken.jsonl", record("text/csv", "1,2", "CSV") + "\n"
                   + record("text/csv", "1,2", "GZIP") + "\n")
    with pytest.raises(InputError) as caught:
        load_replay_file(broken)
    assert str(caught.value) == (f"{broken}:2:1: line 2: a Data Capture record, but "
                                 "captureData.endpointInput.encoding is 'GZIP', not CSV, JSON or BASE64")
