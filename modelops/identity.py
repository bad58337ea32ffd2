"""Who acts, and where that came from.

An :class:`Identity` is a name and its source, in this order:

1. **CI** (``jenkins``, ``github``, ``spinnaker``): the generated pipelines pass the user their CI
   authenticated as ``MODELOPS_CI_USER`` and the CI as ``MODELOPS_CI_SYSTEM`` (Jenkins: the ``input``
   submitter, or who started the build; GitHub: ``github.actor``; Spinnaker: who decided the manual
   judgment). It counts as authenticated when the CI's own variables are there too (Jenkins:
   ``JENKINS_URL`` and ``BUILD_URL``; GitHub: ``GITHUB_ACTIONS=true`` and ``GITHUB_RUN_ID``;
   Spinnaker: ``MODELOPS_PIPELINE_RUN``, the execution id the generated pipeline sets). On an aws environment
   the STS caller the CI runs as is kept beside it as the ``principal``.
2. **sts**: on an aws environment, the caller identity STS answers for the environment's credentials
   (an IAM user, or an assumed role with its session): authenticated by AWS.
3. **env** (``$MODELOPS_USER``), else **git** (``user.email`` in the repository), else **os**
   (``$USER``): what the person at the keyboard says, marked unauthenticated. The local cloud has
   no other source.

Names are normalised before anything compares them: Unicode NFKC, invisible format characters
removed, surrounding whitespace trimmed, e-mails and CI user ids case-folded (ARNs keep their case).
Four-eyes compares the author with every name an identity goes by: its own, an e-mail as an STS
session name, and for an STS caller what the same process claims (``$MODELOPS_USER``, git's e-mail
on the machine that acts): a claim can make someone the author, never someone else. A CI user has
no claims (the agent's git configuration is the machine's, not the person's), and an
unauthenticated identity is nothing but its claim (``MODELOPS_USER=reviewer@example.com`` on the author's laptop is the reviewer, as the
local cloud's documented workflow has it: nothing there could tell otherwise). Permissions
(``pipelines/access.yaml``) match only the identity's own name and principal, never claims.

This module reads nothing itself: callers pass the process environment, git's e-mail and, on aws,
a function asking STS (``modelops.clients.Clients.caller_arn``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CI_USER = "MODELOPS_CI_USER"
CI_SYSTEM = "MODELOPS_CI_SYSTEM"
CLAIMED_USER = "MODELOPS_USER"

STS = "sts"
ENV = "env"
GIT = "git"
OS = "os"
UNKNOWN = "unknown"
#: How messages name a source that is not a CI system.
SOURCE_LABELS = {STS: "sts", ENV: "$MODELOPS_USER", GIT: "git user.email", OS: "$USER"}
#: CI systems and the variables that show a run is theirs (all must be set, non-empty).
CI_SYSTEMS: Mapping[str, tuple[tuple[str, str | None], ...]] = {
    "jenkins": (("JENKINS_URL", None), ("BUILD_URL", None)),
    "github": (("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_ID", None)),
    "spinnaker": (("MODELOPS_PIPELINE_RUN", None),),
}

_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/:]+$")  # no ARN (an e-mail as its session name)
_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$")


def normalise(name: str) -> str:
    """``name`` as identities compare: NFKC, no invisible format characters, trimmed; e-mails and
    other names that are not ARNs case-folded."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").strip()
    return text if text.startswith("arn:") else text.casefold()


def is_email(name: str) -> bool:
    return bool(_EMAIL.match(name))


@dataclass(frozen=True)
class Identity:
    """Who acts. ``name`` is normalised (an e-mail, an ARN, or a CI user id); ``source`` is ``sts``,
    a CI system, ``env``, ``git`` or ``os``; ``principal`` is the STS caller a CI identity runs as on
    aws; ``claims`` are names the person at an STS caller's machine gave without proof (four-eyes
    counts them)."""

    name: str
    source: str
    authenticated: bool
    principal: str | None = None
    claims: tuple[str, ...] = ()

    @property
    def is_ci(self) -> bool:
        return self.source in CI_SYSTEMS

    def __str__(self) -> str:
        """``reviewer@example.com (git user.email, unauthenticated)``, ``alice (jenkins)``."""
        label = SOURCE_LABELS.get(self.source, self.source)
        return f"{self.name} ({label}{'' if self.authenticated else ', unauthenticated'})"

    def arns(self) -> frozenset[str]:
        """The ARNs this identity acts as: its own or its principal's, and for an assumed-role session
        also the role's IAM ARN (``arn:aws:iam::<account>:role/<name>``, without a path)."""
        out: set[str] = set()
        for arn in (self.name, self.principal):
            if arn and arn.startswith("arn:"):
                out.add(arn)
                m = _ASSUMED_ROLE.match(arn)
                if m:
                    out.add(f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}")
        return frozenset(out)

    def ci_user(self) -> str | None:
        """``<system>:<user>`` for a CI identity (how access.yaml's ``ci_users`` name it)."""
        return f"{self.source}:{self.name}" if self.is_ci else None

    def email(self) -> str | None:
        """The e-mail this identity is, when its name is one (never a claim)."""
        return self.name if is_email(self.name) else None

    def names(self) -> frozenset[str]:
        """Every normalised name this identity goes by, claims and e-mail session names included:
        what four-eyes compares with the author."""
        out = {self.name, *self.claims}
        for arn in (self.name, self.principal):
            m = _ASSUMED_ROLE.match(arn or "")
            if m and is_email(normalise(m["session"])):
                out.add(normalise(m["session"]))
        return frozenset(n for n in out if n)

    def is_author(self, author: str) -> bool:
        """Whether ``author`` (a commit's author e-mail) is one of this identity's names."""
        return normalise(author) in self.names()

    def as_author(self, author: str) -> str:
        """How a four-eyes refusal names this identity: ``bob`` or ``arn:... (also ada@example.com)``."""
        said = normalise(author)
        return self.name if said == self.name else f"{self.name} (also {said})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "authenticated": self.authenticated,
                "principal": self.principal, "claims": list(self.claims)}


def ci_attested(system: str, environ: Mapping[str, str]) -> bool:
    """Whether the variables of CI ``system`` are all set as that CI sets them."""
    marks = CI_SYSTEMS.get(system)
    return bool(marks) and all(
        (environ.get(name) or "") == value if value is not None else bool(environ.get(name))
        for name, value in marks or ())


def claimed(environ: Mapping[str, str], git_email: str | None = None) -> Identity:
    """The identity a person gives without proof: ``$MODELOPS_USER``, else git's ``user.email``,
    else ``$USER``, else ``unknown``."""
    for name, source in ((environ.get(CLAIMED_USER), ENV), (git_email, GIT), (environ.get("USER"), OS)):
        if name and normalise(name):
            return Identity(normalise(name), source, authenticated=False)
    return Identity(UNKNOWN, OS, authenticated=False)


def identify(environ: Mapping[str, str], *, git_email: Callable[[], str | None] | None = None,
             caller_arn: Callable[[], str | None] | None = None) -> Identity:
    """Who acts (see the module docstring). ``git_email`` reads git's ``user.email``; ``caller_arn``
    asks STS (pass it for aws environments only; it may raise the cloud's errors)."""
    arn = caller_arn() if caller_arn is not None else None  # asked first: a cloud error is the answer
    ci_user = normalise(environ.get(CI_USER) or "")
    if ci_user:
        system = normalise(environ.get(CI_SYSTEM) or "") or next(
            (s for s in CI_SYSTEMS if ci_attested(s, environ)), "ci")
        return Identity(ci_user, system, authenticated=ci_attested(system, environ), principal=arn or None)
    email = git_email() if git_email is not None else None
    if arn:
        claims = tuple(dict.fromkeys(n for n in (normalise(environ.get(CLAIMED_USER) or ""), normalise(email or "")) if n))
        return Identity(normalise(arn), STS, authenticated=True, claims=claims)
    return claimed(environ, email)
