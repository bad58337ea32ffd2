"""The lines an approval shows of a release's answers (modelops.deploy.review), for the cases the end to
end test (test_approve_answer_diff.py) does not reach: judged against a release that no longer serves
the environment, and no earlier environment to judge it in."""

from __future__ import annotations

from modelops.deploy.review import NO_EARLIER, AnswerReview
from modelops.verify.judge import Disagreement, Judgment, Outcome, Verdict

AGREEMENT = Verdict("agreement", "%", None, 0.9, 0.9, 0.85, 0.94, 0.99, 0.95, (200, 200), Outcome.FAIL, gated=False)
JUDGMENT = Judgment("iris-1", "iris-3", Outcome.PASS, (AGREEMENT,), 2,
                    (Disagreement('{"instances": [[1, 2, 3, 4]]}', "'setosa'", "'virginica'",
                                  "$.predictions[0].label: 'setosa' vs 'virginica'"),))


def test_a_judgment_against_a_release_that_no_longer_serves_says_what_serves() -> None:
    review = AnswerReview("iris-3", "prod", True, ("iris-2",), JUDGMENT, "staging/us-east-1", 50, 1.0)
    lines = review.lines()
    assert lines[0] == ("answers of iris-3 (spec.answers.expect_change: expected to change; the diff is reported, "
                        "not gated): judged in staging/us-east-1 at 50% of the traffic against iris-1 (pass, 2 round(s))")
    assert lines[1] == "  prod serves iris-2, not iris-1: the diff below is against iris-1"
    assert lines[2] == ("  agreement 90.0% of 200 paired answers (95% interval 85.0%..94.0%), minimum 99.0% "
                        "(reported, not gated)")
    assert lines[3:] == ["  worst disagreements (iris-1's answer vs iris-3's):",
                         "  differs: $.predictions[0].label: 'setosa' vs 'virginica'; input "
                         '{"instances": [[1, 2, 3, 4]]}']
    doc = review.to_dict()
    assert doc["against_serving"] is False and doc["agreement"]["gated"] is False and doc["worst"][0]["request"]


def test_no_judgment_in_the_first_environment_says_so() -> None:
    review = AnswerReview("iris-3", "dev", True, missing=NO_EARLIER.format(environment="dev"))
    assert review.lines() == ["answers of iris-3 (spec.answers.expect_change: expected to change; the diff is "
                              "reported, not gated): no judgment of this release yet: dev is the first environment; "
                              "a judged canary judges it where another release serves"]
    assert review.to_dict()["judgment"] is None
