"""Cases files and regression evaluation: the cases schema with positions, JSON path checks, and a
real boto3 sagemaker-runtime client against a server speaking the runtime API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.config import Workspace, jsonpath, load_cases, load_model, read_cases
from modelops.config.cases import Case, CaseRequest, Check, Expectation, ModelErrorExpectation
from modelops.errors import InputError
from modelops.runtime import SystemClock
from modelops.verify.invoke import Invocation, invoke
from modelops.verify.regression import evaluate
from tests.helpers import commit_all, run_cli, write
from tests.verify.fakeruntime import echo_model, fake_runtime


def answer(document: object, status: int = 200, latency: float = 3.0) -> Invocation:
    return Invocation(status=status, body=json.dumps(document).encode(), latency_ms=latency)


def test_iris_cases_load_with_positions(repo: Path) -> None:
    ws = Workspace.discover(repo)
    cases = load_cases(ws, load_model(ws, "iris"))
    assert cases.file == "models/iris/tests/cases.yaml"
    names = [c.name for c in cases]
    assert names[0] == "setosa-from-json" and "wrong-width-is-a-client-error" in names
    csv = next(c for c in cases if c.name == "csv-row")
    assert csv.request.content_type == "text/csv" and csv.request.body == b"5.9,3.0,4.2,1.5"
    # Cases expecting an error are not part of the load mix.
    assert "wrong-width-is-a-client-error" not in [c.name for c in cases.load_mix()]
    assert cases.cases[0].expect.checks[0].position is not None
    assert cases.cases[0].expect.checks[0].position.line == 23


def test_bad_cases_file_names_file_line(repo: Path) -> None:
    path = repo / "models/iris/tests/cases.yaml"
    text = path.read_text().replace("{path: \"$.predictions[0].label\", equals: setosa}",
                                    "{path: \"$.predictions[0].label\", equal: setosa}")
    write(path, text)
    commit_all(repo, "typo")
    ws = Workspace.discover(repo)
    with pytest.raises(InputError) as err:
        load_cases(ws, load_model(ws, "iris"))
    assert err.value.message.startswith("models/iris/tests/cases.yaml:23:")
    assert "equals | approx" in err.value.message


def test_duplicate_names_and_escaping_files_are_findings(repo: Path) -> None:
    write(repo / "models/iris/tests/cases.yaml", """apiVersion: modelops/v1
kind: Cases
cases:
  - name: a
    request: {json: [1]}
  - name: a
    request: {json: [2]}
  - name: b
    request: {file: ../../../etc/passwd}
  - name: c
    request: {file: tests/missing.json}
""")
    ws = Workspace.discover(repo)
    loaded = read_cases(ws, load_model(ws, "iris"))
    rules = sorted((f.rule, f.location.line) for f in loaded.findings)
    assert rules == [("cases.duplicate-name", 6), ("cases.missing-file", 11), ("security.path-escape", 9)]
    assert loaded.value is None


def test_a_regex_or_jsonpath_that_cannot_parse_is_found_by_validate_not_a_crash_of_test(repo: Path) -> None:
    # validate passed such a file clean, and `modelops test` then ended in "internal error: error: missing ),
    # unterminated subpattern at position 1" (exit 3) after deploying and reaching the endpoint.
    write(repo / "models/iris/tests/cases.yaml", """apiVersion: modelops/v1
kind: Cases
cases:
  - name: fine
    request: {json: [1]}
    expect: {json: [{path: "$.a", regex: "^ok$"}]}
  - name: broken
    request: {json: [1]}
    expect:
      json:
        - {path: "$.a", regex: "(("}
        - {path: "$$$[", equals: 1}
""")
    ws = Workspace.discover(repo)
    loaded = read_cases(ws, load_model(ws, "iris"))
    found = sorted((f.rule, f.location.line, f.location.path, f.message) for f in loaded.findings)
    assert found == [
        ("schema.invalid", 11, "$.cases[1].expect.json[0].regex",
         "regex '((' is not a regular expression: missing ), unterminated subpattern at position 1"),
        ("schema.invalid", 12, "$.cases[1].expect.json[1].path",
         "path: not a JSONPath (use $.key, $['key'], $[0], $[*]): $$$["),
    ]
    commit_all(repo, "broken checks")
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert result.exit_code == 1, result
    assert [f["line"] for f in result.json()["findings"]] == [11, 12], result
    tested = run_cli("test", "iris", "--env", "dev", "--output", "json", cwd=repo)
    assert tested.exit_code == 2, tested  # refused before reaching any cloud
    assert tested.json()["error"]["message"].startswith("models/iris/tests/cases.yaml:11:"), tested


def test_body_from_file(repo: Path) -> None:
    write(repo / "models/iris/tests/row.json", '{"instances": [[1, 2, 3, 4]]}')
    write(repo / "models/iris/tests/cases.yaml", """apiVersion: modelops/v1
kind: Cases
cases:
  - name: from-file
    request: {file: tests/row.json}
""")
    ws = Workspace.discover(repo)
    (case,) = load_cases(ws, load_model(ws, "iris")).cases
    assert case.request.body == b'{"instances": [[1, 2, 3, 4]]}'


@pytest.mark.parametrize(("path", "found", "value"), [
    ("$.a.b[0]", True, 1), ("$['a']['b'][-1]", True, 3), ('$["x y"]', True, "z"), ("$.a.b[*]", True, [1, 2, 3]),
    ("$.a.c", False, None), ("$.a.b[7]", False, None), ("$", True, {"a": {"b": [1, 2, 3]}, "x y": "z"}),
])
def test_jsonpath(path: str, found: bool, value: object) -> None:
    assert jsonpath.find({"a": {"b": [1, 2, 3]}, "x y": "z"}, path) == (found, value)


def test_jsonpath_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        jsonpath.parse("$.a[")


def case(*checks: Check, status: int = 200, latency: float | None = None, schema: dict | None = None) -> Case:
    return Case("c1", CaseRequest(body=b"{}"), Expectation(status=status, latency_ms=latency, json_schema=schema,
                                                             checks=checks))


def test_every_check_kind_passes_and_fails_with_path_expected_actual() -> None:
    doc = {"label": "setosa", "p": 0.93, "probs": {"setosa": 0.9}, "items": [1, 2], "flag": True}
    good = case(Check("$.label", "equals", "setosa"), Check("$.p", "approx", 0.9, 0.05),
                Check("$.p", "range", (0.9, 1.0)), Check("$.label", "regex", "^set"),
                Check("$.probs", "contains", "setosa"), Check("$.items", "contains", 2),
                Check("$.label", "contains", "tos"))
    assert evaluate(good, answer(doc)).passed
    bad = case(Check("$.label", "equals", "virginica"), Check("$.p", "approx", 0.5, 0.01),
               Check("$.p", "range", (0.0, 0.5)), Check("$.label", "regex", "^vir"),
               Check("$.probs", "contains", "virginica"), Check("$.missing", "equals", 1),
               Check("$.flag", "equals", 1))
    result = evaluate(bad, answer(doc))
    assert not result.passed
    got = [(f.path, f.expected, f.actual) for f in result.failures]
    assert got == [
        ("$.label", 'equals "virginica"', '"setosa"'),
        ("$.p", "0.5 ± 0.01", "0.93"),
        ("$.p", "within [0, 0.5]", "0.93"),
        ("$.label", "to match /^vir/", '"setosa"'),
        ("$.probs", 'to contain "virginica"', '{"setosa": 0.9}'),
        ("$.missing", "equals 1", "(not found)"),
        ("$.flag", "equals 1", "true"),
    ]
    assert result.message.startswith('c1: $.label: expected equals "virginica", got "setosa"')


def test_status_latency_and_schema() -> None:
    schema = {"type": "object", "required": ["predictions"]}
    result = evaluate(case(status=200, latency=10, schema=schema), answer({"x": 1}, latency=25.0))
    assert [(f.path, f.expected, f.actual) for f in result.failures] == [
        ("latency_ms", "<= 10", "25.0"), ("$", "schema required: [\"predictions\"]", '{"x": 1}')]
    error = Invocation(status=424, body=b"boom", latency_ms=1.0, error_code="ModelError", original_status=400)
    result = evaluate(case(Check("$.a", "equals", 1)), error)
    assert [(f.path, f.expected) for f in result.failures] == [("status", "200")]
    assert result.failures[0].actual == "424 ModelError (container 400): boom"
    assert evaluate(case(status=424), error).passed


def test_a_424_case_pins_which_container_error_so_a_broken_model_does_not_pass_it() -> None:
    rejected = Invocation(status=424, body=b"ValueError: expected rows of 4 numbers, got shape (1, 2)", latency_ms=1.0,
                          error_code="ModelError", original_status=500)
    broken = Invocation(status=424, body=b"RuntimeError: model exploded", latency_ms=1.0, error_code="ModelError",
                        original_status=500)
    by_message = Case("wrong-width", CaseRequest(body=b"{}"), Expectation(
        status=424, model_error=ModelErrorExpectation(message="expected rows of 4 numbers")))
    assert evaluate(by_message, rejected).passed
    failed = evaluate(by_message, broken)
    assert [(f.path, f.expected, f.actual) for f in failed.failures] == [
        ("model_error.message", "to match /expected rows of 4 numbers/", '"RuntimeError: model exploded"')]
    by_status = Case("rejects", CaseRequest(body=b"{}"), Expectation(status=424, model_error=ModelErrorExpectation(400)))
    [failure] = evaluate(by_status, broken).failures
    assert (failure.path, failure.expected, failure.actual) == (
        "model_error.status", "400", "424 ModelError (container 500): RuntimeError: model exploded")


def test_not_json_answer() -> None:
    result = evaluate(case(Check("$.a", "equals", 1)), Invocation(200, b"<html>", 1.0))
    assert result.failures[0].path == "$" and "not JSON" in result.failures[0].actual


def test_invoke_through_boto3_runtime_client() -> None:
    import boto3

    with fake_runtime(echo_model()) as server:
        client = boto3.session.Session().client("sagemaker-runtime", region_name="eu-west-1", endpoint_url=server.url,
                                                aws_access_key_id="k", aws_secret_access_key="s")
        ok = invoke(client, "ep-1", CaseRequest(body=b'{"a": 1}'), SystemClock(), resource="dev:eu-west-1:ep-1")
        assert ok.status == 200 and json.loads(ok.body) == {"echo": {"a": 1}, "endpoint": "ep-1"}
        failed = invoke(client, "ep-1", CaseRequest(content_type="text/csv", body=b"1,2"), SystemClock(),
                        resource="dev:eu-west-1:ep-1")
        assert failed.status == 424 and failed.error_code == "ModelError"
        assert server.signed == server.requests == 2  # SigV4 by botocore


def test_invoke_raises_service_errors_other_than_the_containers_when_asked() -> None:
    import boto3

    def handler(endpoint: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        if endpoint == "missing":
            return 400, json.dumps({"__type": "ValidationError", "message": f"Endpoint {endpoint} not found."}).encode()
        return echo_model()(endpoint, body, content_type)

    with fake_runtime(handler) as server:
        client = boto3.session.Session().client("sagemaker-runtime", region_name="eu-west-1", endpoint_url=server.url,
                                                aws_access_key_id="k", aws_secret_access_key="s")
        counted = invoke(client, "missing", CaseRequest(body=b"{}"), SystemClock(), resource="dev:eu-west-1:missing")
        assert counted.status == 400 and counted.error_code == "ValidationError"
        with pytest.raises(InputError, match="dev:eu-west-1:missing: ValidationError: Endpoint missing not found"):
            invoke(client, "missing", CaseRequest(body=b"{}"), SystemClock(), resource="dev:eu-west-1:missing",
                   raise_service_errors=True)
        model_error = invoke(client, "ep-1", CaseRequest(content_type="text/csv", body=b"1,2"), SystemClock(),
                             resource="dev:eu-west-1:ep-1", raise_service_errors=True)
        assert model_error.status == 424 and model_error.original_status == 400 and model_error.body == b"not JSON"
