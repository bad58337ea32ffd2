"""validate checks each model's regression cases file, so the pull-request check catches what would
stop `modelops test` after the deploy; a warm re-run reads its cached findings, and an edit is seen."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli

CASES = Path("models/iris/tests/cases.yaml")


def _findings(repo: Path) -> list[dict]:
    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    return [f for f in result.json()["findings"] if f["file"] == str(CASES)]


def test_a_broken_cases_file_is_a_located_finding_cold_warm_and_after_the_fix(repo: Path) -> None:
    good = (repo / CASES).read_text()
    (repo / CASES).write_text(good.replace("status: 200", "statuss: 200", 1))
    line = next(i for i, text in enumerate((repo / CASES).read_text().splitlines(), 1) if "statuss" in text)

    for _ in ("cold", "warm"):
        [finding] = _findings(repo)
        assert finding["rule"] == "schema.unknown-key" and finding["line"] == line, finding
        assert "did you mean 'status'?" in finding["message"], finding

    (repo / CASES).write_text(good)
    assert _findings(repo) == []


def test_a_missing_body_file_is_found_on_every_run(repo: Path) -> None:
    text = (repo / CASES).read_text()
    (repo / CASES).write_text(text.replace("cases:\n", "cases:\n  - name: from-file\n    request: {file: tests/nope.json}\n"
                                           "    expect: {status: 200}\n", 1))
    for _ in ("cold", "warm"):
        rules = [f["rule"] for f in _findings(repo)]
        assert rules == ["cases.missing-file"], rules


def test_a_case_expecting_any_container_error_is_a_warning_naming_the_fix(repo: Path) -> None:
    text = (repo / CASES).read_text()
    pinned = "      model_error:  # ...this one, not any (a model failing every request would pass a bare 424)\n" \
             "        message: \"expected rows of 4 numbers\"\n"
    assert pinned in text
    (repo / CASES).write_text(text.replace(pinned, ""))
    line = next(i for i, t in enumerate((repo / CASES).read_text().splitlines(), 1) if "status: 424" in t)
    [finding] = _findings(repo)
    assert (finding["rule"], finding["severity"], finding["line"]) == ("cases.any-model-error", "warning", line)
    assert "a model that fails on every request passes it" in finding["message"], finding
    assert "expect.model_error" in finding["hint"], finding
    # A warning: `modelops test` still runs the cases (it said "cases.yaml: cannot be read").
    from modelops.config import Workspace, load_cases, load_model

    ws = Workspace.discover(repo)
    cases = load_cases(ws, load_model(ws, "iris"))
    assert any(c.expect.status == 424 for c in cases.cases)
