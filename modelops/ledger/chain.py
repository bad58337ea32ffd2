"""The hash chain that makes the ledger tamper-evident, and its verification.

Every entry of a model carries its position in the model's chain (``seq``: 1, 2, 3...), the hash of
the entry before it (``prev_hash``) and its own hash (``entry_hash``), a sha256 over the model, its
position, the previous hash, its id and its stored JSON body. Each backend keeps the model's
**head** (the last position and hash) beside the entries and moves it in the same atomic write as
the append, conditional on the head it read, so concurrent appenders (threads, processes, hosts)
never fork the chain: the loser reads the new head and tries again.

What verification detects, per model: an entry whose body (or the columns copied out of it for
queries) was edited; an entry deleted from the middle (a gap), from the end (the head names a
position that is gone) or reordered (positions out of order, or a previous hash that does not
match); an entry inserted without a link; and, on DynamoDB, a per-release copy that differs from
its chained original, or is missing, or has no original. What it cannot detect: someone with write
access who rewrites a model's whole chain and head consistently (the chain proves the history was
not changed in place, not who wrote it). ``modelops ledger verify --output json`` prints each
model's head hash: kept elsewhere (a CI artifact), it anchors the history up to that point.

Entries written before the chain existed (a ledger from an older modelops) have no position. They
are not rewritten: the first chained entry of a model takes as its previous hash a **genesis** hash
over those older entries' bodies in their order (over none for a new model), so they are covered
from then on; what happened to them before is not knowable, and verification says how many there are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelops.errors import EnvironmentFailedError

CHAIN_VERSION = 1

LEDGER_BROKEN = "ledger {ledger}: {model}: {problem}"
LEDGER_BROKEN_HINT = ("the history was changed outside modelops; `modelops ledger verify` lists what does "
                      "not verify. Restore the ledger from a backup: nothing deploys {model} from it until it verifies")

# What a problem says, after "<model>: ".
EDITED = "entry {where} was changed after it was written (its hash does not match)"
COLUMNS_EDITED = "entry {where} was changed after it was written (its {column} column says {found!r}, its body {wanted!r})"
UNREADABLE = "entry {where} cannot be read ({error})"
BROKEN_LINK = "entry {where} does not follow entry {before} (an entry between them was deleted, or they were reordered)"
GAP = "entry {where} comes after position {before}: the entries between them were deleted"
OUT_OF_ORDER = "entry {where} is out of order (position {position} after {before})"
MOVED = "entry {where} is out of order (position {missing} comes after it)"
UNCHAINED_AFTER = "entry {where} has no place in the chain (written outside modelops, after the chain started)"
GENESIS_CHANGED = "the {count} entries written before the chain started were changed, deleted or reordered since"
HEAD_MISSING = "the last {count} entry(ies) were deleted (the head says position {head}, the last entry is {last})"
HEAD_BEHIND = "entry {where} is beyond the head (position {head}): the head was changed"
NO_HEAD = "the chain has no head (it was deleted)"
HEAD_HASH = "the head's hash does not match entry {where}: the head or the entry was changed"
COPY_CHANGED = "the copy of entry {where} under release {release} differs from the entry"
COPY_MISSING = "entry {where} has no copy under release {release} (the copy was deleted)"
COPY_ORPHAN = "release {release} holds an entry ({what}) that is not in {model}'s history"


def entry_hash(*, model: str, seq: int, prev_hash: str, entry_id: str, body: str) -> str:
    """The hash of one chained entry: sha256 over canonical JSON of what identifies it."""
    text = json.dumps({"v": CHAIN_VERSION, "model": model, "seq": seq, "prev": prev_hash, "id": entry_id,
                       "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def genesis_hash(model: str, legacy_bodies: Iterable[str]) -> str:
    """The previous hash of a model's first chained entry: over the bodies of the entries written
    before the chain (none for a model new to this ledger), in their order."""
    text = json.dumps({"v": CHAIN_VERSION, "model": model, "genesis": [
        hashlib.sha256(body.encode()).hexdigest() for body in legacy_bodies]}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def columns_of(body: Mapping[str, Any]) -> dict[str, str | None]:
    """The columns a backend copies out of an entry's body for its queries."""
    return {"entry": body.get("entry"), "model": body.get("model"), "release": body.get("release"),
            "environment": body.get("environment"), "region": body.get("region")}


@dataclass(frozen=True)
class StoredEntry:
    """One entry as a backend stores it: its chain fields (None for entries older than the chain),
    its body and the columns it copied out of the body for queries (``None`` where none is stored)."""

    entry_id: str
    body: str
    seq: int | None = None
    prev_hash: str | None = None
    entry_hash: str | None = None
    columns: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainProblem:
    """The first thing that does not verify in one model's history."""

    model: str
    message: str
    entry_id: str | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "message": self.message, "entry_id": self.entry_id, "seq": self.seq}


@dataclass(frozen=True)
class ModelChain:
    """What verification found for one model: chained and older entries, the head, the first problem."""

    model: str
    entries: int
    legacy: int
    head: Head | None
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ok": self.ok, "entries": self.entries, "before_chain": self.legacy,
                "head": {"seq": self.head.seq, "hash": self.head.hash} if self.head else None,
                "problem": self.problem.to_dict() if self.problem else None}


@dataclass(frozen=True)
class Verification:
    """``ledger.verify()``: one :class:`ModelChain` per model checked."""

    ledger: str
    models: tuple[ModelChain, ...]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def problems(self) -> tuple[ChainProblem, ...]:
        return tuple(m.problem for m in self.models if m.problem is not None)

    def raise_if_broken(self) -> None:
        """:class:`LedgerTamperedError` naming the first problem, if any."""
        if self.problems:
            raise LedgerTamperedError(self.ledger, self.problems[0])

    def to_dict(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "ok": self.ok, "models": [m.to_dict() for m in self.models]}


class LedgerTamperedError(EnvironmentFailedError):
    """The ledger's history does not verify (exit 3: the environment's state is damaged; no change
    of input or gate makes it pass)."""

    def __init__(self, ledger: str, problem: ChainProblem):
        super().__init__(LEDGER_BROKEN.format(ledger=ledger, model=problem.model, problem=problem.message),
                         hint=LEDGER_BROKEN_HINT.format(model=problem.model))
        self.problem = problem


def describe(entry: StoredEntry) -> str:
    """``7 (approval of iris-0123 for prod)``: how a problem names an entry."""
    try:
        body = json.loads(entry.body)
        what = str(body.get("entry", "entry"))
        parts = [what] + ([f"of {body['release']}"] if body.get("release") else [])
        if body.get("environment"):
            parts.append(f"in {body['environment']}" + (f"/{body['region']}" if body.get("region") else ""))
        label = " ".join(parts)
    except (ValueError, AttributeError):
        label = f"id {entry.entry_id}"
    return f"{entry.seq if entry.seq is not None else '(before the chain)'} ({label})"


def verify_model(model: str, entries: Sequence[StoredEntry], head: Head | None) -> ModelChain:
    """Check one model's entries, in the order the backend keeps them (older entries first, then the
    chain by position), against each other and against the head."""
    legacy = [e for e in entries if e.seq is None]
    chained = [e for e in entries if e.seq is not None]

    def result(problem: str | None, entry: StoredEntry | None = None) -> ModelChain:
        found = None if problem is None else ChainProblem(model, problem, entry.entry_id if entry else None,
                                                          entry.seq if entry else None)
        return ModelChain(model, len(chained), len(legacy), head, found)

    seen_chain = False
    for e in entries:  # an entry without a place, after the chain started, was slipped in
        if e.seq is None and seen_chain:
            return result(UNCHAINED_AFTER.format(where=describe(e)), e)
        seen_chain = seen_chain or e.seq is not None
    for e in entries:
        problem = _body_problem(e)
        if problem:
            return result(problem, e)
    if not chained:
        if head is not None:  # every chained entry is gone, the head remains
            return result(HEAD_MISSING.format(count=head.seq, head=head.seq, last="none"))
        return result(None)
    prev = genesis_hash(model, (e.body for e in legacy))
    before: StoredEntry | None = None
    for e in chained:
        assert e.seq is not None
        expected_seq = 1 if before is None else (before.seq or 0) + 1
        if e.seq != expected_seq:
            if before is not None and e.seq < expected_seq:
                return result(OUT_OF_ORDER.format(where=describe(e), position=e.seq, before=before.seq), e)
            if any(later.seq == expected_seq for later in chained):
                return result(MOVED.format(where=describe(e), missing=expected_seq), e)
            return result(GAP.format(where=describe(e), before=before.seq if before else 0), e)
        if e.prev_hash != prev:
            if before is None:
                return result(GENESIS_CHANGED.format(count=len(legacy)) if legacy else
                              BROKEN_LINK.format(where=describe(e), before="(the start)"), e)
            return result(BROKEN_LINK.format(where=describe(e), before=describe(before)), e)
        if e.entry_hash != entry_hash(model=model, seq=e.seq, prev_hash=prev, entry_id=e.entry_id, body=e.body):
            return result(EDITED.format(where=describe(e)), e)
        prev, before = e.entry_hash, e
    last = chained[-1]
    if head is None:
        return result(NO_HEAD, last)
    if head.seq > (last.seq or 0):
        return result(HEAD_MISSING.format(count=head.seq - (last.seq or 0), head=head.seq, last=last.seq), last)
    if head.seq < (last.seq or 0):
        return result(HEAD_BEHIND.format(where=describe(last), head=head.seq), last)
    if head.hash != last.entry_hash:
        return result(HEAD_HASH.format(where=describe(last)), last)
    return result(None)


def verify_copies(model: str, release: str, copies: Sequence[StoredEntry], chain: Sequence[StoredEntry], *,
                  head_before: int) -> str | None:
    """DynamoDB keeps a copy of each entry naming a release under that release (its queries read
    them): each copy must equal its entry in the model's history, and each entry of the release up to
    ``head_before`` (the head read before the copies) must have its copy. The first problem, or None."""
    by_id = {e.entry_id: e for e in chain}
    for c in copies:
        original = by_id.get(c.entry_id)
        if original is None:
            return COPY_ORPHAN.format(release=release, what=describe(c), model=model)
        if (c.body, c.seq, c.prev_hash, c.entry_hash, dict(c.columns)) != (
                original.body, original.seq, original.prev_hash, original.entry_hash, dict(original.columns)):
            return COPY_CHANGED.format(where=describe(original), release=release)
    have = {c.entry_id for c in copies}
    for e in chain:
        if e.entry_id in have or (e.seq is not None and e.seq > head_before):
            continue
        try:
            names = json.loads(e.body).get("release")
        except ValueError:
            continue
        if names == release:
            return COPY_MISSING.format(where=describe(e), release=release)
    return None


def _body_problem(e: StoredEntry) -> str | None:
    try:
        body = json.loads(e.body)
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        return UNREADABLE.format(where=describe(e), error=exc)
    wanted = columns_of(body)
    for column, found in e.columns.items():
        if column in wanted and (found or None) != (wanted[column] or None):
            return COLUMNS_EDITED.format(where=describe(e), column=column, found=found, wanted=wanted[column])
    return None
