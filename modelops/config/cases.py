"""Regression cases of a model (``models/<name>/tests/cases.yaml``, kind Cases): typed, immutable,
with the source position of every case and check.

A case is a request sent through the SageMaker runtime API and what its answer must be (status,
latency ceiling, a JSON Schema, JSON path checks). ``modelops test`` runs them one by one and takes
the load test's payload mix from them. The file format is documented in the header of
``models/iris/tests/cases.yaml`` and in ``schemas/cases.schema.json``.

- :func:`read_cases` ``(workspace, model) -> Loaded[Cases]``: lenient (validate);
- :func:`load_cases` ``(workspace, model, ref=None) -> Cases``: strict, ``InputError`` naming
  file:line:col (test).

A model's **replay** file (``spec.tests.replay``) is a JSON-lines file of requests that judgments
send to both releases, one per line: ``{"content_type": "application/json", "json": {...}}`` or
``{"content_type": "text/csv", "body": "..."}`` (``accept`` optional; blank lines skipped):

- :func:`parse_replay` ``(data, file) -> (requests, findings)``: pure;
- :func:`read_replay` ``(workspace, model) -> Loaded[tuple[CaseRequest, ...]]``: lenient (validate);
- :func:`load_replay` ``(workspace, model, ref=None) -> tuple[CaseRequest, ...]``: strict;
- :func:`load_replay_file` ``(path) -> tuple[CaseRequest, ...]``: strict, any file (a captured one).
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelops.config import jsonpath
from modelops.config.findings import Finding, Location, Severity
from modelops.config.loading import Loaded, _at, _build, _strict, read_document
from modelops.config.model import ModelConfig
from modelops.config.workspace import ReadError, Workspace
from modelops.config.yamlsource import Position, SourceMap
from modelops.errors import InputError

DEFAULT_CASES_FILE = "tests/cases.yaml"
DEFAULT_CONTENT_TYPE = "application/json"
DUPLICATE_CASE = "case name '{name}' is used more than once (first at line {line})"
BODY_FILE_ESCAPES = "request.file: {reason}"
BODY_FILE_UNREADABLE = "request.file '{file}': {message}"
CHECK_KINDS = ("equals", "approx", "range", "regex", "contains")
BAD_REGEX = "regex {regex!r} is not a regular expression: {reason}"
# Why `modelops test` (and so deploy's tests between environments) cannot run a model's cases.
NO_CASES = "{file}: no regression cases"
NO_CASES_HINT = "add tests/cases.yaml to the model (`modelops schema cases` prints its format)"
NO_PAYLOADS = "{file}: no case expecting success (weight above 0) to send as load test or synthetic traffic"
NO_PAYLOADS_HINT = "add a regression case that expects status 200 (weight > 0)"
MODEL_ERROR = 424  # SageMaker's ModelError: the container answered 4xx/5xx (or did not answer)
ANY_MODEL_ERROR = ("case {name} expects status 424 (any container error): a model that fails on every request "
                   "passes it")
REPLAY_MAX_BYTES = 64 * 1024 * 1024
REPLAY_NOT_JSON = "line {line} is not JSON: {reason}"
REPLAY_NOT_OBJECT = "line {line} is not a JSON object"
REPLAY_UNKNOWN_KEY = "line {line}: unknown key '{key}' (allowed: content_type, accept, json, body)"
REPLAY_ONE_BODY = "line {line}: give exactly one of json and body"
REPLAY_NOT_TEXT = "line {line}: {key} must be a string"
REPLAY_NOT_UTF8 = "the file is not UTF-8 text"
REPLAY_CAPTURE = "line {line}: a Data Capture record, but {problem}"
REPLAY_HINT = ('each line: {"content_type": "application/json", "json": {...}} or '
               '{"content_type": "text/csv", "body": "..."}, or a SageMaker Data Capture record')
_REPLAY_KEYS = frozenset({"content_type", "accept", "json", "body"})
ANY_MODEL_ERROR_HINT = ("pin the error with expect.model_error: {status: <the container's own status>, "
                        "message: <a regex of its message>}")


@dataclass(frozen=True)
class Check:
    """One JSON path expectation: ``kind`` is one of :data:`CHECK_KINDS`; ``expected`` its value
    (``range``: a ``(lo, hi)`` tuple); ``tolerance`` only for ``approx``."""

    path: str
    kind: str
    expected: Any
    tolerance: float | None = None
    position: Position | None = None


@dataclass(frozen=True)
class CaseRequest:
    content_type: str = DEFAULT_CONTENT_TYPE
    accept: str = DEFAULT_CONTENT_TYPE
    body: bytes = b""
    custom_attributes: str | None = None


@dataclass(frozen=True)
class ModelErrorExpectation:
    """Which container error a ``status: 424`` case expects: its own status, a regex of its message."""

    status: int | None = None
    message: str | None = None


@dataclass(frozen=True)
class Expectation:
    status: int = 200
    latency_ms: float | None = None
    json_schema: Mapping[str, Any] | None = None
    checks: tuple[Check, ...] = ()
    model_error: ModelErrorExpectation | None = None


@dataclass(frozen=True)
class Case:
    """A request and what its answer must be. ``weight``: its share of the load test's payload mix."""

    name: str
    request: CaseRequest
    expect: Expectation
    weight: float = 1.0
    position: Position | None = None

    @property
    def expects_success(self) -> bool:
        return 200 <= self.expect.status < 300


@dataclass(frozen=True)
class Cases:
    """The cases of one model, in file order; ``file`` is repo-relative (None: the model has none)."""

    file: str | None
    cases: tuple[Case, ...] = ()

    def __iter__(self) -> Any:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def load_mix(self) -> tuple[Case, ...]:
        """The cases the load test sends: those expecting success with a weight above 0."""
        return tuple(c for c in self.cases if c.expects_success and c.weight > 0)

    def cannot_run(self, where: str, *, regression: bool, load: bool) -> tuple[str, str] | None:
        """:func:`cannot_run` for these cases (``where`` names the model when it has no cases file)."""
        return cannot_run(self.file or where, cases=len(self.cases), load_mix=len(self.load_mix()),
                          regression=regression, load=load)


def cannot_run(file: str, *, cases: int, load_mix: int, regression: bool, load: bool) -> tuple[str, str] | None:
    """(message, hint) when a model's ``cases`` cannot run its regression tests (``regression``), or
    its ``load_mix`` (cases expecting success, weight above 0) cannot feed a load test or synthetic
    traffic (``load``); None when they can. ``modelops test`` refuses with it, and validate reports it
    first."""
    if regression and not cases:
        return NO_CASES.format(file=file), NO_CASES_HINT
    if load and not load_mix:
        return NO_PAYLOADS.format(file=file), NO_PAYLOADS_HINT
    return None


def cases_file(model: ModelConfig) -> str:
    """Repo-relative path of the model's cases file (``spec.tests.cases``, default tests/cases.yaml)."""
    return posixpath.normpath(posixpath.join(model.folder, model.tests.cases or DEFAULT_CASES_FILE))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


def thawed(value: Any) -> Any:
    """A frozen config value (mapping proxies, tuples) as plain JSON-able dicts and lists."""
    return _thaw(value)


def _request(raw: Mapping[str, Any], body: bytes) -> CaseRequest:
    return CaseRequest(
        content_type=raw.get("content_type", DEFAULT_CONTENT_TYPE),
        accept=raw.get("accept", DEFAULT_CONTENT_TYPE),
        body=body,
        custom_attributes=raw.get("custom_attributes"),
    )


def _check(raw: Mapping[str, Any], position: Position) -> Check:
    kind = next(k for k in CHECK_KINDS if k in raw)
    expected = raw[kind]
    if kind == "range":
        expected = (float(expected[0]), float(expected[1]))
    return Check(path=raw["path"], kind=kind, expected=_freeze(expected),
                 tolerance=float(raw.get("tolerance", 1e-6)) if kind == "approx" else None, position=position)


def _bad_check(check: Check, file: str, path: str, model: str) -> Finding | None:
    """A finding when ``check`` cannot be evaluated: its JSONPath or its regex does not parse."""
    line, column = (check.position.line, check.position.column) if check.position else (None, None)
    try:
        jsonpath.parse(check.path)
    except ValueError as exc:
        return Finding("schema.invalid", Severity.error, Location(file, line, column, f"{path}.path"),
                       f"path: {exc}", "", model)
    if check.kind == "regex":
        try:
            re.compile(check.expected)
        except (re.error, TypeError) as exc:
            return Finding("schema.invalid", Severity.error, Location(file, line, column, f"{path}.regex"),
                           BAD_REGEX.format(regex=check.expected, reason=exc), "use Python's re syntax", model)
    return None


def _model_error(exp: Mapping[str, Any], i: int, file: str, source: SourceMap, name: str,
                 model: str) -> tuple[ModelErrorExpectation | None, Finding | None]:
    """``expect.model_error``, or a finding when its message is not a regular expression."""
    raw = exp.get("model_error")
    if raw is None:
        return None, None
    message = raw.get("message")
    if message is not None:
        try:
            re.compile(message)
        except re.error as exc:
            pos = source.position(("cases", i, "expect", "model_error", "message"))
            return None, Finding("schema.invalid", Severity.error,
                                 Location(file, pos.line, pos.column, f"$.cases[{i}].expect.model_error.message"),
                                 BAD_REGEX.format(regex=message, reason=exc), "use Python's re syntax", model)
    return ModelErrorExpectation(status=raw.get("status"), message=message), None


def _body(workspace: Workspace, model: ModelConfig, raw: Mapping[str, Any]) -> bytes:
    if "json" in raw:
        return json.dumps(raw["json"], separators=(",", ":"), ensure_ascii=False).encode()
    if "body" in raw:
        return str(raw["body"]).encode()
    return workspace.read_bytes(posixpath.normpath(posixpath.join(model.folder, raw["file"])))


def cases_from_document(document: Mapping[str, Any], *, workspace: Workspace, model: ModelConfig, file: str,
                        source: SourceMap) -> tuple[Cases, list[Finding]]:
    """Build :class:`Cases` from a document that passed the cases schema, with the problems the
    schema cannot see (duplicate names, request files that are missing or leave the model folder)."""
    findings: list[Finding] = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(document["cases"]):
        where = source.position(("cases", i))
        name = raw["name"]
        if name in seen:
            pos = source.position(("cases", i, "name"))
            findings.append(Finding("cases.duplicate-name", Severity.error,
                                    Location(file, pos.line, pos.column, f"$.cases[{i}].name"),
                                    DUPLICATE_CASE.format(name=name, line=seen[name]), "give each case its own name",
                                    model.name))
            continue
        seen[name] = where.line
        req = raw["request"]
        body = b""
        if "file" in req:
            pos = source.position(("cases", i, "request", "file"))
            loc = Location(file, pos.line, pos.column, f"$.cases[{i}].request.file")
            reason = workspace.escape_reason(model.folder, req["file"])
            if reason:
                findings.append(Finding("security.path-escape", Severity.error, loc,
                                        BODY_FILE_ESCAPES.format(reason=reason),
                                        "request files live in the model folder", model.name))
                continue
            try:
                body = _body(workspace, model, req)
            except ReadError as exc:
                findings.append(Finding("cases.missing-file", Severity.error, loc,
                                        BODY_FILE_UNREADABLE.format(file=req["file"], message=exc.message),
                                        exc.hint or "", model.name))
                continue
        else:
            body = _body(workspace, model, req)
        exp = raw.get("expect") or {}
        checks = tuple(_check(c, source.position(("cases", i, "expect", "json", j)))
                       for j, c in enumerate(exp.get("json") or ()))
        bad = [f for j, c in enumerate(checks) if (f := _bad_check(c, file, f"$.cases[{i}].expect.json[{j}]",
                                                                   model.name)) is not None]
        model_error, problem = _model_error(exp, i, file, source, name, model.name)
        if problem is not None:
            bad.append(problem)
        if bad:  # `modelops test` could not run the case: the pull-request check says so instead
            findings.extend(bad)
            continue
        if int(exp.get("status", 200)) == MODEL_ERROR and model_error is None:
            pos = source.position(("cases", i, "expect", "status"))
            findings.append(Finding("cases.any-model-error", Severity.warning,
                                    Location(file, pos.line, pos.column, f"$.cases[{i}].expect.status"),
                                    ANY_MODEL_ERROR.format(name=name), ANY_MODEL_ERROR_HINT, model.name))
        cases.append(Case(
            name=name,
            request=_request(req, body),
            expect=Expectation(
                status=int(exp.get("status", 200)),
                latency_ms=float(exp["latency_ms"]) if "latency_ms" in exp else None,
                json_schema=_freeze(exp["json_schema"]) if "json_schema" in exp else None,
                checks=checks,
                model_error=model_error,
            ),
            weight=float(raw.get("weight", 1.0)),
            position=where,
        ))
    return Cases(file, tuple(cases)), findings


def read_cases(workspace: Workspace, model: ModelConfig) -> Loaded[Cases]:
    """Read the model's cases file leniently. A model that names no cases file and has no
    ``tests/cases.yaml`` gets empty cases; a named file that is missing is a finding."""
    file = cases_file(model)
    if model.tests.cases is None and not workspace.exists(file):
        return Loaded(file, Cases(None))
    data, source, findings = read_document(workspace, file, "cases", model.name)
    extra: list[Finding] = []

    def build() -> Cases:
        cases, more = cases_from_document(data, workspace=workspace, model=model, file=file,
                                          source=source)  # type: ignore[arg-type]
        extra.extend(more)
        return cases

    loaded = _build(file, data, source, findings, build)
    if extra:
        # A warning (a bare 424 case) leaves the cases usable; `modelops test` runs them.
        usable = not any(f.severity is Severity.error for f in extra)
        return Loaded(file, loaded.value if usable else None, (*loaded.findings, *extra), loaded.document,
                      loaded.source)
    return loaded


def load_cases(workspace: Workspace, model: ModelConfig, ref: str | None = None) -> Cases:
    """The model's regression cases at ``ref``; ``InputError`` naming file:line:col when invalid."""
    return _strict(read_cases(_at(workspace, ref), model))


# -- replay files ---------------------------------------------------------------------------------


def replay_file(model: ModelConfig) -> str | None:
    """Repo-relative path of the model's replay file (None: ``spec.tests.replay`` is not set)."""
    if model.tests.replay is None:
        return None
    return posixpath.normpath(posixpath.join(model.folder, model.tests.replay))


def parse_replay(data: bytes, file: str, *, model: str | None = None) -> tuple[tuple[CaseRequest, ...], list[Finding]]:
    """The requests of a replay file's bytes, in file order, and a finding (``cases.replay``,
    file:line) for each line that is not a request."""
    findings: list[Finding] = []

    def bad(line: int, message: str, column: int | None = 1) -> None:
        findings.append(Finding("cases.replay", Severity.error, Location(file, line, column, "$"), message,
                                REPLAY_HINT, model))

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.append(Finding("cases.replay", Severity.error, Location(file, None, None, "$"),
                                f"{REPLAY_NOT_UTF8} ({exc.reason} at byte {exc.start})", REPLAY_HINT, model))
        return (), findings
    requests: list[CaseRequest] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError) as exc:
            column = getattr(exc, "colno", 1)
            bad(number, REPLAY_NOT_JSON.format(line=number, reason=getattr(exc, "msg", str(exc))), column)
            continue
        if not isinstance(raw, dict):
            bad(number, REPLAY_NOT_OBJECT.format(line=number))
            continue
        if "captureData" in raw:
            captured = _captured_request(raw["captureData"])
            if isinstance(captured, str):
                bad(number, REPLAY_CAPTURE.format(line=number, problem=captured))
            else:
                requests.append(captured)
            continue
        unknown = sorted(set(raw) - _REPLAY_KEYS)
        if unknown:
            bad(number, REPLAY_UNKNOWN_KEY.format(line=number, key=unknown[0]))
            continue
        if ("json" in raw) == ("body" in raw):
            bad(number, REPLAY_ONE_BODY.format(line=number))
            continue
        not_text = next((k for k in ("content_type", "accept", "body") if k in raw and not isinstance(raw[k], str)),
                        None)
        if not_text is not None:
            bad(number, REPLAY_NOT_TEXT.format(line=number, key=not_text))
            continue
        if "json" in raw:
            body = json.dumps(raw["json"], separators=(",", ":"), ensure_ascii=False).encode()
        else:
            body = raw["body"].encode()
        requests.append(_request(raw, body))
    return tuple(requests), findings


def _captured_request(capture: Any) -> CaseRequest | str:
    """The request of a SageMaker Data Capture record's ``captureData`` (``endpointInput``: the
    observed content type, the data and its encoding, CSV, JSON or BASE64; the answer's content type
    becomes the Accept), or what is wrong with it."""
    got = capture.get("endpointInput") if isinstance(capture, dict) else None
    if not isinstance(got, dict) or not isinstance(got.get("data"), str):
        return "captureData.endpointInput.data is missing (was the input captured? CaptureOptions Input)"
    encoding = got.get("encoding")
    if encoding not in ("CSV", "JSON", "BASE64"):
        return f"captureData.endpointInput.encoding is {encoding!r}, not CSV, JSON or BASE64"
    try:
        body = base64.b64decode(got["data"], validate=True) if encoding == "BASE64" else got["data"].encode()
    except ValueError:
        return "captureData.endpointInput.data is not base64 although its encoding says BASE64"
    content_type = got.get("observedContentType")
    answer = capture.get("endpointOutput")
    accept = answer.get("observedContentType") if isinstance(answer, dict) else None
    return CaseRequest(content_type=content_type if isinstance(content_type, str) and content_type else
                       DEFAULT_CONTENT_TYPE,
                       accept=accept.split(";")[0].strip() if isinstance(accept, str) and accept else DEFAULT_CONTENT_TYPE,
                       body=body)


def read_replay(workspace: Workspace, model: ModelConfig) -> Loaded[tuple[CaseRequest, ...]]:
    """Read the model's replay file leniently: no requests when the model names none; a file that
    is missing, leaves the model folder or has a bad line is a finding (validate's check_paths also
    reports the first two at model.yaml's ``spec.tests.replay``)."""
    file = replay_file(model)
    if file is None:
        return Loaded("", ())
    reason = workspace.escape_reason(model.folder, model.tests.replay or "")
    if reason:
        return Loaded(file, None, (Finding("security.path-escape", Severity.error, Location(file), reason,
                                           "replay files live in the model folder", model.name),))
    try:
        data = workspace.read_bytes(file, limit=REPLAY_MAX_BYTES)
    except ReadError as exc:
        return Loaded(file, None, (Finding(exc.rule, Severity.error, Location(file), exc.message, exc.hint or "",
                                           model.name),))
    requests, findings = parse_replay(data, file, model=model.name)
    return Loaded(file, None if findings else requests, tuple(findings))


def load_replay(workspace: Workspace, model: ModelConfig, ref: str | None = None) -> tuple[CaseRequest, ...]:
    """The model's replay requests at ``ref`` (empty when it names no replay file); ``InputError``
    naming file:line when the file is missing, leaves the model folder or has a bad line."""
    loaded = read_replay(_at(workspace, ref), model)
    if not loaded.file:
        return ()
    return _strict(loaded)


def load_replay_file(path: Path) -> tuple[CaseRequest, ...]:
    """The requests of a replay file anywhere (e.g. requests captured elsewhere); ``InputError``
    naming path:line when it cannot be read or a line is not a request."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(REPLAY_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}", hint="give the path of a JSON-lines file of requests") from exc
    if len(data) > REPLAY_MAX_BYTES:
        raise InputError(f"{path}: larger than {REPLAY_MAX_BYTES // (1024 * 1024)} MiB",
                         hint="replay a sample of the requests")
    requests, findings = parse_replay(data, str(path))
    if findings:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise InputError(f"{findings[0].location}: {findings[0].message}{more}", hint=findings[0].hint)
    return requests
