"""validate refuses answer rules and replay files a judgment could not use, at file:line, and
policy.yaml's judgment section like every other section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import PROJECT_ROOT, run_cli, write

MODEL = Path("models/iris/model.yaml")
RULES = """      - {path: "$.predictions[*].label", equals: true}
      - {path: "$.predictions[*].probabilities.*", tolerance: 0.02}
"""


def _validate(repo: Path, *paths: str) -> tuple[int, list[dict[str, Any]]]:
    result = run_cli("validate", *paths, "--output", "json", cwd=repo)
    return result.exit_code, result.json()["findings"]


def _rules(repo: Path, rules: str) -> int:
    """Replace iris's answer rules (as the examples have them); the line of the first new rule."""
    text = (PROJECT_ROOT / MODEL).read_text()
    assert RULES in text
    write(repo / MODEL, text.replace(RULES, rules))
    return text[: text.index(RULES)].count("\n") + 1


def _line_of(repo: Path, file: Path, needle: str) -> int:
    return next(i for i, t in enumerate((repo / file).read_text().splitlines(), 1) if needle in t)


def test_the_examples_validate_clean(repo: Path) -> None:
    code, findings = _validate(repo)
    assert code == 0 and [f for f in findings if f["severity"] == "error"] == []


def test_a_rule_with_no_kind_or_two_kinds_is_refused_at_its_line(repo: Path) -> None:
    line = _rules(repo, '      - {path: "$.predictions[*].label"}\n'
                        '      - {path: "$.predictions[*].label", equals: true, tolerance: 0.1}\n')
    code, findings = _validate(repo, "models/iris")
    assert code == 1
    got = [(f["rule"], f["line"], f["message"]) for f in findings]
    one_of = "set exactly one of: equals | tolerance | cosine | top_k | similarity"
    assert got == [("schema.invalid", line, f"spec.answers.rules[0]: {one_of}"),
                   ("schema.invalid", line + 1, f"spec.answers.rules[1]: {one_of}")], got


def test_unknown_keys_and_options_of_another_kind_are_refused(repo: Path) -> None:
    line = _rules(repo, '      - {path: "$.a", cosine: 0.9, overlap: 0.5}\n'
                        '      - {path: "$.b", tolerence: 0.1}\n')
    _, findings = _validate(repo, "models/iris")
    got = {(f["rule"], f["line"], f["message"]) for f in findings}
    assert ("schema.invalid", line, "spec.answers.rules[0]: overlap needs top_k beside it") in got, got
    assert ("schema.unknown-key", line + 1,
            "spec.answers.rules[1]: unknown key 'tolerence' (did you mean 'tolerance'?)") in got, got
    text = (repo / MODEL).read_text()
    write(repo / MODEL, text.replace("expect_change: false", "expect_changes: false"))
    _, findings = _validate(repo, "models/iris")
    assert any(f["message"] == "spec.answers: unknown key 'expect_changes' (did you mean 'expect_change'?)"
               for f in findings), findings


def test_a_jsonpath_that_does_not_parse_is_reported_at_its_line(repo: Path) -> None:
    line = _rules(repo, '      - {path: "$.predictions[*].label", equals: true}\n'
                        '      - {path: "$.predictions[*.label", equals: true}\n')
    code, findings = _validate(repo, "models/iris")
    assert code == 1
    assert [(f["rule"], f["line"], f["path"], f["message"]) for f in findings] == [
        ("schema.invalid", line + 1, "$.spec.answers.rules[1].path",
         "path: not a JSONPath (use $.key, $['key'], $[0], $[*]): $.predictions[*.label")]
    _rules(repo, '      - {path: "predictions", equals: true}\n')
    _, findings = _validate(repo, "models/iris")
    assert [(f["rule"], f["line"], f["message"]) for f in findings] == [
        ("schema.invalid", line, "spec.answers.rules[0].path: 'predictions' does not match ^\\$")]


def test_a_replay_file_that_is_missing_or_leaves_the_model_folder_is_refused(repo: Path) -> None:
    text = (repo / MODEL).read_text()
    write(repo / MODEL, text.replace("replay: tests/requests.jsonl", "replay: tests/nope.jsonl"))
    line = _line_of(repo, MODEL, "replay:")
    _, findings = _validate(repo, "models/iris")
    assert [(f["rule"], f["line"], f["message"]) for f in findings] == [
        ("config.missing-path", line, "replay file 'tests/nope.jsonl' does not exist in models/iris")]
    write(repo / MODEL, text.replace("replay: tests/requests.jsonl", "replay: ../minilm-embeddings/tests/requests.jsonl"))
    _, findings = _validate(repo, "models/iris")
    assert [(f["rule"], f["line"]) for f in findings] == [("security.path-escape", line)], findings


def test_a_bad_line_of_the_replay_file_is_reported_at_its_line(repo: Path) -> None:
    replay = repo / "models/iris/tests/requests.jsonl"
    lines = replay.read_text().splitlines()
    lines[9] = '{"content_type": "text/csv", "body": 5.1}'
    lines[99] = '{"json": {"instances": [[1, 2, 3, 4]]}'
    write(replay, "\n".join(lines) + "\n")
    code, findings = _validate(repo, "models/iris")
    assert code == 1
    assert [(f["file"], f["rule"], f["line"], f["message"]) for f in findings] == [
        ("models/iris/tests/requests.jsonl", "cases.replay", 10, "line 10: body must be a string"),
        ("models/iris/tests/requests.jsonl", "cases.replay", 100,
         "line 100 is not JSON: Expecting ',' delimiter"),
    ], findings


def test_the_judgment_section_of_the_policy_is_checked_like_the_others(repo: Path) -> None:
    policy = Path("pipelines/policy.yaml")
    text = (repo / policy).read_text()
    write(repo / policy, text.replace("on_inconclusive: pass", "on_inconclusive: retry")
          .replace("errors: {margin: 0.005}", "errors: {margin: 0.005, rate: 1}")
          .replace("environments: {dev: 0.95}", "environments: {dev: 0.95, qa: 0.9}"))
    result = run_cli("validate", "--output", "json", cwd=repo)
    got = {(f["rule"], f["line"], f["message"]) for f in result.json()["findings"] if f["file"] == str(policy)}
    assert ("schema.invalid", _line_of(repo, policy, "on_inconclusive"),
            "judgment.on_inconclusive: 'retry' is not one of fail, pass") in got, got
    assert ("schema.unknown-key", _line_of(repo, policy, "errors:"), "judgment.errors: unknown key 'rate'") in got, got
    # An unknown environment passes the schema; the policy file's own check names it (a warning).
    write(repo / policy, text.replace("environments: {dev: 0.95}", "environments: {dev: 0.95, qa: 0.9}"))
    result = run_cli("validate", "--output", "json", cwd=repo)
    got = {(f["rule"], f["severity"], f["line"], f["message"]) for f in result.json()["findings"]}
    assert ("policy.unknown-environment", "warning", _line_of(repo, policy, "agreement:"),
            "policy.yaml names environment 'qa', which pipelines/environments.yaml does not define") in got, got
