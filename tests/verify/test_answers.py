"""Comparing two releases' answers to one request under a model's spec.answers rules: each rule kind
agrees within its tolerance and says where and by how much when it does not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelops.config.answers import AnswerRules, answer_rule
from modelops.verify.answers import Comparison, compare

JSON = "application/json"


def rules(*raw: dict[str, Any], expect_change: bool = False) -> AnswerRules:
    return AnswerRules(expect_change, tuple(answer_rule(r) for r in raw))


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def iris(*labels: str, setosa: float = 0.9) -> bytes:
    return j({"predictions": [{"label": label, "probabilities": {"setosa": setosa, "versicolor": round(1 - setosa, 6)}}
                              for label in labels]})


IRIS_RULES = rules({"path": "$.predictions[*].label", "equals": True},
                   {"path": "$.predictions[*].probabilities.*", "tolerance": 0.02})


# -- no rules: exact ------------------------------------------------------------------------------


def test_without_rules_json_answers_must_be_json_equal_whatever_the_spacing_and_key_order() -> None:
    assert compare(b'{"a": 1, "b": [1.0, "x"]}', b'{"b":[1,"x"],"a":1.0}', JSON, AnswerRules()) == Comparison(True)
    assert compare(j({"a": 0.1 + 0.2}), j({"a": 0.3}), JSON, AnswerRules()).agree  # 1e-9 relative


def test_without_rules_the_first_difference_is_named_by_its_path() -> None:
    c = compare(iris("setosa", "setosa"), iris("setosa", "virginica"), JSON, AnswerRules())
    assert c == Comparison(False, "$.predictions[1].label: 'setosa' vs 'virginica'")
    assert compare(j({"a": 1}), j({"a": 1.0001}), JSON, AnswerRules()).detail == "$.a: 1 vs 1.0001"
    assert compare(j({"a": True}), j({"a": 1}), JSON, AnswerRules()).detail == "$.a: true vs 1"
    assert compare(j({"a": [1, 2]}), j({"a": [1]}), JSON, AnswerRules()).detail == "$.a: lists of length 2 vs 1"
    assert compare(j({"a": 1}), j({"a": 1, "b": 2}), JSON, AnswerRules()).detail == "$.b: missing in the reference answer"
    assert compare(j({"a": {"x y": 1}}), j({"a": {"x y": 2}}), JSON, AnswerRules()).detail == "$.a['x y']: 1 vs 2"


def test_without_rules_other_answers_must_be_byte_equal() -> None:
    assert compare(b"setosa\n", b"setosa\n", "text/csv", AnswerRules()).agree
    c = compare(b"setosa\n", b"virginica\n", "text/csv", AnswerRules())
    assert not c.agree and c.detail == "$: answers differ: 'setosa\\n' vs 'virginica\\n'"


def test_bodies_that_parse_are_compared_as_json_whatever_the_content_type() -> None:
    assert compare(b'{"a": 1}', b'{"a":1.0}', "text/plain", AnswerRules()).agree


# -- JSON on one side only ------------------------------------------------------------------------


def test_an_answer_that_is_not_json_on_one_side_is_a_disagreement_naming_the_side() -> None:
    c = compare(j({"a": 1}), b"<html>502 Bad Gateway</html>", JSON, AnswerRules())
    assert not c.agree
    assert c.detail.startswith("$: the reference answer is JSON, the candidate answer is not (Expecting value)"), c
    assert "'<html>502 Bad Gateway</html>'" in c.detail
    c = compare(b"oops", j({"a": 1}), "text/plain", IRIS_RULES)
    assert not c.agree and c.detail.startswith("$: the candidate answer is JSON, the reference answer is not"), c


def test_with_a_json_content_type_two_bodies_that_are_not_json_disagree_even_when_equal() -> None:
    c = compare(b"nope", b"nope", JSON, AnswerRules())
    assert not c.agree and "reference answer is not JSON" in c.detail


# -- equals ---------------------------------------------------------------------------------------


def test_equals_on_labels_agrees_when_every_label_is_the_same_and_ignores_what_no_rule_covers() -> None:
    labels = rules({"path": "$.predictions[*].label", "equals": True})
    assert compare(iris("setosa", "virginica", setosa=0.9), iris("setosa", "virginica", setosa=0.5), JSON, labels).agree


def test_equals_names_the_first_flipped_label() -> None:
    c = compare(iris("setosa", "setosa", "setosa", "setosa"), iris("setosa", "setosa", "setosa", "virginica"), JSON,
                IRIS_RULES)
    assert c == Comparison(False, "$.predictions[3].label: 'setosa' vs 'virginica'")


def test_a_different_number_of_matches_is_a_disagreement() -> None:
    c = compare(iris("setosa", "setosa"), iris("setosa"), JSON, rules({"path": "$.predictions[*].label", "equals": True}))
    assert c.detail == "$.predictions[*].label: 2 values in the reference answer, 1 in the candidate answer"


def test_a_missing_path_is_a_disagreement_naming_which_answer_lacks_it() -> None:
    rule = rules({"path": "$.dimensions", "equals": True})
    assert compare(j({"dimensions": 3}), j({}), JSON, rule).detail == "$.dimensions: missing in the candidate answer"
    assert compare(j({}), j({"dimensions": 3}), JSON, rule).detail == "$.dimensions: missing in the reference answer"
    assert compare(j({}), j({}), JSON, rule).detail == "$.dimensions: missing in both answers"
    # A wildcard that matches nothing on both sides matches the same (no) places: agreement.
    assert compare(j({"predictions": []}), j({"predictions": []}), JSON, IRIS_RULES).agree


def test_wildcard_matches_are_paired_by_place_not_by_order() -> None:
    reference = j({"p": {"setosa": 0.9, "virginica": 0.1}})
    assert compare(reference, j({"p": {"virginica": 0.1, "setosa": 0.9}}), JSON,
                   rules({"path": "$.p.*", "tolerance": 0.0})).agree
    c = compare(reference, j({"p": {"setosa": 0.9, "versicolor": 0.1}}), JSON, rules({"path": "$.p.*", "tolerance": 1}))
    assert c.detail == "$.p.virginica: missing in the candidate answer"


# -- tolerance ------------------------------------------------------------------------------------


def test_tolerance_agrees_within_and_names_the_difference_beyond() -> None:
    assert compare(iris("setosa", setosa=0.90), iris("setosa", setosa=0.915), JSON, IRIS_RULES).agree
    assert compare(iris("setosa", setosa=0.90), iris("setosa", setosa=0.92), JSON, IRIS_RULES).agree  # at the edge
    c = compare(iris("setosa", setosa=0.90), iris("setosa", setosa=0.95), JSON, IRIS_RULES)
    assert c == Comparison(False, "$.predictions[0].probabilities.setosa: 0.9 vs 0.95 (differ by 0.05 > 0.02)")


def test_tolerance_is_element_wise_over_lists_and_mappings_of_numbers() -> None:
    rule = rules({"path": "$.scores", "tolerance": 0.1})
    assert compare(j({"scores": [1, 2, {"x": 3}]}), j({"scores": [1.05, 1.95, {"x": 3.1}]}), JSON, rule).agree
    assert compare(j({"scores": [1, 2]}), j({"scores": [1, 2.5]}), JSON, rule).detail == \
        "$.scores[1]: 2 vs 2.5 (differ by 0.5 > 0.1)"
    assert compare(j({"scores": [1, 2]}), j({"scores": [1]}), JSON, rule).detail == "$.scores: lists of length 2 vs 1"
    assert compare(j({"scores": "high"}), j({"scores": "high"}), JSON, rule).detail == "$.scores: 'high' is not a number"
    assert compare(j({"scores": [1]}), j({"scores": 1}), JSON, rule).detail == "$.scores: a list vs a number"


# -- cosine ---------------------------------------------------------------------------------------


def test_cosine_compares_each_vector_and_reports_the_worst_score() -> None:
    rule = rules({"path": "$.embeddings[*]", "cosine": 0.99})
    same = j({"embeddings": [[1, 0, 0], [0, 1, 0]]})
    c = compare(same, j({"embeddings": [[2, 0, 0], [0, 1, 0.01]]}), JSON, rule)
    assert c.agree and c.score == pytest.approx(0.99995, abs=1e-5)
    c = compare(same, j({"embeddings": [[1, 0, 0], [0.2, 1, 0]]}), JSON, rule)
    assert c == Comparison(False, "$.embeddings[1]: cosine 0.9806 < 0.99", c.score)
    assert c.score == pytest.approx(0.98058, abs=1e-5)


def test_cosine_on_a_list_of_vectors_compares_pairwise() -> None:
    rule = rules({"path": "$.embeddings", "cosine": 0.99})
    c = compare(j({"embeddings": [[1, 0], [0, 1]]}), j({"embeddings": [[1, 0], [1, 0]]}), JSON, rule)
    assert c == Comparison(False, "$.embeddings[1]: cosine 0.0000 < 0.99", 0.0)


def test_cosine_refuses_vectors_of_other_lengths_and_values_that_are_not_vectors() -> None:
    rule = rules({"path": "$.v", "cosine": 0.9})
    assert compare(j({"v": [1, 0]}), j({"v": [1, 0, 0]}), JSON, rule).detail == "$.v: vectors of length 2 vs 3"
    assert compare(j({"v": [1, 0]}), j({"v": "x"}), JSON, rule).detail == "$.v: 'x' is not a vector of numbers"
    zero = compare(j({"v": [0, 0]}), j({"v": [0, 0]}), JSON, rule)
    assert zero.agree and zero.score == 1.0


# -- top_k ----------------------------------------------------------------------------------------


def test_top_k_overlap_ignores_order_within_the_first_k_and_names_labels_of_objects() -> None:
    rule = rules({"path": "$.top", "top_k": 3, "overlap": 0.6})
    reference = j({"top": [{"label": "cat", "score": 0.5}, {"label": "dog", "score": 0.3}, {"label": "fox"}, "x"]})
    c = compare(reference, j({"top": ["dog", "cat", "owl", "fox"]}), JSON, rule)
    assert c.agree and c.score == pytest.approx(2 / 3)
    c = compare(reference, j({"top": ["owl", "cat", "emu"]}), JSON, rule)
    assert c == Comparison(False, '$.top: top-3 overlap 0.3333 < 0.6 (["cat","dog","fox"] vs ["owl","cat","emu"])',
                           pytest.approx(1 / 3))


def test_top_k_without_overlap_needs_the_same_set() -> None:
    rule = rules({"path": "$.top", "top_k": 2})
    assert compare(j({"top": ["a", "b", "c"]}), j({"top": ["b", "a", "z"]}), JSON, rule).agree
    assert not compare(j({"top": ["a", "b"]}), j({"top": ["a", "c"]}), JSON, rule).agree
    assert compare(j({"top": []}), j({"top": []}), JSON, rule) == Comparison(True, "", 1.0)
    assert compare(j({"top": "a"}), j({"top": ["a"]}), JSON, rule).detail == "$.top: 'a' is not a list"


# -- similarity -----------------------------------------------------------------------------------


def test_similarity_of_generated_text_with_a_length_check() -> None:
    rule = rules({"path": "$.generated_text", "similarity": 0.8, "length_ratio": 2})
    reference = j({"generated_text": "The capital of France is Paris."})
    c = compare(reference, j({"generated_text": "The capital of France is Paris!"}), JSON, rule)
    assert c.agree and 0.95 < (c.score or 0) < 1
    c = compare(reference, j({"generated_text": "Berlin."}), JSON, rule)
    assert not c.agree and c.detail.startswith("$.generated_text: text similarity 0."), c
    assert "< 0.8 ('The capital of France is Paris.' vs 'Berlin.')" in c.detail
    long = "The capital of France is Paris. " * 3
    c = compare(reference, j({"generated_text": long}), JSON, rules({"path": "$.generated_text", "similarity": 0.3,
                                                                      "length_ratio": 2}))
    assert c.detail == "$.generated_text: text lengths 31 vs 96 characters (x3.10 > x2)", c


def test_similarity_on_text_answers_at_the_root() -> None:
    rule = rules({"path": "$", "similarity": 0.7})
    c = compare(b"hello world", b"hello wordl", "text/plain", rule)
    assert c.agree and c.score == pytest.approx(10 / 11)
    assert not compare(b"hello world", b"goodbye", "text/plain", rule).agree
    assert compare(b"", b"", "text/plain", rules({"path": "$", "similarity": 0.9, "length_ratio": 1.5})).agree
    c = compare(b"", b"x", "text/plain", rules({"path": "$", "similarity": 0.0, "length_ratio": 1.5}))
    assert c.detail == "$: text lengths 0 vs 1 characters (xinf > x1.5)"


def test_a_json_path_rule_cannot_apply_to_text_answers() -> None:
    c = compare(b"a,b", b"a,c", "text/csv", rules({"path": "$.x", "equals": True}))
    assert c.detail == "$.x: the answers are not JSON, a rule at $.x cannot apply to them"
    assert compare(b"a,b", b"a,b", "text/csv", rules({"path": "$.x", "equals": True})).agree


def test_the_score_is_the_worst_of_every_scored_rule_and_the_detail_the_first_difference() -> None:
    both = rules({"path": "$.label", "equals": True}, {"path": "$.v", "cosine": 0.5}, {"path": "$.t", "similarity": 0})
    c = compare(j({"label": "a", "v": [1, 0], "t": "abcd"}), j({"label": "b", "v": [1, 1], "t": "abzz"}), JSON, both)
    assert c.detail == "$.label: 'a' vs 'b'" and c.score == pytest.approx(0.5)


def test_expect_change_does_not_change_the_verdict_only_what_the_judgment_does_with_it() -> None:
    flipped = rules({"path": "$.predictions[*].label", "equals": True}, expect_change=True)
    assert not compare(iris("setosa"), iris("virginica"), JSON, flipped).agree
