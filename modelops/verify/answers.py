"""Whether two releases answer one request alike: the answer half of a judgment.

Pure: bytes in, a :class:`Comparison` out; no I/O. The rules come from the model's
``spec.answers`` (:class:`~modelops.config.answers.AnswerRules`).

How answers are read:

- an answer is **JSON** when its content type says so (``application/json``, ``...+json``) or when
  both bodies parse as JSON; with a JSON content type, a body that does not parse is a disagreement;
  a body that parses on one side only is one too;
- JSON answers with no rules must be JSON-equal (numbers within 1e-9 relative; ``true`` is not
  ``1``); with rules, only the values the rules' paths match are compared, and each rule's path must
  match in both (a path without wildcards that matches nothing is a disagreement; a wildcard path
  must match the same places in both, which may be none);
- other answers must be byte-equal, unless a rule at ``$`` compares them as text (``similarity``)
  or ``equals`` (byte-equal); rules at other paths cannot apply to them: a disagreement.

Per kind (values matched by a path are paired by their concrete path, ``$.predictions[3].label``):

- ``equals``: JSON-equal;
- ``tolerance``: numbers differ by at most the tolerance (absolute); lists and mappings of numbers
  element-wise, of the same shape;
- ``cosine``: a vector (list of numbers) against a vector of the same length; a list of vectors
  pairwise; zero vectors agree only with zero vectors;
- ``top_k``: the first K items of two lists, as sets (order within them ignored); overlap is
  ``|common| / max(len(a), len(b))`` over those items (two empty lists overlap fully); an item is a
  string or number, or a mapping named by its ``label`` (else ``id``, ``name``, ``token``, else its
  whole JSON); a list of lists compares pairwise;
- ``similarity``: difflib's ``SequenceMatcher`` ratio of two strings (a list of strings pairwise);
  with ``length_ratio`` R the longer may be at most R times the shorter (an empty text against a
  non-empty one fails it).

``score`` is the worst similarity any scored rule saw (cosine, overlap, text ratio), also when the
answers agree; ``detail`` names the first difference, one line.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from modelops.config import jsonpath
from modelops.config.answers import AnswerRule, AnswerRules

#: Relative tolerance of numbers in JSON-equal comparisons (serialisation noise, not model drift).
JSON_REL_TOL = 1e-9
_SHORT = 40
_NAME_KEYS = ("label", "id", "name", "token")

NOT_JSON = "$: {side} answer is not JSON ({reason}): {body}"
NOT_JSON_ONE_SIDE = "$: the {json_side} answer is JSON, the {other} answer is not ({reason}): {body}"
NOT_JSON_RULE = "{path}: the answers are not JSON, a rule at {path} cannot apply to them"
BYTES_DIFFER = "$: answers differ: {reference} vs {candidate}"
MISSING = "{path}: missing in {where}"
COUNT = "{path}: {reference} values in the reference answer, {candidate} in the candidate answer"
VALUES = "{path}: {reference} vs {candidate}"
TYPES = "{path}: {what} vs {other}"
TOLERANCE = "{path}: {reference} vs {candidate} (differ by {diff:.4g} > {tolerance:g})"
NOT_NUMBER = "{path}: {value} is not a number"
NOT_VECTOR = "{path}: {value} is not a vector of numbers"
NOT_LIST = "{path}: {value} is not a list"
NOT_TEXT = "{path}: {value} is not text"
LENGTHS = "{path}: {what} of length {reference} vs {candidate}"
COSINE = "{path}: cosine {score:.4f} < {threshold:g}"
OVERLAP = "{path}: top-{k} overlap {score:.4f} < {threshold:g} ({reference} vs {candidate})"
SIMILARITY = "{path}: text similarity {score:.4f} < {threshold:g} ({reference} vs {candidate})"
LENGTH_RATIO = "{path}: text lengths {reference} vs {candidate} characters (x{ratio:.2f} > x{limit:g})"


@dataclass(frozen=True)
class Comparison:
    """The verdict on one pair of answers."""

    agree: bool  # the two answers agree within the model's tolerances
    detail: str = ""  # when they disagree: the first difference, one line
    score: float | None = None  # the worst similarity seen (cosine, overlap, text similarity), when a rule has one


class _Outcome:
    """What the rules found so far: the first difference and the worst score."""

    def __init__(self) -> None:
        self.detail: str | None = None
        self.score: float | None = None

    def differ(self, detail: str) -> None:
        if self.detail is None:
            self.detail = detail

    def scored(self, value: float) -> None:
        self.score = value if self.score is None else min(self.score, value)

    def result(self) -> Comparison:
        return Comparison(self.detail is None, self.detail or "", self.score)


def compare(reference: bytes, candidate: bytes, content_type: str, rules: AnswerRules) -> Comparison:
    """Whether ``candidate``'s answer agrees with ``reference``'s (both answers of one request,
    ``content_type`` the answers' type) under ``rules``."""
    json_type = "json" in content_type.lower()
    ref_doc, ref_error = _parse(reference)
    cand_doc, cand_error = _parse(candidate)
    if json_type or (ref_error is None and cand_error is None):
        if ref_error is not None or cand_error is not None:
            return Comparison(False, _not_json(reference, candidate, ref_error, cand_error, json_type))
        return _compare_json(ref_doc, cand_doc, rules)
    return _compare_text(reference, candidate, rules, ref_error, cand_error)


def _parse(body: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(body), None
    except (ValueError, RecursionError) as exc:
        return None, getattr(exc, "msg", None) or type(exc).__name__


def _not_json(reference: bytes, candidate: bytes, ref_error: str | None, cand_error: str | None,
              json_type: bool) -> str:
    if ref_error is not None and cand_error is not None:
        return NOT_JSON.format(side="the reference", reason=ref_error, body=_short_bytes(reference)) + \
            " (candidate's neither)"
    if ref_error is not None:
        return NOT_JSON_ONE_SIDE.format(json_side="candidate", other="reference", reason=ref_error,
                                        body=_short_bytes(reference))
    return NOT_JSON_ONE_SIDE.format(json_side="reference", other="candidate", reason=cand_error,
                                    body=_short_bytes(candidate))


# -- JSON answers ---------------------------------------------------------------------------------


def _compare_json(reference: Any, candidate: Any, rules: AnswerRules) -> Comparison:
    out = _Outcome()
    if not rules.rules:
        difference = _json_difference("$", reference, candidate)
        if difference is not None:
            out.differ(difference)
        return out.result()
    for rule in rules.rules:
        _apply(rule, reference, candidate, out)
    return out.result()


def _apply(rule: AnswerRule, reference: Any, candidate: Any, out: _Outcome) -> None:
    try:
        ref_matches = dict(jsonpath.matches(reference, rule.path))
        cand_matches = dict(jsonpath.matches(candidate, rule.path))
        wildcard = jsonpath.has_wildcard(rule.path)
    except ValueError as exc:  # validate reports it; a judgment must not crash on it
        out.differ(f"{rule.path}: {exc}")
        return
    if not wildcard and (not ref_matches or not cand_matches):
        where = ("both answers" if not ref_matches and not cand_matches
                 else "the reference answer" if not ref_matches else "the candidate answer")
        out.differ(MISSING.format(path=rule.path, where=where))
        return
    if len(ref_matches) != len(cand_matches):
        out.differ(COUNT.format(path=rule.path, reference=len(ref_matches), candidate=len(cand_matches)))
    else:
        for path in ref_matches:
            if path not in cand_matches:
                out.differ(MISSING.format(path=path, where="the candidate answer"))
                break
    for path, ref_value in ref_matches.items():
        if path in cand_matches:
            _compare_value(rule, path, ref_value, cand_matches[path], out)


def _compare_value(rule: AnswerRule, path: str, reference: Any, candidate: Any, out: _Outcome) -> None:
    if rule.kind == "equals":
        difference = _json_difference(path, reference, candidate)
        if difference is not None:
            out.differ(difference)
    elif rule.kind == "tolerance":
        assert rule.threshold is not None
        difference = _tolerance_difference(path, reference, candidate, rule.threshold)
        if difference is not None:
            out.differ(difference)
    elif rule.kind == "cosine":
        _cosine(rule, path, reference, candidate, out)
    elif rule.kind == "top_k":
        _top_k(rule, path, reference, candidate, out)
    elif rule.kind == "similarity":
        _similarity(rule, path, reference, candidate, out)
    else:  # pragma: no cover - the schema allows no other kind
        raise ValueError(f"unknown answer rule kind {rule.kind!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers_equal(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=JSON_REL_TOL, abs_tol=0.0)


def _json_difference(path: str, reference: Any, candidate: Any) -> str | None:
    """The first place where two JSON values differ (None: JSON-equal)."""
    if _is_number(reference) and _is_number(candidate):
        return None if _numbers_equal(float(reference), float(candidate)) else VALUES.format(
            path=path, reference=_short(reference), candidate=_short(candidate))
    if type(reference) is not type(candidate) and not (_is_number(reference) and _is_number(candidate)):
        if isinstance(reference, dict | list) or isinstance(candidate, dict | list):
            return TYPES.format(path=path, what=_kind(reference), other=_kind(candidate))
        return VALUES.format(path=path, reference=_short(reference), candidate=_short(candidate))
    if isinstance(reference, dict):
        for key, value in reference.items():
            at = _child(path, key)
            if key not in candidate:
                return MISSING.format(path=at, where="the candidate answer")
            difference = _json_difference(at, value, candidate[key])
            if difference is not None:
                return difference
        extra = next((k for k in candidate if k not in reference), None)
        return None if extra is None else MISSING.format(path=_child(path, extra), where="the reference answer")
    if isinstance(reference, list):
        if len(reference) != len(candidate):
            return LENGTHS.format(path=path, what="lists", reference=len(reference), candidate=len(candidate))
        for i, (a, b) in enumerate(zip(reference, candidate, strict=True)):
            difference = _json_difference(f"{path}[{i}]", a, b)
            if difference is not None:
                return difference
        return None
    return None if reference == candidate else VALUES.format(
        path=path, reference=_short(reference), candidate=_short(candidate))


def _tolerance_difference(path: str, reference: Any, candidate: Any, tolerance: float) -> str | None:
    """The first pair of numbers further apart than ``tolerance`` (None: all within it)."""
    if _is_number(reference) and _is_number(candidate):
        a, b = float(reference), float(candidate)
        if math.isnan(a) or math.isnan(b):
            return None if math.isnan(a) and math.isnan(b) else VALUES.format(
                path=path, reference=_short(reference), candidate=_short(candidate))
        diff = abs(a - b)
        if diff > tolerance and not math.isclose(diff, tolerance, rel_tol=JSON_REL_TOL):
            return TOLERANCE.format(path=path, reference=_short(reference), candidate=_short(candidate), diff=diff,
                                    tolerance=tolerance)
        return None
    if isinstance(reference, list) and isinstance(candidate, list):
        if len(reference) != len(candidate):
            return LENGTHS.format(path=path, what="lists", reference=len(reference), candidate=len(candidate))
        for i, (a, b) in enumerate(zip(reference, candidate, strict=True)):
            difference = _tolerance_difference(f"{path}[{i}]", a, b, tolerance)
            if difference is not None:
                return difference
        return None
    if isinstance(reference, dict) and isinstance(candidate, dict):
        for key, value in reference.items():
            if key not in candidate:
                return MISSING.format(path=_child(path, key), where="the candidate answer")
            difference = _tolerance_difference(_child(path, key), value, candidate[key], tolerance)
            if difference is not None:
                return difference
        extra = next((k for k in candidate if k not in reference), None)
        return None if extra is None else MISSING.format(path=_child(path, extra), where="the reference answer")
    for value in (reference, candidate):
        if not _is_number(value) and not isinstance(value, list | dict):
            return NOT_NUMBER.format(path=path, value=_short(value))
    return TYPES.format(path=path, what=_kind(reference), other=_kind(candidate))


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(v) for v in value)


def _cosine(rule: AnswerRule, path: str, reference: Any, candidate: Any, out: _Outcome) -> None:
    assert rule.threshold is not None
    if _is_vector(reference) and _is_vector(candidate) and (reference or candidate):
        if len(reference) != len(candidate):
            out.differ(LENGTHS.format(path=path, what="vectors", reference=len(reference), candidate=len(candidate)))
            return
        score = _cosine_of(reference, candidate)
        out.scored(score)
        if score < rule.threshold:
            out.differ(COSINE.format(path=path, score=score, threshold=rule.threshold))
        return
    if (isinstance(reference, list) and isinstance(candidate, list) and all(isinstance(v, list) for v in reference)
            and all(isinstance(v, list) for v in candidate)):
        if len(reference) != len(candidate):
            out.differ(LENGTHS.format(path=path, what="lists of vectors", reference=len(reference),
                                      candidate=len(candidate)))
        for i, (a, b) in enumerate(zip(reference, candidate, strict=False)):
            _cosine(rule, f"{path}[{i}]", a, b, out)
        return
    bad = reference if not _is_vector(reference) else candidate
    out.differ(NOT_VECTOR.format(path=path, value=_short(bad)))


def _cosine_of(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm_a = math.sqrt(sum(x * x for x in a))
    norm_b = math.sqrt(sum(y * y for y in b))
    if norm_a == 0.0 or norm_b == 0.0:
        return 1.0 if norm_a == norm_b else 0.0
    if not math.isfinite(dot / (norm_a * norm_b)):
        return 0.0
    return max(-1.0, min(1.0, dot / (norm_a * norm_b)))


def _item_name(item: Any) -> Any:
    """What names a top-k item: itself (a string or number), a mapping's label/id/name/token, or its JSON."""
    if isinstance(item, dict):
        for key in _NAME_KEYS:
            if key in item and isinstance(item[key], str | int | float) and not isinstance(item[key], bool):
                return item[key]
        return json.dumps(item, sort_keys=True)
    if isinstance(item, list):
        return json.dumps(item, sort_keys=True)
    return item


def _top_k(rule: AnswerRule, path: str, reference: Any, candidate: Any, out: _Outcome) -> None:
    assert rule.threshold is not None and rule.top_k is not None
    if not isinstance(reference, list) or not isinstance(candidate, list):
        out.differ(NOT_LIST.format(path=path, value=_short(reference if not isinstance(reference, list) else candidate)))
        return
    if reference and candidate and all(isinstance(v, list) for v in reference) and all(
            isinstance(v, list) for v in candidate):
        if len(reference) != len(candidate):
            out.differ(LENGTHS.format(path=path, what="lists", reference=len(reference), candidate=len(candidate)))
        for i, (a, b) in enumerate(zip(reference, candidate, strict=False)):
            _top_k(rule, f"{path}[{i}]", a, b, out)
        return
    ref_top = [_item_name(v) for v in reference[: rule.top_k]]
    cand_top = [_item_name(v) for v in candidate[: rule.top_k]]
    size = max(len(ref_top), len(cand_top))
    score = 1.0 if size == 0 else len(set(ref_top) & set(cand_top)) / size
    out.scored(score)
    if score < rule.threshold:
        out.differ(OVERLAP.format(path=path, k=rule.top_k, score=score, threshold=rule.threshold,
                                  reference=_short(ref_top), candidate=_short(cand_top)))


def _similarity(rule: AnswerRule, path: str, reference: Any, candidate: Any, out: _Outcome) -> None:
    assert rule.threshold is not None
    if isinstance(reference, list) and isinstance(candidate, list):
        if len(reference) != len(candidate):
            out.differ(LENGTHS.format(path=path, what="lists", reference=len(reference), candidate=len(candidate)))
        for i, (a, b) in enumerate(zip(reference, candidate, strict=False)):
            _similarity(rule, f"{path}[{i}]", a, b, out)
        return
    if not isinstance(reference, str) or not isinstance(candidate, str):
        out.differ(NOT_TEXT.format(path=path, value=_short(reference if not isinstance(reference, str) else candidate)))
        return
    _text_similarity(rule, path, reference, candidate, out)


def _text_similarity(rule: AnswerRule, path: str, reference: str, candidate: str, out: _Outcome) -> None:
    assert rule.threshold is not None
    score = 1.0 if reference == candidate else difflib.SequenceMatcher(None, reference, candidate).ratio()
    out.scored(score)
    if score < rule.threshold:
        out.differ(SIMILARITY.format(path=path, score=score, threshold=rule.threshold,
                                     reference=_short(reference), candidate=_short(candidate)))
    if rule.length_ratio is not None:
        short, long = sorted((len(reference), len(candidate)))
        ratio = math.inf if short == 0 and long > 0 else (1.0 if long == 0 else long / short)
        if ratio > rule.length_ratio:
            out.differ(LENGTH_RATIO.format(path=path, reference=len(reference), candidate=len(candidate),
                                           ratio=ratio, limit=rule.length_ratio))


# -- other answers --------------------------------------------------------------------------------


def _compare_text(reference: bytes, candidate: bytes, rules: AnswerRules, ref_error: str | None,
                  cand_error: str | None) -> Comparison:
    out = _Outcome()
    ref_text = reference.decode("utf-8", "replace")
    cand_text = candidate.decode("utf-8", "replace")
    applied = False
    for rule in rules.rules:
        if rule.path.strip() != "$":
            if reference != candidate:
                out.differ(_one_side_json(reference, candidate, ref_error, cand_error)
                           or NOT_JSON_RULE.format(path=rule.path))
            continue
        applied = True
        if rule.kind == "similarity":
            _text_similarity(rule, "$", ref_text, cand_text, out)
        elif reference != candidate:
            # equals, and the number/vector kinds, which text cannot satisfy: the bytes must be equal
            out.differ(_one_side_json(reference, candidate, ref_error, cand_error) or BYTES_DIFFER.format(
                reference=_short(ref_text), candidate=_short(cand_text)))
    if not applied and reference != candidate:
        out.differ(_one_side_json(reference, candidate, ref_error, cand_error) or BYTES_DIFFER.format(
            reference=_short(ref_text), candidate=_short(cand_text)))
    return out.result()


def _one_side_json(reference: bytes, candidate: bytes, ref_error: str | None, cand_error: str | None) -> str | None:
    if (ref_error is None) == (cand_error is None):
        return None
    return _not_json(reference, candidate, ref_error, cand_error, json_type=False)


# -- formatting -----------------------------------------------------------------------------------


def _child(path: str, key: str) -> str:
    return jsonpath.format_path((*jsonpath.parse(path), key)) if _parses(path) else f"{path}.{key}"


def _parses(path: str) -> bool:
    try:
        jsonpath.parse(path)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if _is_number(value):
        return "a number"
    return "a string"


def _short(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _short_bytes(body: bytes) -> str:
    return _short(body.decode("utf-8", "replace"))

