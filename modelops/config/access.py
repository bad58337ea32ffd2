"""Access control as data: ``pipelines/access.yaml``, typed and immutable, with the position of every rule.

Groups name identities (e-mails, IAM ARN patterns, CI users); per environment, each action
(``deploy``, ``approve``, ``rollback``, ``unblock``) lists the groups allowed and may require an
authenticated identity. Which rule applies to (environment, action): the environment's own, else
``defaults``, else none, and then anyone may (so an environment nobody listed stays as open as
without the file). Without the file at all, anyone may do anything: :data:`OPEN` (four-eyes still
holds where ``environments.yaml`` asks for it).

:meth:`Access.decide` answers for one identity; ``modelops.deploy.gates`` turns a refusal into the
one-line error and decides what it means for approvals.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from modelops.config.environments import Environments
from modelops.config.findings import Finding, Location, Severity, json_path
from modelops.config.loading import Loaded, _build, _strict, read_document
from modelops.config.workspace import Workspace
from modelops.config.yamlsource import SourceMap
from modelops.identity import Identity

ACCESS_FILE = "pipelines/access.yaml"
DEPLOY, APPROVE, ROLLBACK, UNBLOCK = "deploy", "approve", "rollback", "unblock"
ACTIONS = (DEPLOY, APPROVE, ROLLBACK, UNBLOCK)
ANYONE = "anyone"  # the built-in group of every identity

UNKNOWN_GROUP = "{where} names group '{name}', which access.yaml does not define{suggestion}"
UNKNOWN_GROUP_HINT = "define it under groups (or use the built-in group anyone)"
UNKNOWN_ENVIRONMENT = "environment '{name}' is not in pipelines/environments.yaml{suggestion}"
MATCHES_ALL = "the pattern {pattern!r} matches every {what}: say anyone instead, so that readers see it"
UNBALANCED = "the pattern {pattern!r} has a '[' without its ']' (matched as a plain character)"
RESERVED_GROUP = "group '{name}' is built in (every identity): it may not be defined"
EMPTY_GROUP = "group '{name}' has no members: an action only it may do, nobody may"


@dataclass(frozen=True)
class Group:
    """A named set of identities; members are shell-style patterns."""

    name: str
    emails: tuple[str, ...] = ()
    arns: tuple[str, ...] = ()
    ci_users: tuple[str, ...] = ()

    def admits(self, identity: Identity) -> str | None:
        """The member pattern that matches ``identity`` (its own name or principal, never a claim),
        else None."""
        email = identity.email()
        if email is not None:
            found = next((p for p in self.emails if fnmatch.fnmatchcase(email, p.casefold())), None)
            if found:
                return found
        arns = identity.arns()
        found = next((p for p in self.arns if any(fnmatch.fnmatchcase(a, p) for a in arns)), None)
        if found:
            return found
        ci = identity.ci_user()
        if ci is not None:
            return next((p for p in self.ci_users if fnmatch.fnmatchcase(ci, p.casefold())), None)
        return None

    @property
    def members(self) -> tuple[str, ...]:
        return (*self.emails, *self.arns, *self.ci_users)


@dataclass(frozen=True)
class Rule:
    """Who may do ``action`` in ``environment``: ``groups`` (``anyone`` for all), and whether only an
    authenticated identity may. ``file``/``line``/``column`` locate it (None: no rule, anyone may)."""

    action: str
    groups: tuple[str, ...] = (ANYONE,)
    authenticated: bool = False
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        """``pipelines/access.yaml:14:15``, or what stands for no rule."""
        if self.file is None:
            return "no access rule (anyone may)"
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def is_open(self) -> bool:
        return ANYONE in self.groups and not self.authenticated


@dataclass(frozen=True)
class Decision:
    """An answer of :meth:`Access.decide`: allowed or not, by which rule, and why."""

    allowed: bool
    rule: Rule
    member: str | None = None  # "group: pattern" that admitted the identity
    unauthenticated: bool = False  # refused only because the identity is not authenticated


@dataclass(frozen=True)
class Access:
    """``pipelines/access.yaml``. ``environments`` maps environment -> action -> :class:`Rule`;
    ``defaults`` maps action -> :class:`Rule`. ``file`` None: there is no file (:data:`OPEN`)."""

    groups: Mapping[str, Group] = field(default_factory=lambda: MappingProxyType({}))
    environments: Mapping[str, Mapping[str, Rule]] = field(default_factory=lambda: MappingProxyType({}))
    defaults: Mapping[str, Rule] = field(default_factory=lambda: MappingProxyType({}))
    owners: tuple[str, ...] = ()
    file: str | None = None
    source: SourceMap | None = field(default=None, repr=False, compare=False)
    ref: str | None = None

    def rule(self, environment: str, action: str) -> Rule:
        """The rule for ``action`` in ``environment``: its own, else the default, else anyone may."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        own = self.environments.get(environment, {}).get(action)
        return own or self.defaults.get(action) or Rule(action)

    def decide(self, identity: Identity, action: str, environment: str) -> Decision:
        """Whether ``identity`` may do ``action`` in ``environment``, and by which rule."""
        rule = self.rule(environment, action)
        member = ANYONE if ANYONE in rule.groups else next(
            (f"{g}: {m}" for g in rule.groups if g in self.groups and (m := self.groups[g].admits(identity))), None)
        if member is None:
            return Decision(False, rule)
        if rule.authenticated and not identity.authenticated:
            return Decision(False, rule, member, unauthenticated=True)
        return Decision(True, rule, member)

    def members(self, groups: tuple[str, ...]) -> tuple[str, ...]:
        """The member patterns of ``groups``, in order, once each."""
        return tuple(dict.fromkeys(m for g in groups if g in self.groups for m in self.groups[g].members))


#: No access.yaml: anyone may do anything.
OPEN = Access()


def access_from_document(document: Mapping[str, Any], *, file: str, source: SourceMap,
                         ref: str | None = None) -> Access:
    """Build an :class:`Access` from a document that passed the access schema."""
    groups = {name: Group(name, tuple(g.get("emails") or ()), tuple(g.get("arns") or ()), tuple(g.get("ci_users") or ()))
              for name, g in (document.get("groups") or {}).items()}

    def rules(block: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Rule]:
        strict = set(block.get("authenticated") or ())
        out = {}
        for action in ACTIONS:
            if action in block:
                pos = source.position((*path, action), key=True)
                out[action] = Rule(action, tuple(block[action]), action in strict, file, pos.line, pos.column)
            elif action in strict:  # "authenticated" alone: anyone, as long as authenticated
                pos = source.position((*path, "authenticated"), key=True)
                out[action] = Rule(action, (ANYONE,), True, file, pos.line, pos.column)
        return MappingProxyType(out)

    return Access(
        groups=MappingProxyType(groups),
        environments=MappingProxyType({env: rules(block, ("environments", env))
                                       for env, block in (document.get("environments") or {}).items()}),
        defaults=rules(document.get("defaults") or {}, ("defaults",)),
        owners=tuple(document.get("owners") or ()),
        file=file, source=source, ref=ref,
    )


def read_access(workspace: Workspace, environments: Environments | None = None) -> Loaded[Access]:
    """Read ``pipelines/access.yaml`` leniently (:data:`OPEN` when there is none), with its
    consistency checks: groups it names exist, environments exist in ``environments`` (when
    given), patterns that match everything or cannot mean what they say."""
    file = ACCESS_FILE
    if not workspace.exists(file):
        return Loaded(file, OPEN)
    data, source, findings = read_document(workspace, file, "access")
    if data is not None and source is not None and not any(f.rule.startswith("schema.") for f in findings):
        findings.extend(access_consistency(data, source, environments))
    return _build(file, data, source, findings, lambda: access_from_document(
        data, file=file, source=source, ref=workspace.ref))  # type: ignore[arg-type]


def load_access(workspace: Workspace, ref: str | None = None) -> Access:
    """``pipelines/access.yaml`` at ``ref`` (:data:`OPEN` when absent); :class:`InputError` naming
    file:line:col when it does not validate (an unknown group, a bad pattern...)."""
    ws = workspace if ref is None or ref == workspace.ref else workspace.at(ref)
    return _strict(read_access(ws))


def access_consistency(document: Mapping[str, Any], source: SourceMap,
                       environments: Environments | None) -> list[Finding]:
    """Problems the schema cannot express in a schema-valid access document."""
    out: list[Finding] = []

    def add(rule: str, message: str, path: tuple[str | int, ...], hint: str = "", *, key: bool = False) -> None:
        pos = source.position(path, key=key)
        out.append(Finding(rule, Severity.error, Location(source.file, pos.line, pos.column, json_path(path)),
                           message, hint))

    groups = document.get("groups") or {}
    for path, name in _group_references(document):
        if name != ANYONE and name not in groups:
            close = difflib.get_close_matches(name, [*groups, ANYONE], n=1)
            add("access.unknown-group", UNKNOWN_GROUP.format(where=json_path(path[:-1])[2:], name=name,
                                                             suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
                path, UNKNOWN_GROUP_HINT)
    for name, group in groups.items():
        if name == ANYONE:
            add("access.reserved-group", RESERVED_GROUP.format(name=name), ("groups", name), key=True)
        elif not any(group.get(k) for k in ("emails", "arns", "ci_users")):
            add("access.empty-group", EMPTY_GROUP.format(name=name), ("groups", name), key=True)
        for kind, unrelated in _UNRELATED.items():
            for i, pattern in enumerate(group.get(kind) or ()):
                at = ("groups", name, kind, i)
                if all(fnmatch.fnmatchcase(value, pattern.casefold() if kind == "emails" else pattern)
                       for value in unrelated):
                    add("access.pattern", MATCHES_ALL.format(pattern=pattern, what=kind[:-1].replace("_", " ")), at)
                elif pattern.count("[") > pattern.count("]"):
                    add("access.pattern", UNBALANCED.format(pattern=pattern), at)
    if environments is not None:
        names = list(environments.names)
        for env in document.get("environments") or {}:
            if env not in names:
                close = difflib.get_close_matches(env, names, n=1)
                add("access.unknown-environment", UNKNOWN_ENVIRONMENT.format(
                    name=env, suggestion=f" (did you mean '{close[0]}'?)" if close else ""), ("environments", env),
                    key=True)
    return out


# Values no real pattern would admit all of: a pattern that does matches everything.
_UNRELATED = {
    "emails": ("a@b", "zz.top@yy.example.org"),
    "arns": ("arn:aws:iam::000000000000:user/a", "arn:aws-cn:sts::999999999999:assumed-role/zz/yy"),
}


def _group_references(document: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for i, name in enumerate(document.get("owners") or ()):
        yield ("owners", i), name
    blocks: list[tuple[tuple[str, ...], Mapping[str, Any]]] = [(("defaults",), document.get("defaults") or {})]
    blocks += [(("environments", env), block) for env, block in (document.get("environments") or {}).items()]
    for path, block in blocks:
        for action in ACTIONS:
            for i, name in enumerate(block.get(action) or ()):
                yield (*path, action, i), name
