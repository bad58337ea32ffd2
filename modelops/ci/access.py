"""A pull request that changes ``pipelines/access.yaml`` changes who may deploy, approve, roll back and
unblock: ``ci pr`` flags it as needing review by the file's owners and says what it changes.

The owners are those the file names **at the base**, with the members their groups have there: a
change cannot name its own reviewers. A new file has no base: its own owners are named, and said to
be its own. The flag is a finding (``access.changed``, a warning unless ``policy.yaml`` says
otherwise) located at the first changed line, so it reaches the PR comment, SARIF and JUnit; making
the review mandatory is the forge's job (a CODEOWNERS entry and branch protection), which the hint says.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelops.config.access import ACCESS_FILE, ACTIONS, Access, Rule, read_access
from modelops.config.findings import Finding, Location, Severity
from modelops.config.workspace import Workspace
from modelops.identity import identify

RULE = "access.changed"
CHANGED = "{file} changes who may deploy, approve, roll back or unblock: it needs review by {owners}"
CHANGED_HINT = ("make the review mandatory with a CODEOWNERS line for {file} naming its owners, and branch "
                "protection that requires code owners' review")
NO_OWNERS = "someone who did not write it (the file names no owners)"


@dataclass(frozen=True)
class AccessReview:
    """What a change does to ``pipelines/access.yaml``, and whose review it needs."""

    file: str
    owners: tuple[str, ...]  # owner groups, as the base names them (the head's for a new file)
    reviewers: tuple[str, ...]  # their members' patterns
    changes: tuple[str, ...]  # one line per change, for people
    status: str  # "changed" | "added" | "removed"
    line: int = 1
    changed_by: str | None = None  # the CI user the pipeline ran the check for (github:octocat)
    by_owner: bool = False  # that user is an owner: another one must review

    @property
    def needs(self) -> str:
        """``platform (platform@example.com, github:octocat)``, or who else when there are no owners."""
        if not self.owners:
            return NO_OWNERS
        who = ", ".join(self.reviewers) or "no members"
        other = "another member of " if self.by_owner else ""
        return f"{other}{', '.join(self.owners)} ({who})"

    def finding(self, severity: Severity) -> Finding:
        message = CHANGED.format(file=self.file, owners=self.needs)
        if self.status == "added":
            message += " (a new file: the owners are its own)"
        return Finding(RULE, severity, Location(self.file, self.line, 1, "$"), message,
                       CHANGED_HINT.format(file=self.file))

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": self.status, "owners": list(self.owners), "reviewers": list(self.reviewers),
                "changes": list(self.changes), "changed_by": self.changed_by, "by_owner": self.by_owner}


def review_access(ws: Workspace, base_ws: Workspace, files: tuple[str, ...],
                  environ: Mapping[str, str]) -> AccessReview | None:
    """The review a change to access.yaml needs (None when the change does not touch it)."""
    if ACCESS_FILE not in files:
        return None
    before = read_access(base_ws).value if base_ws.exists(ACCESS_FILE) else None
    after = read_access(ws).value if ws.exists(ACCESS_FILE) else None
    status = "added" if not base_ws.exists(ACCESS_FILE) else "removed" if not ws.exists(ACCESS_FILE) else "changed"
    source = before if before is not None and before.file else after
    owners = source.owners if source is not None else ()
    reviewers = source.members(owners) if source is not None else ()
    actor = identify(environ)  # the CI user the pipeline passes (GitHub: the pull request's actor)
    ci = actor if actor.is_ci else None
    by_owner = ci is not None and source is not None and any(
        g in source.groups and source.groups[g].admits(ci) for g in owners)
    return AccessReview(ACCESS_FILE, owners, reviewers, _changes(before, after, status), status,
                        _first_changed_line(base_ws, ws, status), ci.ci_user() if ci else None, by_owner)


def _first_changed_line(base_ws: Workspace, ws: Workspace, status: str) -> int:
    if status != "changed":
        return 1
    old = base_ws.read_bytes(ACCESS_FILE).decode("utf-8", "replace").splitlines()
    new = ws.read_bytes(ACCESS_FILE).decode("utf-8", "replace").splitlines()
    for tag, _, _, j1, _ in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            return min(j1 + 1, max(len(new), 1))
    return 1


def _changes(before: Access | None, after: Access | None, status: str) -> tuple[str, ...]:
    if status == "removed":
        return ("the file is deleted: anyone may do anything (four-eyes still applies where environments.yaml asks)",)
    if after is None:
        return ("the new file does not validate (see the findings): deploys and approvals refuse to read it",)
    if before is None:
        before = Access()
    out: list[str] = []
    if before.owners != after.owners:
        out.append(f"owners: {_names(before.owners)} -> {_names(after.owners)}")
    for name in sorted({*before.groups, *after.groups}):
        old = set(before.groups[name].members) if name in before.groups else None
        new = set(after.groups[name].members) if name in after.groups else None
        if old is None:
            out.append(f"group {name} added: {', '.join(sorted(new or ())) or 'no members'}")
        elif new is None:
            out.append(f"group {name} removed")
        elif old != new:
            parts = [f"+{m}" for m in sorted(new - old)] + [f"-{m}" for m in sorted(old - new)]
            out.append(f"group {name}: {', '.join(parts)}")
    places = [("defaults", before.defaults, after.defaults)] + [
        (env, before.environments.get(env, {}), after.environments.get(env, {}))
        for env in sorted({*before.environments, *after.environments})]
    for place, old_rules, new_rules in places:
        for action in ACTIONS:
            old_rule, new_rule = old_rules.get(action), new_rules.get(action)
            if _said(old_rule) != _said(new_rule):
                out.append(f"{place} {action}: {_said(old_rule)} -> {_said(new_rule)}")
    return tuple(out) or ("no change in meaning (layout or comments)",)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) or "none"


def _said(rule: Rule | None) -> str:
    if rule is None:
        return "not set"
    return ", ".join(rule.groups) + (" (authenticated)" if rule.authenticated else "")

