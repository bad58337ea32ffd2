"""What must hold before a release enters an environment: a ledger whose history verifies, a clean tree
(GitOps), a clean policy, tests passed for the same release in the previous environment, an approval
where required, and no block (a release rolled back there stays out until unblocked); and who may act
where (``pipelines/access.yaml``).

The one place that decides who may: :func:`check_permission` for any action, :func:`check_approver`
when someone approves, :func:`check_approval` when a deploy counts the approvals. Identities are
normalised (:mod:`modelops.identity`) before anything compares them.

Every gate fails closed: no test record is not a pass, an unknown author is not "someone else", an
approval by someone no longer allowed to approve does not count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.config import Environment, Environments, ModelConfig, Workspace
from modelops.config.access import APPROVE, Access, Decision, load_access
from modelops.errors import GateError, InputError
from modelops.identity import Identity, identify, normalise

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Approval, Ledger, ReleaseRecord
    from modelops.ledger.records import ReleaseBlock
    from modelops.runtime import Runtime

DIRTY_TREE = "{environment} deploys only committed releases: {paths} {have} uncommitted changes"
DIRTY_TREE_HINT = "commit (or stash) the changes, or deploy a commit with --ref"
POLICY_FAILED = "policy: {count} finding(s) block {model} at {where}: {first}"
POLICY_FAILED_HINT = "run `modelops validate {folder}` for the full list"
TESTS_MISSING = "release {release} has no passing tests in {previous} (needed before {environment})"
TESTS_MISSING_HINT = "deploy it to {previous} and run `modelops test {model} --env {previous}`, or use --through {environment}"
APPROVAL_MISSING = "release {release} needs an approval for {environment}{four_eyes}{allowed}{ignored}"
APPROVAL_MISSING_HINT = ("someone{other} runs `modelops approve {release} --env {environment}` (with `--show` first "
                         "to see what it lets in: the answer diff against the release serving there)")
SELF_APPROVAL = "four-eyes: {user} wrote commit {commit} of release {release} and may not approve it for {environment}"
SELF_APPROVAL_HINT = "ask someone else to approve it"
ACCESS_DENIED = "access: {who} may not {action} in {environment}: {rule} allows {groups}"
ACCESS_DENIED_HINT = "ask someone in {groups} ({members}), or change {file} (a change its owners review)"
UNAUTHENTICATED = ("access: {who} may not {action} in {environment}: {rule} requires an authenticated identity "
                   "(an STS caller or a CI user)")
UNAUTHENTICATED_HINT = ("run it where modelops can tell who you are: from the CI pipeline, or with the environment's "
                        "AWS credentials (an aws environment)")
UNKNOWN_AUTHOR = ("four-eyes: the author of commit {commit} of release {release} is not known here (this checkout "
                  "does not hold that commit), so {user} cannot be told apart from the author for {environment}")
UNKNOWN_AUTHOR_HINT = "approve from a clone holding the commit (git fetch; no shallow clone)"
BLOCKED = ("release {release} is blocked in {environment} since {when}: {reason}, by {by}; "
           "run `modelops release unblock {release} --env {environment} --reason TEXT` to allow it again")
BLOCKED_HINT = "or fix it and commit: a new release is not blocked"
UNKNOWN_RELEASE = "unknown release {release}: the ledger has no build of it"
UNKNOWN_RELEASE_HINT = "build it first (`modelops build MODEL`, or `modelops deploy MODEL` to dev)"


def acting_identity(runtime: Runtime, ws: Workspace, clients: Clients | None = None) -> Identity:
    """Who acts in the environment ``clients`` serve: a CI user, else on aws the STS caller
    (``clients.caller_arn()``), else what git or ``$MODELOPS_USER`` says (unauthenticated)."""
    caller = clients.caller_arn if clients is not None and not clients.is_local else None
    return identify(runtime.environ, git_email=ws.user_email, caller_arn=caller)


def access_rules(ws: Workspace) -> Access:
    """``pipelines/access.yaml`` as committed at HEAD (the working tree outside git or before the first
    commit): an uncommitted edit does not loosen it, and neither does deploying an older commit."""
    return load_access(ws, "HEAD" if ws.is_git and ws.head_commit else None)


def release_author(record: ReleaseRecord, ws: Workspace) -> str | None:
    """Who wrote a release, normalised: as its build recorded it, else the commit's author in this
    checkout (None when neither knows: four-eyes then fails closed)."""
    found = record.author or ws.commit_author(record.commit)
    return normalise(found) if found else None


def check_permission(access: Access, identity: Identity, action: str, environment: str) -> Decision:
    """:class:`GateError` naming who, what and the rule (file:line) unless ``identity`` may do
    ``action`` in ``environment``; the decision when it may."""
    decision = access.decide(identity, action, environment)
    if decision.allowed:
        return decision
    rule = decision.rule
    if decision.unauthenticated:
        raise GateError(UNAUTHENTICATED.format(who=identity, action=action, environment=environment, rule=rule.where),
                        hint=UNAUTHENTICATED_HINT)
    groups = ", ".join(rule.groups)
    members = ", ".join(access.members(rule.groups)) or "no members"
    raise GateError(ACCESS_DENIED.format(who=identity, action=action, environment=environment, rule=rule.where,
                                         groups=groups),
                    hint=ACCESS_DENIED_HINT.format(groups=groups, members=members, file=access.file))


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


def check_ledger(ledger: Ledger, model: str, releases: tuple[str, ...] = ()) -> None:
    """The model's history (and, where the backend keeps them, the copies under ``releases``)
    verifies; else :class:`~modelops.ledger.LedgerTamperedError` (exit 3) naming the first bad entry."""
    ledger.verify(model, releases=releases).raise_if_broken()


def approver_of(approval: Approval) -> Identity:
    """The identity an approval in the ledger records (normalised again: records from before names
    were normalised may carry spaces or capitals)."""
    return Identity(normalise(approval.by), approval.source or "ledger", bool(approval.authenticated),
                    principal=approval.principal or None)


def check_approval(ledger: Ledger, release: str, environment: Environment, author: str | None,
                   access: Access) -> None:
    """A deploy counts the approvals of ``release`` for ``environment`` that still hold: by someone the
    access rules let approve there now, and, with four-eyes, not by its author (an unknown author
    makes nobody "someone else")."""
    if not environment.approval.required:
        return
    ignored: list[str] = []
    valid = []
    for approval in ledger.approvals(release, environment.name):
        who = approver_of(approval)
        decision = access.decide(who, APPROVE, environment.name)
        if environment.approval.four_eyes and (author is None or who.is_author(author)):
            ignored.append(f"{who.name} is its author" if author else f"its author is unknown, so {who.name} may be")
        elif not decision.allowed:
            ignored.append(f"{who} may not approve there ({decision.rule.where})")
        else:
            valid.append(approval)
    if valid:
        return
    four = " from someone other than its author" + (f" ({author})" if author else "") if (
        environment.approval.four_eyes) else ""
    rule = access.rule(environment.name, APPROVE)
    allowed = "" if rule.is_open else f" in {', '.join(rule.groups)}"
    why = f" (not counted: {'; '.join(ignored)})" if ignored else ""
    raise GateError(APPROVAL_MISSING.format(release=release, environment=environment.name, four_eyes=four,
                                            allowed=allowed, ignored=why),
                    hint=APPROVAL_MISSING_HINT.format(release=release, environment=environment.name,
                                                      other=" else" if environment.approval.four_eyes else ""))


def check_approver(identity: Identity, author: str | None, access: Access, *, release: str, commit: str,
                   environment: Environment) -> Decision:
    """At approval time: the approver may approve in ``environment`` (access.yaml: group, and an
    authenticated identity where asked), and with four-eyes is not the author, compared on every
    normalised name the approver goes by (an unknown author fails closed)."""
    decision = check_permission(access, identity, APPROVE, environment.name)
    if environment.approval.four_eyes:
        if author is None:  # fail closed, without claiming the approver wrote the commit
            raise GateError(UNKNOWN_AUTHOR.format(user=identity.name, commit=commit[:12], release=release,
                                                  environment=environment.name), hint=UNKNOWN_AUTHOR_HINT)
        if identity.is_author(author):
            raise GateError(SELF_APPROVAL.format(user=identity.as_author(author), commit=commit[:12], release=release,
                                                 environment=environment.name), hint=SELF_APPROVAL_HINT)
    return decision


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
