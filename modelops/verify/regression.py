"""Regression cases: send each case through the runtime API and compare the answer with its
expectations. Every failure names the case, the path, the expected and the actual value."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelops.config import jsonpath
from modelops.config.cases import Case, Check, thawed
from modelops.verify.invoke import Invocation

NOT_FOUND = "(not found)"
NOT_JSON = "the answer is not JSON: {text}"


@dataclass(frozen=True)
class Failure:
    """One unmet expectation: ``path`` is ``status``, ``latency_ms``, a JSONPath, or a JSON Schema
    error's path; ``expected``/``actual`` are short printable texts."""

    case: str
    path: str
    expected: str
    actual: str
    line: int | None = None

    @property
    def message(self) -> str:
        return f"{self.case}: {self.path}: expected {self.expected}, got {self.actual}"


@dataclass(frozen=True)
class CaseResult:
    case: str
    passed: bool
    status: int
    latency_ms: float
    failures: tuple[Failure, ...] = ()
    file: str | None = None
    line: int | None = None

    @property
    def message(self) -> str:
        """One line: ``ok (200, 3.1 ms)`` or the failures joined by ``; ``."""
        if self.passed:
            return f"ok ({self.status}, {self.latency_ms:.1f} ms)"
        return "; ".join(f.message for f in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "passed": self.passed, "message": self.message, "status": self.status,
                "latency_ms": round(self.latency_ms, 3),
                "failures": [{"path": f.path, "expected": f.expected, "actual": f.actual} for f in self.failures],
                "file": self.file, "line": self.line}


def show(value: Any, limit: int = 120) -> str:
    """A value as it reads in a message: JSON, cut at ``limit`` characters."""
    try:
        text = json.dumps(thawed(value), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _check_one(check: Check, found: bool, actual: Any) -> tuple[bool, str]:
    """``(passed, expected text)`` of one JSON path check against the value found."""
    expected = thawed(check.expected)
    if check.kind == "equals":
        text = f"equals {show(expected)}"
        return found and _same(actual, expected), text
    if check.kind == "approx":
        text = f"{show(expected)} ± {check.tolerance:g}"
        return found and _is_number(actual) and math.isclose(actual, expected, rel_tol=0.0,
                                                            abs_tol=check.tolerance or 0.0), text
    if check.kind == "range":
        lo, hi = expected
        text = f"within [{lo:g}, {hi:g}]"
        return found and _is_number(actual) and lo <= actual <= hi, text
    if check.kind == "regex":
        text = f"to match /{expected}/"
        subject = actual if isinstance(actual, str) else show(actual, 10_000)
        return found and re.search(expected, subject) is not None, text
    # contains: a key of an object, an item of an array, a substring of a string
    text = f"to contain {show(expected)}"
    if not found:
        return False, text
    if isinstance(actual, dict):
        return expected in actual, text
    if isinstance(actual, list):
        return expected in actual, text
    if isinstance(actual, str) and isinstance(expected, str):
        return expected in actual, text
    return False, text


def _schema_failures(case: Case, document: Any) -> list[Failure]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(thawed(case.expect.json_schema))
    failures = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))[:10]:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        failures.append(Failure(case.name, path, f"schema {error.validator}: {show(error.validator_value, 60)}",
                                show(error.instance, 80)))
    return failures


def _model_error_failures(case: Case, answer: Invocation, line: int | None) -> list[Failure]:
    """The container's own status and message against ``expect.model_error`` (a 424 case)."""
    wanted = case.expect.model_error
    assert wanted is not None
    failures = []
    if wanted.status is not None and answer.original_status != wanted.status:
        failures.append(Failure(case.name, "model_error.status", str(wanted.status),
                                answer.describe(), line))
    message = answer.body.decode("utf-8", "replace")
    if wanted.message is not None and re.search(wanted.message, message) is None:
        failures.append(Failure(case.name, "model_error.message", f"to match /{wanted.message}/", show(message), line))
    return failures


def evaluate(case: Case, answer: Invocation) -> CaseResult:
    """Compare one answer with the case's expectations."""
    expect = case.expect
    failures: list[Failure] = []
    line = case.position.line if case.position else None
    if answer.status != expect.status:
        failures.append(Failure(case.name, "status", str(expect.status), answer.describe(), line))
    elif expect.model_error is not None:
        failures.extend(_model_error_failures(case, answer, line))
    if expect.latency_ms is not None and answer.latency_ms > expect.latency_ms:
        failures.append(Failure(case.name, "latency_ms", f"<= {expect.latency_ms:g}", f"{answer.latency_ms:.1f}",
                                line))
    wants_json = expect.json_schema is not None or bool(expect.checks)
    # The JSON checks are about a successful answer; after a status mismatch they would only add noise.
    if wants_json and answer.status == expect.status:
        try:
            document = json.loads(answer.body)
        except ValueError:
            failures.append(Failure(case.name, "$", "a JSON body",
                                    NOT_JSON.format(text=show(answer.body.decode("utf-8", "replace"))), line))
        else:
            if expect.json_schema is not None:
                failures.extend(_schema_failures(case, document))
            for check in expect.checks:
                try:
                    found, actual = jsonpath.find(document, check.path)
                except ValueError as exc:
                    failures.append(Failure(case.name, check.path, "a valid JSONPath", str(exc),
                                            check.position.line if check.position else line))
                    continue
                passed, expected_text = _check_one(check, found, actual)
                if not passed:
                    failures.append(Failure(case.name, check.path, expected_text,
                                            show(actual) if found else NOT_FOUND,
                                            check.position.line if check.position else line))
    return CaseResult(case=case.name, passed=not failures, status=answer.status, latency_ms=answer.latency_ms,
                      failures=tuple(failures), file=case.position.file if case.position else None, line=line)


def run_cases(cases: tuple[Case, ...], send: Callable[[Case], Invocation],
              on_result: Callable[[CaseResult], None] | None = None) -> tuple[CaseResult, ...]:
    """Send every case (one at a time, in file order) and evaluate its answer."""
    results = []
    for case in cases:
        result = evaluate(case, send(case))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return tuple(results)
