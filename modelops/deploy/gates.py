"""What must hold before a release enters an environment: a clean tree (GitOps), a clean policy, tests
passed for the same release in the previous environment, an approval where required, and no block (a
release rolled back there stays out until unblocked). And who may act: :func:`check_allowed`.

Every gate fails closed: no test record is not a pass, an unknown author is not "someone else".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.config import Environment, Environments, ModelConfig, Workspace
from modelops.errors import GateError, InputError

if TYPE_CHECKING:
    from modelops.ledger import Ledger
    from modelops.ledger.records import ReleaseBlock
    from modelops.runtime import Runtime

DIRTY_TREE = "{environment} deploys only committed releases: {paths} {have} uncommitted changes"
DIRTY_TREE_HINT = "commit (or stash) the changes, or deploy a commit with --ref"
POLICY_FAILED = "policy: {count} finding(s) block {model} at {where}: {first}"
POLICY_FAILED_HINT = "run `modelops validate {folder}` for the full list"
TESTS_MISSING = "release {release} has no passing tests in {previous} (needed before {environment})"
TESTS_MISSING_HINT = "deploy it to {previous} and run `modelops test {model} --env {previous}`, or use --through {environment}"
APPROVAL_MISSING = "release {release} needs an approval for {environment}{four_eyes}"
APPROVAL_MISSING_HINT = "someone{other} runs `modelops approve {release} --env {environment}`"
SELF_APPROVAL = "four-eyes: {user} wrote commit {commit} of release {release} and may not approve it for {environment}"
SELF_APPROVAL_HINT = "ask someone else to approve it"
UNKNOWN_AUTHOR = ("four-eyes: the author of commit {commit} of release {release} is not known here (this checkout "
                  "does not hold that commit), so {user} cannot be told apart from the author for {environment}")
UNKNOWN_AUTHOR_HINT = "approve from a clone holding the commit (git fetch; no shallow clone)"
BLOCKED = ("release {release} is blocked in {environment}: {reason} ({by}, {when}); "
           "run `modelops release unblock {release} --env {environment} --reason TEXT` to allow it again")
BLOCKED_HINT = "or fix it and commit: a new release is not blocked"
UNKNOWN_RELEASE = "unknown release {release}: the ledger has no build of it"
UNKNOWN_RELEASE_HINT = "build it first (`modelops build MODEL`, or `modelops deploy MODEL` to dev)"


def acting_user(environ: Mapping[str, str], root: Path | None) -> str:
    """Who acts: ``$MODELOPS_USER``, else the Jenkins input submitter (``$BUILD_USER_ID``), else git's
    ``user.email`` in the repository, else ``$USER``."""
    for name in ("MODELOPS_USER", "BUILD_USER_ID"):
        if environ.get(name):
            return environ[name]
    email = Workspace(root).user_email() if root is not None else None
    return email or environ.get("USER") or "unknown"


def commit_author(root: Path, commit: str) -> str | None:
    """The author e-mail of ``commit`` (None when the repo does not have it)."""
    return Workspace(root).commit_author(commit)


def check_clean_tree(ws: Workspace, model: ModelConfig, environment: Environment, envs: Environments,
                     ref: str | None) -> None:
    """Every environment but the first of the promotion order deploys only committed content."""
    if ref is not None or not envs.promotion or environment.name == envs.promotion[0]:
        return
    paths = [model.folder or ".", "pipelines"]
    if ws.is_dirty(paths):
        dirty = [p for p in paths if ws.is_dirty([p])]  # name only what is dirty, not both every time
        raise GateError(DIRTY_TREE.format(environment=environment.name, paths=" and ".join(dirty or paths),
                                          have="has" if len(dirty) == 1 else "have"), hint=DIRTY_TREE_HINT)


def check_policy(ws: Workspace, model: ModelConfig, ref: str | None, runtime: Runtime) -> None:
    """The policy (schema, security, capacity, rollout rules, bandit) is clean for the model at ``ref``."""
    from modelops.policy import ValidateRequest, validate

    result = validate(ValidateRequest(paths=(ws.root / (model.folder or "."),), ref=ref), runtime)
    failed = [f for f in result.failed if f.model in (None, model.name)] or list(result.failed)
    unreadable = next((f for f in result.findings if f.fatal), None)
    if unreadable is not None:  # input that cannot be read is bad input (exit 2), as for validate and build
        raise InputError(f"{unreadable.location}: {unreadable.message}",
                         hint=POLICY_FAILED_HINT.format(folder=model.folder or "."))
    if failed:
        first = failed[0]
        raise GateError(POLICY_FAILED.format(count=len(failed), model=model.name, where=ref or "the working tree",
                                             first=f"{first.location}: {first.message}"),
                        hint=POLICY_FAILED_HINT.format(folder=model.folder))


def check_tests(ledger: Ledger, release: str, model: str, environment: Environment, previous: Environment | None) -> None:
    if previous is None:
        return
    if not ledger.tests_passed(release, previous.name, regions=previous.regions):
        raise GateError(TESTS_MISSING.format(release=release, previous=previous.name, environment=environment.name),
                        hint=TESTS_MISSING_HINT.format(model=model, previous=previous.name,
                                                       environment=environment.name))


def check_approval(ledger: Ledger, release: str, environment: Environment, author: str | None) -> None:
    if not environment.approval.required:
        return
    approvals = ledger.approvals(release, environment.name)
    if environment.approval.four_eyes:
        # Fail closed: an author we cannot tell makes nobody "someone else".
        approvals = tuple(a for a in approvals if author is not None and a.by.lower() != author.lower())
    if not approvals:
        four = " from someone other than its author" + (f" ({author})" if author else "") if (
            environment.approval.four_eyes) else ""
        raise GateError(APPROVAL_MISSING.format(release=release, environment=environment.name, four_eyes=four),
                        hint=APPROVAL_MISSING_HINT.format(release=release, environment=environment.name,
                                                          other=" else" if environment.approval.four_eyes else ""))


def check_approver(user: str, author: str | None, *, release: str, commit: str, environment: Environment) -> None:
    """Four-eyes at approval time: the approver is not the author (an unknown author fails closed)."""
    if not environment.approval.four_eyes:
        return
    if author is None:  # fail closed, without claiming the approver wrote the commit
        raise GateError(UNKNOWN_AUTHOR.format(user=user, commit=commit[:12], release=release,
                                              environment=environment.name), hint=UNKNOWN_AUTHOR_HINT)
    if author.lower() == user.lower():
        raise GateError(SELF_APPROVAL.format(user=user, commit=commit[:12], release=release,
                                             environment=environment.name), hint=SELF_APPROVAL_HINT)


def unknown_release(release: str) -> InputError:
    return InputError(UNKNOWN_RELEASE.format(release=release), hint=UNKNOWN_RELEASE_HINT)


class ReleaseBlockedError(GateError):
    """The release was rolled back in this environment and not unblocked since (exit 1)."""

    def __init__(self, block: ReleaseBlock):
        super().__init__(blocked_message(block), hint=BLOCKED_HINT)
        self.block = block


def blocked_message(block: ReleaseBlock) -> str:
    """One line naming the release, the rollback that blocked it and how to unblock it."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(block.at, UTC).strftime("%Y-%m-%d %H:%M UTC") if block.at else "earlier"
    return BLOCKED.format(release=block.release, environment=block.environment, reason=block.reason or "rolled back",
                          by=block.by, when=when)


def check_not_blocked(ledger: Ledger, release: str, environment: Environment) -> None:
    """A release rolled back in ``environment`` (automatically, by ``rollback`` or ``rollout abort``)
    is not rolled out there again until ``modelops release unblock``."""
    block = ledger.block(release, environment.name)
    if block is not None:
        raise ReleaseBlockedError(block)


#: Actions :func:`check_allowed` is asked about.
UNBLOCK = "unblock"
ROLLOUT_CONTROL = "rollout"


def check_allowed(user: str, action: str, environment: Environment) -> None:
    """The one place that decides whether ``user`` may ``action`` (``unblock``, ``rollout``: pause,
    resume, abort, promote) in ``environment``; raises :class:`GateError` if not. modelops has no
    access rules yet, so every identity may: per-environment permissions (pipelines/access.yaml) are
    being added and decide here, so every command that asks keeps asking this function."""
