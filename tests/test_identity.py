"""Who acts: a CI user, else the STS caller on aws, else what the person says (unauthenticated); names
normalised before four-eyes compares them."""

from __future__ import annotations

import pytest

from modelops.identity import Identity, identify, normalise

JENKINS = {"JENKINS_URL": "https://ci.example.com/", "BUILD_URL": "https://ci.example.com/job/x/7/"}
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42"}
ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/modelops-reviewer/ana@example.com"


def git(email: str | None):
    return lambda: email


@pytest.mark.parametrize("raw", [" ada@example.com", "ADA@Example.COM", "ada@example.com\t\n", "\u200bada@example.com",
                                 "\u00a0ada@example.com\u00a0", "\uff41\uff44\uff41@example.com"])
def test_an_email_with_spaces_case_or_invisible_characters_is_the_same_email(raw: str) -> None:
    assert normalise(raw) == "ada@example.com"
    assert identify({"MODELOPS_USER": raw}).name == "ada@example.com"
    assert Identity("arn:aws:sts::1:assumed-role/r/s", "sts", True, claims=(normalise(raw),)).is_author("Ada@example.com")


def test_arns_keep_their_case() -> None:
    assert normalise(" arn:aws:iam::123456789012:role/ModelReviewer ") == "arn:aws:iam::123456789012:role/ModelReviewer"


def test_without_ci_or_aws_the_identity_is_a_claim_modelops_user_then_git_then_user() -> None:
    said = identify({"MODELOPS_USER": "m@x", "USER": "u"}, git_email=git("g@x"))
    assert (said.name, said.source, said.authenticated) == ("m@x", "env", False)
    assert str(said) == "m@x ($MODELOPS_USER, unauthenticated)"
    assert identify({"USER": "u"}, git_email=git("G@X")).name == "g@x"
    assert identify({"USER": "u"}, git_email=git(None)).source == "os"
    assert identify({}, git_email=git(None)).name == "unknown"
    # The claim is the whole identity: the reviewer named on the author's laptop is the reviewer.
    assert not identify({"MODELOPS_USER": "reviewer@x"}, git_email=git("ada@x")).is_author("ada@x")


def test_on_aws_the_sts_caller_acts_and_claims_count_only_against_it() -> None:
    who = identify({"MODELOPS_USER": "reviewer@example.com"}, git_email=git("ada@example.com"),
                   caller_arn=lambda: ROLE_SESSION)
    assert (who.name, who.source, who.authenticated) == (ROLE_SESSION, "sts", True)
    assert who.email() is None  # a session name is no e-mail the access rules trust
    assert "arn:aws:iam::123456789012:role/modelops-reviewer" in who.arns()
    assert who.is_author("ana@example.com")  # the session name
    assert who.is_author(" ADA@example.com")  # git's e-mail on the machine that approves
    assert who.as_author("ada@example.com") == f"{ROLE_SESSION} (also ada@example.com)"


def test_a_ci_user_is_authenticated_only_inside_its_ci() -> None:
    inside = identify({"MODELOPS_CI_USER": " Alice ", "MODELOPS_CI_SYSTEM": "jenkins", **JENKINS,
                       "MODELOPS_USER": "ada@example.com"}, caller_arn=lambda: ROLE_SESSION)
    assert (inside.name, inside.source, inside.authenticated, inside.principal) == ("alice", "jenkins", True, ROLE_SESSION)
    assert inside.ci_user() == "jenkins:alice" and str(inside) == "alice (jenkins)"
    assert not inside.is_author("ada@example.com")  # the agent's settings are not the person's claims
    outside = identify({"MODELOPS_CI_USER": "alice", "MODELOPS_CI_SYSTEM": "jenkins"})
    assert outside.source == "jenkins" and not outside.authenticated
    detected = identify({"MODELOPS_CI_USER": "octocat", **GITHUB})  # the system from its variables
    assert (detected.source, detected.authenticated) == ("github", True)
    assert not identify({"MODELOPS_CI_USER": "octocat", "MODELOPS_CI_SYSTEM": "github",
                         "GITHUB_ACTIONS": "false", "GITHUB_RUN_ID": "1"}).authenticated
