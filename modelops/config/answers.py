"""How a model's answers are compared between two releases (``spec.answers`` of ``model.yaml``).

During a judgment the candidate release and the reference release (the one serving) get the same
requests; :func:`modelops.verify.answers.compare` says whether each pair of answers agrees under
these rules. Words:

- a **rule** applies one comparison (its **kind**, one of :data:`RULE_KINDS`) to the values its
  JSONPath matches in both answers (``$.predictions[*].label``: every label, pairwise);
- **expect_change**: the model's answers are meant to change (a new model version): disagreements
  are reported, not gated.

With no rules, two JSON answers must be JSON-equal and other answers byte-equal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelops.config import jsonpath

#: The kinds of rule, as written in model.yaml (one per rule).
RULE_KINDS = ("equals", "tolerance", "cosine", "top_k", "similarity")
#: Kinds whose comparison yields a similarity score (cosine, top-k overlap, text similarity).
SCORED_KINDS = frozenset({"cosine", "top_k", "similarity"})
BAD_RULE_PATH = "path: {reason}"


@dataclass(frozen=True)
class AnswerRule:
    """One comparison at one JSONPath.

    - ``equals``: the values are the same JSON (labels, strings, ints; floats within 1e-9 relative);
    - ``tolerance``: numbers differ by at most ``threshold`` (absolute), element-wise in lists and
      mappings of numbers;
    - ``cosine``: vectors have cosine similarity at least ``threshold`` (a list of vectors: pairwise);
    - ``top_k``: the first ``top_k`` items of two lists share at least ``threshold`` of their items
      (order ignored; an item is a string or number, or a mapping named by its ``label``, ``id``,
      ``name`` or ``token``);
    - ``similarity``: texts have a difflib ratio at least ``threshold``, and, with ``length_ratio``,
      lengths within that factor of each other.
    """

    path: str
    kind: str
    threshold: float | None = None
    top_k: int | None = None
    length_ratio: float | None = None

    def describe(self) -> str:
        """The rule as one short phrase: ``$.embeddings[*]: cosine >= 0.99``."""
        if self.kind == "equals":
            what = "equal"
        elif self.kind == "tolerance":
            what = f"within {self.threshold:g}"
        elif self.kind == "top_k":
            what = f"top-{self.top_k} overlap >= {self.threshold:g}"
        elif self.kind == "similarity":
            what = f"text similarity >= {self.threshold:g}"
            if self.length_ratio is not None:
                what += f", lengths within x{self.length_ratio:g}"
        else:
            what = f"cosine >= {self.threshold:g}"
        return f"{self.path}: {what}"

    @property
    def has_score(self) -> bool:
        return self.kind in SCORED_KINDS


@dataclass(frozen=True)
class AnswerRules:
    """The answer comparison of one model (empty: exact comparison)."""

    expect_change: bool = False
    rules: tuple[AnswerRule, ...] = ()


def answer_rule(raw: Mapping[str, Any]) -> AnswerRule:
    """One rule from its schema-valid mapping (exactly one kind key)."""
    kind = next(k for k in RULE_KINDS if k in raw)
    threshold: float | None
    if kind == "equals":
        threshold = None
    elif kind == "top_k":
        threshold = float(raw.get("overlap", 1.0))
    else:
        threshold = float(raw[kind])
    return AnswerRule(
        path=raw["path"],
        kind=kind,
        threshold=threshold,
        top_k=int(raw["top_k"]) if kind == "top_k" else None,
        length_ratio=float(raw["length_ratio"]) if kind == "similarity" and "length_ratio" in raw else None,
    )


def answer_rules(raw: Mapping[str, Any] | None) -> AnswerRules:
    """``spec.answers`` from its schema-valid mapping (where rule ``i`` is written:
    ``model.position("spec", "answers", "rules", i)``)."""
    if not raw:
        return AnswerRules()
    return AnswerRules(
        expect_change=bool(raw.get("expect_change", False)),
        # A rule the schema refused is a placeholder ({}) in the partial model validate builds from
        # what is valid: it is left out (its path is broken, so no check reads the rules).
        rules=tuple(answer_rule(r) for r in raw.get("rules") or () if isinstance(r, Mapping) and "path" in r
                    and any(k in r for k in RULE_KINDS)),
    )


def bad_rules(rules: AnswerRules) -> Iterator[tuple[int, str]]:
    """(index, message) for each rule whose JSONPath does not parse."""
    for i, rule in enumerate(rules.rules):
        try:
            jsonpath.parse(rule.path)
        except ValueError as exc:
            yield i, BAD_RULE_PATH.format(reason=exc)
