"""What an approver reads about a release's answers: the answer diff against the release serving the
environment it is approved for, from the latest judgment of the release in an earlier environment (a
judged canary's step, kept in the ledger as a ``judgment`` entry).

A model whose answers are meant to change (``spec.answers.expect_change``: a new model version) has
its disagreements reported, not gated, by the judged canary; the approval is where a person reads
them: the agreement figures and the worst disagreements with their inputs, or, plainly, that no
judgment of the release exists yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops.config import Environment, ModelConfig, load_model
from modelops.errors import ModelopsError
from modelops.runtime import Runtime
from modelops.verify.judge import Judgment, Verdict

if TYPE_CHECKING:
    from modelops.deploy.repo import Repo
    from modelops.ledger import Ledger
    from modelops.ledger.records import JudgmentRecord, ReleaseRecord

NO_JUDGMENT = "no judgment of this release yet: deploy it to {environment} with a judged canary first"
NO_EARLIER = ("no judgment of this release yet: {environment} is the first environment; a judged canary judges it "
              "where another release serves")
#: Disagreements an approval shows (a judgment keeps up to five).
SHOWN = 5


@dataclass(frozen=True)
class AnswerReview:
    """The answers of ``release`` for an approval in ``environment``: the latest judgment of it in an
    earlier environment (None: ``missing`` says why), and what serves ``environment`` now."""

    release: str
    environment: str
    expect_change: bool
    serving: tuple[str, ...] = ()
    judgment: Judgment | None = None
    judged_in: str = ""  # environment/region of the judgment
    percent: int | None = None
    at: float = 0.0
    missing: str = ""

    @property
    def agreement(self) -> Verdict | None:
        found = [v for v in self.judgment.verdicts if v.metric == "agreement"] if self.judgment else []
        return found[0] if found else None

    @property
    def against_serving(self) -> bool:
        """Whether the judgment compared the release with what serves ``environment`` now."""
        return self.judgment is not None and self.serving == (self.judgment.reference,)

    def lines(self) -> list[str]:
        """The review as terminal lines (the first one says what it is)."""
        head = f"answers of {self.release}" + (
            " (spec.answers.expect_change: expected to change; the diff is reported, not gated)"
            if self.expect_change else "")
        j = self.judgment
        if j is None:
            return [f"{head}: {self.missing}"]
        lines = [f"{head}: judged in {self.judged_in} at {self.percent}% of the traffic against {j.reference} "
                 f"({j.outcome.value}, {j.rounds} round(s))"]
        if self.against_serving:
            lines.append(f"  {j.reference} serves {self.environment}: this is the diff the approval lets in")
        elif self.serving:
            lines.append(f"  {self.environment} serves {', '.join(self.serving)}, not {j.reference}: the diff below "
                         f"is against {j.reference}")
        else:
            lines.append(f"  nothing serves {self.environment} yet")
        agreement = self.agreement
        lines.append("  " + (agreement.figures() + ("" if agreement.gated else " (reported, not gated)")
                             if agreement else "no answers were compared"))
        if j.worst:
            lines.append(f"  worst disagreements ({j.reference}'s answer vs {j.candidate}'s):")
        for d in j.worst[:SHOWN]:
            lines.append(f"  differs: {d.detail}; input {d.request}")
        if agreement is not None and not j.worst:
            lines.append("  no disagreements")
        return lines

    def to_dict(self) -> dict[str, Any]:
        j = self.judgment
        return {"release": self.release, "environment": self.environment, "expect_change": self.expect_change,
                "serving": list(self.serving), "judged_in": self.judged_in or None, "percent": self.percent,
                "at": self.at or None, "against_serving": self.against_serving, "missing": self.missing or None,
                "agreement": self.agreement.to_dict() if self.agreement else None,
                "worst": [d.to_dict() for d in j.worst[:SHOWN]] if j else [],
                "judgment": j.to_dict() if j else None, "lines": self.lines()}


def review_answers(record: ReleaseRecord, env: Environment, repo: Repo, runtime: Runtime,
                   ledger: Ledger) -> AnswerReview | None:
    """The answer review of ``record`` for an approval in ``env`` (``ledger``: env's, open): None when
    its model does not declare ``expect_change`` and no judgment of it exists."""
    expect_change = _expects_change(record, repo)
    earlier = _earlier(repo, env)
    found = _judgments(record.release, earlier, env, runtime, ledger)
    serving = tuple(dict.fromkeys(
        s.release for s in (ledger.current(record.model, env.name, r) for r in env.regions)
        if s is not None and s.release))
    if not found:
        if not expect_change:
            return None
        missing = NO_JUDGMENT.format(environment=earlier[-1].name) if earlier else NO_EARLIER.format(
            environment=env.name)
        return AnswerReview(record.release, env.name, expect_change, serving, missing=missing)
    # The latest judgment, preferring one against what serves env now (the diff the approval lets in).
    latest = max(found, key=lambda j: (j.reference in serving, j.at))
    return AnswerReview(record.release, env.name, expect_change, serving, Judgment.from_dict(latest.judgment),
                        f"{latest.environment}/{latest.region}", latest.percent, latest.at)


def _expects_change(record: ReleaseRecord, repo: Repo) -> bool:
    """The release's model's ``spec.answers.expect_change``, as committed in the release (the working
    tree's when it was built from uncommitted changes or its commit is gone)."""
    commit = record.commit
    refs = [None] if commit.endswith("-dirty") or commit == "uncommitted" else [commit, None]
    for ref in refs:
        try:
            return load_model(repo.ws, record.model, ref).answers.expect_change
        except ModelopsError:
            continue
    return False


def _earlier(repo: Repo, env: Environment) -> tuple[Environment, ...]:
    order = repo.envs.in_promotion_order()
    names = [e.name for e in order]
    return order[:names.index(env.name)] if env.name in names else ()


def _judgments(release: str, earlier: Sequence[Environment], env: Environment, runtime: Runtime,
               ledger: Ledger) -> list[JudgmentRecord]:
    """The judgments of ``release`` in the ``earlier`` environments, from each ledger they write to."""
    from modelops.deploy.repo import ledger_key, opened

    found: list[JudgmentRecord] = []
    seen: set[tuple[str, str]] = set()
    for other in earlier:
        key = ledger_key(other)
        if key in seen:
            continue
        seen.add(key)
        if key == ledger_key(env):
            found.extend(ledger.judgments(release))
        else:
            with opened(other, runtime) as (_, theirs):
                found.extend(theirs.judgments(release))
    names = {e.name for e in earlier}
    return [j for j in found if j.environment in names]


@dataclass(frozen=True)
class AwaitingApproval:
    """A release that passed its tests in the environment before ``environment`` and waits for an
    approval there (none recorded, not serving there, not blocked); ``answers`` is what the approval
    would let in (see :func:`review_answers`)."""

    model: str
    environment: str
    release: str
    tested_in: str
    answers: AnswerReview | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "release": self.release, "tested_in": self.tested_in,
                "answers": self.answers.to_dict() if self.answers else None}


def awaiting_approval(repo: Repo, models: Sequence[ModelConfig], runtime: Runtime) -> tuple[AwaitingApproval, ...]:
    """Per model and environment that requires an approval, the newest release newer than what serves
    there whose tests passed in the environment before it and that nobody approved there yet."""
    from modelops.deploy.repo import opened

    found: list[AwaitingApproval] = []
    for env in repo.envs.in_promotion_order():
        before = repo.envs.previous(env.name)
        if not env.approval.required or before is None:
            continue
        with opened(env, runtime) as (_, ledger), opened(before, runtime) as (_, earlier):
            for model in (m.name for m in models if m.supports_cloud(env.cloud)):
                serving = {s.release for s in (ledger.current(model, env.name, r) for r in env.regions)
                           if s is not None and s.release}
                for record in reversed(earlier.releases(model)):  # the newest first
                    if record.release in serving:
                        break  # what serves there, or older: nothing waits
                    if (earlier.tests_passed(record.release, before.name, regions=before.regions)
                            and not ledger.approvals(record.release, env.name)
                            and ledger.block(record.release, env.name) is None):
                        found.append(AwaitingApproval(model, env.name, record.release, before.name,
                                                      review_answers(record, env, repo, runtime, ledger)))
                        break
    return tuple(found)
