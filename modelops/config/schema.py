"""The JSON Schemas (draft 2020-12) of the config files, and schema errors as findings.

Schemas ship as package data in ``modelops/config/schemas/``; :func:`schema_text` gives the text
``modelops schema`` prints. Validators are compiled once per process. Valid documents take the fast
path (``is_valid``); only invalid ones pay for ``iter_errors`` and the messages built from them.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from modelops.config.findings import Finding, Location, Severity, json_path
from modelops.config.yamlsource import SourceMap

#: kind name -> schema file
SCHEMAS = {
    "model": "model.schema.json",
    "environments": "environments.schema.json",
    "policy": "policy.schema.json",
    "cases": "cases.schema.json",
    "access": "access.schema.json",
}

UNKNOWN_KEY = "unknown key '{key}'{suggestion}"
MISSING_KEY = "missing required key '{key}'"
ONE_OF = "set exactly one of: {choices}"
NEEDS = "{key} needs {other} beside it"
NOT_ONE_OF = "{value} is not one of {allowed}{suggestion}"
REDACTED = "the value"
QUOTE_HINT = "put the value in quotes: YAML reads 1.10, 0123 or yes as a number or a boolean"


_SUGGESTION = re.compile(r"did you mean '([^']+)'")
_MISSING = re.compile(r"missing required key '([^']+)'")


@functools.cache
def schema_text(kind: str) -> str:
    """The JSON text of the schema of ``kind`` (``model``, ``environments``, ``policy``, ``cases``,
    ``access``), as validate uses it (what ``modelops schema`` prints)."""
    return json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` as a dict (cached): the shipped file, with the values that are data
    elsewhere filled in (rollout strategies come from the rollout table)."""
    text = resources.files("modelops.config").joinpath("schemas", SCHEMAS[kind]).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    rollout = result.get("$defs", {}).get("rollout")
    if rollout is not None:
        from modelops.config.rollout import STRATEGIES

        rollout["properties"]["strategy"] = {
            "enum": list(STRATEGIES),
            "description": "How traffic moves to the new release: "
                           + "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values()) + ".",
        }
    return result


@functools.cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(kind))


@functools.cache
def _fast_validator(kind: str) -> Any:
    """jsonschema-rs's compiled validator (None when it is not installed): ~50x faster on valid
    documents, which are most of them. Python jsonschema explains the invalid ones."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a declared dependency; the slow path still works
        return None
    return jsonschema_rs.validator_for(schema(kind))


def is_valid(kind: str, document: Any) -> bool:
    fast = _fast_validator(kind)
    return bool(fast.is_valid(document) if fast is not None else _validator(kind).is_valid(document))


def schema_findings(kind: str, document: Any, source: SourceMap, *, model: str | None = None) -> list[Finding]:
    """Every schema error of ``document`` as a finding with file:line:col and JSON path (empty when
    valid). Unknown keys get their own rule and a "did you mean"."""
    if is_valid(kind, document):
        return []
    validator = _validator(kind)
    findings: list[Finding] = []
    for error in _leaf_errors(validator.iter_errors(document)):
        findings.extend(_to_findings(error, source, model))
    # A misspelt required key shows up twice: as unknown and as missing. Keep the "did you mean".
    suggested = {(f.location.path.rsplit(".", 1)[0], s) for f in findings if f.rule == "schema.unknown-key"
                 for s in _SUGGESTION.findall(f.message)}
    findings = [f for f in findings if not (f.rule == "schema.invalid" and any(
        (f.location.path, k) in suggested for k in _MISSING.findall(f.message)))]
    # One finding per (place, message): oneOf branches can repeat the same complaint.
    unique: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        unique.setdefault((f.rule, f.location.path, f.message), f)
    return sorted(unique.values(), key=Finding.sort_key)


Path = tuple[str | int, ...]
#: Rounds of repair :func:`usable_document` tries before it gives up on a document.
_REPAIR_ROUNDS = 8


def usable_document(kind: str, document: Any, *,
                    fill: dict[Path, Any] | None = None) -> tuple[dict[str, Any], frozenset[Path]] | None:
    """What can still be checked in a document that fails its schema: a copy with every invalid
    value taken out, and the JSON paths that are **broken** (a checker reading one of them, or
    anything under or above it, must not run; the rest may). None when even that fails (the root is
    not a mapping, or the repair does not converge).

    Invalid values are removed; a required key that is then (or was) missing gets a placeholder of
    its type (``fill`` gives placeholders by path, e.g. the folder's name for ``metadata.name``) and
    is broken; an unknown key is removed, and the key it most likely misspells is broken (a typo'd
    ``instance_cont: 2`` leaves the count at its default, which no check may take for the user's)."""
    import copy

    if not isinstance(document, dict):
        return None
    doc: dict[str, Any] = copy.deepcopy(document)
    broken: set[Path] = set()
    placeholders: set[Path] = set()
    validator = _validator(kind)
    for _ in range(_REPAIR_ROUNDS):
        # Placeholders need not be valid values (nothing reads them), only complete mappings.
        errors = [e for e in validator.iter_errors(doc) if e.validator == "required"
                  or not any(_under(tuple(e.absolute_path), p) for p in placeholders)]
        if not errors:
            return doc, frozenset(broken)
        # Deepest first, so that removing a value does not move what a later error points at.
        for error in sorted(errors, key=lambda e: len(e.absolute_path), reverse=True):
            path: Path = tuple(error.absolute_path)
            parent = _get(doc, path)
            if error.validator == "required" and isinstance(parent, dict):
                for key in error.validator_value:
                    if key not in parent:
                        at = (*path, key)
                        parent[key] = (fill or {}).get(at, _placeholder(kind, error.schema, key))
                        placeholders.add(at)
                        broken.add(at)
            elif error.validator == "additionalProperties" and isinstance(parent, dict):
                allowed = sorted(error.schema.get("properties", {}))
                for key in [k for k in parent if k not in allowed]:
                    del parent[key]
                    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                    if close:
                        broken.add((*path, close[0]))
            elif not path:
                return None  # the document as a whole is wrong
            else:
                holder = _get(doc, path[:-1])
                if isinstance(holder, dict):
                    holder.pop(path[-1], None)
                elif isinstance(holder, list) and isinstance(path[-1], int) and path[-1] < len(holder):
                    holder[path[-1]] = _placeholder(kind, {"properties": {"x": error.schema}}, "x")
                    placeholders.add(path)
                broken.add(path)
    return None


def _under(path: Path, prefix: Path) -> bool:
    return path[: len(prefix)] == prefix


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _placeholder(kind: str, schema_of_parent: Any, key: str) -> Any:
    """A value of the type the schema gives ``key`` (no check may read it: it is broken)."""
    sub = schema_of_parent.get("properties", {}).get(key, {}) if isinstance(schema_of_parent, dict) else {}
    if isinstance(sub, dict) and isinstance(sub.get("$ref"), str) and sub["$ref"].startswith("#/$defs/"):
        sub = schema(kind).get("$defs", {}).get(sub["$ref"][len("#/$defs/"):], {})
    if not isinstance(sub, dict):
        return ""
    if "const" in sub:
        return sub["const"]
    if sub.get("enum"):
        return sub["enum"][0]
    of = sub.get("type")
    of = of[0] if isinstance(of, list) else of
    return {"object": {}, "array": [], "integer": 1, "number": 1, "boolean": False}.get(str(of), "")


def _leaf_errors(errors: Iterator[Any]) -> Iterator[Any]:
    yield from errors


def _to_findings(error: Any, source: SourceMap, model: str | None) -> list[Finding]:
    path = tuple(error.absolute_path)
    where = json_path(path)
    kind = error.validator
    sensitive = _is_sensitive(path)

    def finding(message: str, at: tuple[str | int, ...] = path, *, key: bool = False, rule: str = "schema.invalid",
                hint: str = "") -> Finding:
        pos = source.position(at, key=key)
        return Finding(rule, Severity.error, Location(source.file, pos.line, pos.column, json_path(at)),
                       message, hint, model)

    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        out = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            hint = f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else ""
            out.append(finding(f"{_label(path)}: " + UNKNOWN_KEY.format(key=key, suggestion=suggestion),
                               (*path, key), key=True, rule="schema.unknown-key", hint=hint))
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
        return [finding(f"{_label(path)}: " + MISSING_KEY.format(key=k)) for k in missing]
    if kind == "dependentRequired" and isinstance(error.instance, dict):
        return [finding(f"{_label(path)}: " + NEEDS.format(key=key, other=other), (*path, key), key=True)
                for key, others in error.validator_value.items() if key in error.instance
                for other in others if other not in error.instance]
    if kind == "oneOf":
        branches = _one_of_choices(error.validator_value)
        if branches:
            return [finding(f"{_label(path)}: " + ONE_OF.format(choices=branches))]
    if kind == "enum":
        choices = [str(v) for v in error.validator_value]
        value = REDACTED if sensitive else _short(error.instance)
        close = difflib.get_close_matches(str(error.instance), choices, n=1, cutoff=0.6)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        return [finding(f"{where[2:] or 'document'}: " + NOT_ONE_OF.format(
            value=value, allowed=", ".join(choices), suggestion=suggestion))]
    if kind == "const":
        return [finding(f"{where[2:] or 'document'}: must be {error.validator_value!r}")]
    if kind == "propertyNames":
        return [finding(f"{_label(path)}: key {_short(error.instance)} is not allowed: {error.message}")]
    if kind == "pattern":
        value = REDACTED if sensitive else _short(error.instance)
        return [finding(f"{where[2:] or 'document'}: {value} does not match {error.validator_value}",
                        hint=_pattern_hint(error))]
    if kind == "type" and error.validator_value == "string" and isinstance(error.instance, int | float | bool):
        # YAML reads 1.10, 0123 and yes as numbers and booleans; the fix is quotes.
        shown = REDACTED if sensitive else _short(error.instance)
        return [finding(f"{where[2:] or 'document'}: {shown} is a {type(error.instance).__name__}, not a string",
                        hint=QUOTE_HINT)]
    message = error.message
    if sensitive or len(message) > 200:
        # Messages from jsonschema quote the value; for env values that could be a secret.
        message = f"{REDACTED} fails '{kind}' ({error.validator_value!r:.80})"
    return [finding(f"{where[2:] or 'document'}: {message}")]


def _label(path: tuple[str | int, ...]) -> str:
    return json_path(path)[2:] or "document"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_sensitive(path: tuple[str | int, ...]) -> bool:
    return "env" in path


def _pattern_hint(error: Any) -> str:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    return str(description) if description else ""


def _one_of_choices(branches: Any) -> str:
    """Describe ``oneOf`` branches that differ only in which keys they require."""
    if not isinstance(branches, list):
        return ""
    parts = []
    for branch in branches:
        if not isinstance(branch, dict) or "required" not in branch:
            return ""
        parts.append(" + ".join(branch["required"]))
    return " | ".join(parts)
