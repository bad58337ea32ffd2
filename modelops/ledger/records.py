"""The ledger's entries: frozen, JSON-serializable records of what happened to a model.

Every record names its model and carries ``at`` (seconds since the epoch, from ``runtime.clock``).
A record built with ``at=0.0`` (the default) is stamped by the ledger's clock when appended, so
callers need not read the clock themselves. Records are never changed once appended; what is true
now (the serving release, the last good one, a gate) is derived from them in order.

Secrets: records have fixed fields (no free-form config dumps), and the free-text fields
(``detail``, ``summary``, ``comment``) and a build's URLs pass through :func:`redact` before they
are stored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

# Deployment step statuses. A rollout in one region is a run of steps ending in a terminal one.
STARTED = "started"
IN_PROGRESS = "in_progress"
SUCCEEDED = "succeeded"  # the release serves all traffic in that region
ROLLED_BACK = "rolled_back"  # the release was taken out again (alarm, manual rollback, failed wave)
FAILED = "failed"  # the rollout broke off; the endpoint serves what it served before
STEP_STATUSES = frozenset({STARTED, IN_PROGRESS, SUCCEEDED, ROLLED_BACK, FAILED})
TERMINAL_STATUSES = frozenset({SUCCEEDED, ROLLED_BACK, FAILED})

# Test kinds.
REGRESSION = "regression"
LOAD = "load"
TEST_KINDS = (REGRESSION, LOAD)

# Free text that looks like it carries a secret: `password=...`, `HF_TOKEN: ...`, `apiKey=...`,
# presigned URLs' signatures, `https://user:pass@host`, AWS access key ids. A name may be quoted, as in
# JSON (`"api_key": "..."`: a request body quoted in a judgment's disagreements). Names are split into
# words (snake, kebab, dotted, camelCase) and their last word decides, so `max_tokens=512`,
# `token_count: 7` or `tokenizer: x` are left alone while `HF_TOKEN=...` and `X-Amz-Signature=...`
# are masked.
_NAME_THEN_SEPARATOR = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]*)[\"']?\s*[=:]\s*")
_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s,;&\"']+")
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "secret", "token", "credential",
                           "credentials", "signature", "apikey", "auth"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"),
                           ("client", "secret"), ("session", "token")})
_URL_USERINFO = re.compile(r"(://[^/\s:@]+:)[^/\s@]+(@)")
_AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """Whether a setting called ``name`` holds a secret, by its words (``HF_TOKEN``, ``dbPassword``)."""
    # The last word decides: HF_TOKEN and accessToken hold one, token_count and secret_name do not.
    words = [w.lower() for w in _WORD.findall(name)]
    return bool(words) and (words[-1] in _SECRET_WORDS or tuple(words[-2:]) in _SECRET_PAIRS)


def redact(text: str) -> str:
    """``text`` with the values of secret-named assignments, URL passwords and AWS access key ids masked."""
    # Names are found without consuming their values, so `url: https://h/?token=abc` finds `token`.
    spans: list[tuple[int, int]] = []
    for m in _NAME_THEN_SEPARATOR.finditer(text):
        value = _VALUE.match(text, m.end()) if is_secret_name(m.group(1)) else None
        if value is not None and (not spans or value.start() >= spans[-1][1]):
            spans.append((value.start(), value.end()))
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2)}", text)
    return _AWS_ACCESS_KEY.sub(REDACTED, text)


class _Record:
    """Shared behaviour of ledger records (each is a frozen dataclass with ``model`` and ``at``)."""

    KIND: ClassVar[str]
    model: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, ``entry`` (the record type: release, build, step, test, approval, block,
        intent, judgment) first."""
        body: dict[str, Any] = {"entry": self.KIND}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            body[f.name] = dict(value) if isinstance(value, Mapping) else value
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def release_id(self) -> str | None:
        """The release this record is about (None for none)."""
        return getattr(self, "release", None)

    @property
    def environment_name(self) -> str | None:
        return getattr(self, "environment", None)

    @property
    def region_name(self) -> str | None:
        return getattr(self, "region", None)


@dataclass(frozen=True)
class ReleaseRecord(_Record):
    """A release was built: one model at one git commit with its build and config digests.

    ``author`` is the commit's author (git's, normalised; for a build of uncommitted changes, who
    made them: git's ``user.email``), whom four-eyes keeps from approving it; ``created_by`` is who
    built it and ``source`` where that identity came from (see :mod:`modelops.identity`). Both are
    empty in records from before they were kept."""

    KIND: ClassVar[str] = "release"
    model: str
    release: str
    commit: str
    config_digest: str
    build_digest: str
    created_by: str
    at: float = 0.0
    author: str = ""
    source: str = ""


@dataclass(frozen=True)
class BuildRecord(_Record):
    """Where a release's image and model data live for one environment and region."""

    KIND: ClassVar[str] = "build"
    model: str
    release: str
    environment: str
    region: str
    image_uri: str
    model_data_url: str
    digest: str
    at: float = 0.0

    def __post_init__(self) -> None:
        # A presigned or credentialed URL must not land in the ledger with its secret.
        object.__setattr__(self, "image_uri", redact(self.image_uri))
        object.__setattr__(self, "model_data_url", redact(self.model_data_url))


@dataclass(frozen=True)
class DeploymentStep(_Record):
    """One step of a rollout of ``release`` in (environment, region).

    ``step`` names what happened (``"model-created"``, ``"endpoint-update-started"``,
    ``"canary-baking"``, ``"rolled-back"``...); ``status`` is one of :data:`STEP_STATUSES`;
    ``previous_release`` is what the endpoint served before the rollout (None for a new endpoint).
    """

    KIND: ClassVar[str] = "step"
    model: str
    environment: str
    region: str
    release: str
    step: str
    status: str
    detail: str = ""
    endpoint: str = ""
    previous_release: str | None = None
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STEP_STATUSES:
            raise ValueError(f"step status {self.status!r} is not one of {sorted(STEP_STATUSES)}")
        object.__setattr__(self, "detail", redact(self.detail))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class TestRecord(_Record):
    """A regression or load test of ``release`` in (environment, region).

    ``metrics`` holds figures by name: ``p50_ms``, ``p95_ms``, ``p99_ms``, ``rps``, ``error_rate``
    for load tests (the baseline and trend shown beside a run, never gated), anything numeric otherwise.
    """

    __test__ = False  # not a pytest test class

    KIND: ClassVar[str] = "test"
    model: str
    release: str
    environment: str
    region: str
    kind: str
    passed: bool
    summary: str = ""
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in TEST_KINDS:
            raise ValueError(f"test kind {self.kind!r} is not one of {TEST_KINDS}")
        object.__setattr__(self, "metrics", MappingProxyType({str(k): float(v) for k, v in self.metrics.items()}))
        object.__setattr__(self, "summary", redact(self.summary))


@dataclass(frozen=True)
class Approval(_Record):
    """Someone approved ``release`` for ``environment``: ``by`` (a normalised identity), where it came
    from (``source``: sts, jenkins, github, spinnaker, env, git, os; empty in records from before it
    was kept), whether that source authenticated it, and the STS ``principal`` a CI user acted through."""

    KIND: ClassVar[str] = "approval"
    model: str
    release: str
    environment: str
    by: str
    comment: str = ""
    at: float = 0.0
    source: str = ""
    authenticated: bool = False
    principal: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "comment", redact(self.comment))


@dataclass(frozen=True)
class ReleaseBlock(_Record):
    """A release refused in ``environment`` (``blocked``: it was rolled back there, automatically or
    by hand, in ``region``) or allowed there again (not ``blocked``: ``modelops release unblock``),
    by whom and why. The latest of a (release, environment) decides (:meth:`Ledger.block`)."""

    KIND: ClassVar[str] = "block"
    model: str
    release: str
    environment: str
    blocked: bool
    by: str
    reason: str = ""
    region: str | None = None
    at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", redact(self.reason))


#: A judgment record keeps each worst disagreement's input and answers up to this many characters
#: (a record must stay small: DynamoDB items hold 400 KB).
JUDGMENT_TEXT_LIMIT = 2000


@dataclass(frozen=True)
class JudgmentRecord(_Record):
    """A judged canary's step: ``release`` (the candidate) judged against ``reference`` (the release
    serving) in (environment, region) with ``percent`` of the traffic; ``outcome`` is pass, fail or
    inconclusive; ``judgment`` the whole judgment as ``Judgment.to_dict`` gives it (every verdict with
    its figures; ``worst``: the worst disagreements with their inputs, text redacted and cut to
    :data:`JUDGMENT_TEXT_LIMIT`). What an approval of the release in a later environment shows."""

    KIND: ClassVar[str] = "judgment"
    model: str
    release: str
    environment: str
    region: str
    reference: str
    percent: int
    outcome: str
    judgment: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    at: float = 0.0

    def __post_init__(self) -> None:
        body = dict(self.judgment)
        if "worst" in body:
            body["worst"] = [{k: _cut(redact(v)) if isinstance(v, str) else v for k, v in dict(d).items()}
                             for d in body["worst"]]
        object.__setattr__(self, "judgment", MappingProxyType(body))


def _cut(text: str) -> str:
    return text if len(text) <= JUDGMENT_TEXT_LIMIT else text[:JUDGMENT_TEXT_LIMIT] + "..."


# What someone asks of a rollout in flight (``modelops rollout ...``).
PAUSE = "pause"
RESUME = "resume"
ABORT = "abort"
PROMOTE = "promote"
INTENT_ACTIONS = (PAUSE, RESUME, ABORT, PROMOTE)


@dataclass(frozen=True)
class RolloutIntent(_Record):
    """Someone asked the rollout of ``release`` in (``environment``, ``region``) to pause, resume,
    abort (roll back now) or promote (finish without further bake). Recorded, not done: the rollout
    loop reads the intents at each pass (:meth:`Ledger.rollout_control`) and honours them."""

    KIND: ClassVar[str] = "intent"
    model: str
    environment: str
    region: str
    release: str
    action: str
    by: str
    reason: str = ""
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.action not in INTENT_ACTIONS:
            raise ValueError(f"rollout intent {self.action!r} is not one of {INTENT_ACTIONS}")
        object.__setattr__(self, "reason", redact(self.reason))


@dataclass(frozen=True)
class RolloutControl:
    """The intents in force for one attempt of a rollout in one region (see
    :meth:`Ledger.rollout_control`): ``paused`` until a resume, promote or abort; ``abort`` and
    ``promote`` once asked. The rollout loop consults it at every pass, before every step."""

    paused: RolloutIntent | None = None
    abort: RolloutIntent | None = None
    promote: RolloutIntent | None = None

    @classmethod
    def of(cls, intents: Iterable[RolloutIntent]) -> RolloutControl:
        """Fold ``intents`` (oldest first) into what is in force."""
        paused = abort = promote = None
        for intent in intents:
            if intent.action == PAUSE:
                paused = intent
            elif intent.action == RESUME:
                paused = None
            elif intent.action == ABORT:
                abort, paused = intent, None
            elif intent.action == PROMOTE:
                promote, paused = intent, None
        return cls(paused=paused, abort=abort, promote=promote)


Entry: TypeAlias = (ReleaseRecord | BuildRecord | DeploymentStep | TestRecord | Approval | ReleaseBlock
                    | RolloutIntent | JudgmentRecord)
ENTRY_TYPES: Mapping[str, type[Any]] = MappingProxyType(
    {cls.KIND: cls for cls in (ReleaseRecord, BuildRecord, DeploymentStep, TestRecord, Approval, ReleaseBlock,
                               RolloutIntent, JudgmentRecord)}
)
#: The ``entry`` names of every record type (``history --kind``).
ENTRY_KINDS = tuple(ENTRY_TYPES)


def entry_from_dict(body: Mapping[str, Any]) -> Entry:
    """The record a :meth:`to_dict` made (unknown keys, e.g. from a newer modelops, are ignored)."""
    cls = ENTRY_TYPES.get(str(body.get("entry")))
    if cls is None:
        raise ValueError(f"unknown ledger entry type {body.get('entry')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    entry: Entry = cls(**{k: v for k, v in body.items() if k in names})
    return entry


def entry_from_json(text: str) -> Entry:
    return entry_from_dict(json.loads(text))


def stamped(entry: Entry, now: float) -> Entry:
    """``entry`` with ``at`` set to ``now`` when the caller left it at 0."""
    return entry if entry.at else dataclasses.replace(entry, at=now)


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or wants) a lock: the acting user and the process, by host and pid."""

    user: str
    host: str
    pid: int

    @classmethod
    def current(cls, user: str) -> LockHolder:
        """This process, acting for ``user`` (``runtime.user``)."""
        return cls(user=user, host=socket.gethostname(), pid=os.getpid())

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> LockHolder:
        return cls(user=str(body["user"]), host=str(body["host"]), pid=int(body["pid"]))


@dataclass(frozen=True)
class LockInfo:
    """A held lock on (model, environment): its holder, when it was taken and last heartbeat."""

    model: str
    environment: str
    holder: LockHolder
    acquired_at: float
    heartbeat_at: float
    token: str
    ttl: float = 300.0  # seconds without a heartbeat after which another host may take it over

    def age(self, now: float) -> float:
        """Seconds since the lock was taken."""
        return max(0.0, now - self.acquired_at)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "environment": self.environment, "holder": self.holder.to_dict(),
                "acquired_at": self.acquired_at, "heartbeat_at": self.heartbeat_at, "ttl": self.ttl}


@dataclass(frozen=True)
class RegionState:
    """What the history says about one (model, environment, region).

    ``release`` is the release serving there, by the rule of :func:`modelops.ledger.serving_release`
    (a succeeded rollout serves; a failed one, or a rolled-back one that was not serving, leaves
    what served; rolling back the serving release returns to its ``previous_release``).
    ``last_step`` is the latest step of any status, so an unfinished rollout shows as ``in_progress``.
    """

    model: str
    environment: str
    region: str
    release: str | None
    last_step: DeploymentStep | None

    @property
    def in_progress(self) -> bool:
        return self.last_step is not None and not self.last_step.is_terminal

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "environment": self.environment, "region": self.region,
                "release": self.release, "in_progress": self.in_progress,
                "last_step": self.last_step.to_dict() if self.last_step else None}
