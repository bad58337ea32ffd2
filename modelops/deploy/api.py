"""Requests and results of the deploy service: frozen, with ``to_dict()`` for ``--output json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.deploy.drift import FieldDiff
from modelops.deploy.health import ABSENT, Health
from modelops.deploy.rollout import FAILED, ROLLED_BACK, SKIPPED, SUCCEEDED, RegionOutcome
from modelops.errors import ExitStatus
from modelops.ledger.chain import LedgerTamperedError, Verification

if TYPE_CHECKING:
    from modelops.verify import TestReport

#: ``deploy --through``: the release failed an environment's tests, so it went no further (exit 1).
TESTS_FAILED = "tests_failed"

# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    """Deploy ``model`` (a name or folder) to ``environment``, or through every environment of the
    promotion order up to ``through``; the release is read from git at ``ref`` (None: HEAD, plus the
    working tree's changes where the environment allows a dirty tree). ``regions`` limits a
    one-environment deploy to those regions (CI runs one prod region per stage); empty: every region.
    ``replay``: a file of requests captured elsewhere (replay JSON lines, or SageMaker Data Capture
    records) that a judged canary mirrors besides the model's own inputs."""

    model: str
    environment: str | None = None
    through: str | None = None
    ref: str | None = None
    regions: tuple[str, ...] = ()
    replay: Path | None = None


@dataclass(frozen=True)
class PromoteRequest:
    release: str
    to: str
    replay: Path | None = None  # as DeployRequest.replay


@dataclass(frozen=True)
class ApproveRequest:
    release: str
    environment: str
    comment: str = ""


@dataclass(frozen=True)
class RollbackRequest:
    """Take ``model`` in ``environment`` (only ``region``: None for all) back to the release before;
    the release rolled back is blocked there, with ``reason``."""

    model: str
    environment: str
    region: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class StatusRequest:
    model: str | None = None


@dataclass(frozen=True)
class HistoryRequest:
    """A model's ledger entries, filtered: by environment, region, release, entry kinds (``release``,
    ``build``, ``step``, ``test``, ``approval``, ``block``, ``intent``), since a time (``30m``, ``2h``,
    ``7d``, ``2024-05-01``, ``2024-05-01T12:00``; UTC), and the last ``limit`` of what is left."""

    model: str
    environment: str | None = None
    region: str | None = None
    release: str | None = None
    since: str | None = None
    limit: int | None = None
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanRequest:
    """What would change if ``model`` at ``ref`` were deployed to ``environment`` (helper C's ``ci pr``)."""

    model: str
    environment: str
    ref: str | None = None


@dataclass(frozen=True)
class SyncRequest:
    """Reconcile ``environment`` with every model at ``ref``; ``dry_run`` (``--check``) only reports."""

    environment: str
    ref: str | None = None
    dry_run: bool = False


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """``result`` is succeeded | rolled_back | tests_failed | failed; ``message`` says why when not
    succeeded. ``tests``: the test runs between the stages of ``--through`` (the failed one last,
    its ``failed_checks`` with their figures)."""

    model: str
    release: str
    result: str
    deployments: tuple[RegionOutcome, ...] = ()
    message: str = ""
    environments: tuple[str, ...] = ()
    tests: tuple[TestReport, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        if self.result == SUCCEEDED:
            return ExitStatus.OK
        if self.result in (ROLLED_BACK, TESTS_FAILED):
            return ExitStatus.GATE_FAILED
        return ExitStatus.ENVIRONMENT

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "release": self.release, "result": self.result, "message": self.message,
                "environments": list(self.environments), "deployments": [d.to_dict() for d in self.deployments],
                "tests": [{"environment": t.environment, "release": t.release, "passed": t.passed,
                           "failed_checks": [c.to_dict() for c in t.failed_checks]} for t in self.tests]}


def overall(outcomes: tuple[RegionOutcome, ...]) -> str:
    statuses = {o.status for o in outcomes}
    if FAILED in statuses:
        return FAILED
    if ROLLED_BACK in statuses:
        return ROLLED_BACK
    return SUCCEEDED


def why(outcomes: tuple[RegionOutcome, ...]) -> str:
    """One line: where it went wrong first, what that did to the rest."""
    bad = [o for o in outcomes if o.status in (FAILED, ROLLED_BACK) and "because the rollout" not in o.detail]
    if not bad:
        bad = [o for o in outcomes if o.status in (FAILED, ROLLED_BACK)]
    if not bad:
        return ""
    first = bad[0]
    parts = [f"{first.release} {first.status.replace('_', ' ')} in {first.environment}/{first.region}: {first.detail}"]
    also = [o.region for o in outcomes if o is not first and o.status == ROLLED_BACK]
    if also:
        parts.append(f"also rolled back in {', '.join(also)}")
    skipped = [o.region for o in outcomes if o.status == SKIPPED]
    if skipped:
        parts.append(f"{', '.join(skipped)} not touched")
    return "; ".join(parts)


@dataclass(frozen=True)
class RegionPlan:
    """One region: what serves (observed), what is wanted, and the field-level differences.

    ``action``: ``create`` (no endpoint), ``update`` (a rollout: another endpoint config), ``repair``
    (counts, weights, alarms, autoscaling or tags, in place, no rollout), ``busy`` (a rollout is under
    way) or ``none``. ``changes`` are the drift lines; ``diff`` every difference (:mod:`~modelops.deploy.drift`,
    ``next rollout`` ones included)."""

    environment: str
    region: str
    endpoint: str
    deployed_release: str | None
    desired_release: str
    action: str  # create | update | repair | none | busy
    changes: tuple[str, ...] = ()
    diff: tuple[FieldDiff, ...] = ()
    health: Health = field(default_factory=lambda: Health(ABSENT))
    status: str = "absent"

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.environment, "region": self.region, "endpoint": self.endpoint,
                "deployed_release": self.deployed_release, "desired_release": self.desired_release,
                "action": self.action, "changes": list(self.changes), "status": self.status,
                "diff": [d.to_dict() for d in self.diff], "health": self.health.to_dict()}


@dataclass(frozen=True)
class Plan:
    """What deploying ``model`` at a ref to ``environment`` changes, per region. ``blocked``: the
    release was rolled back there and is refused (the one-line reason), so nothing will roll it out."""

    model: str
    environment: str
    release: str
    commit: str | None
    regions: tuple[RegionPlan, ...]
    blocked: str | None = None

    @property
    def has_changes(self) -> bool:
        return any(r.action != "none" for r in self.regions)

    @property
    def exit_status(self) -> ExitStatus:
        """1 when a deploy would change something (drift) or is refused (blocked), else 0."""
        return ExitStatus.GATE_FAILED if self.has_changes or self.blocked else ExitStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "release": self.release, "commit": self.commit,
                "has_changes": self.has_changes, "blocked": self.blocked,
                "regions": [r.to_dict() for r in self.regions]}


@dataclass(frozen=True)
class SyncResult:
    """``degraded``: one line per endpoint whose live health is degraded or unhealthy (drift or not):
    a nightly check fails on them too."""

    environment: str
    commit: str | None
    plans: tuple[Plan, ...]
    deployed: tuple[DeployResult, ...] = ()
    errors: tuple[str, ...] = ()
    dry_run: bool = False
    #: The worst exit status among ``errors`` (a config that does not load: 2, the cloud or the
    #: state dir failing: 3), so a nightly drift check tells a broken environment from drift.
    error_status: ExitStatus = ExitStatus.GATE_FAILED
    degraded: tuple[str, ...] = ()

    @property
    def drift(self) -> tuple[Plan, ...]:
        return tuple(p for p in self.plans if p.has_changes)

    @property
    def exit_status(self) -> ExitStatus:
        statuses = [d.exit_status for d in self.deployed]
        if self.errors:
            statuses.append(self.error_status)
        if self.degraded:
            statuses.append(ExitStatus.GATE_FAILED)
        if self.dry_run and self.drift:  # a drift check (e.g. a nightly job) fails on drift
            statuses.append(ExitStatus.GATE_FAILED)
        return ExitStatus(max(statuses, default=ExitStatus.OK))

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.environment, "commit": self.commit,
                "drift": [p.to_dict() for p in self.drift], "in_sync": [p.model for p in self.plans if not p.has_changes],
                "deployed": [d.to_dict() for d in self.deployed], "errors": list(self.errors),
                "degraded": list(self.degraded)}


@dataclass(frozen=True)
class Weight:
    fleet: str  # blue (serving) | green (being deployed)
    config: str
    variant: str
    weight: float
    desired_weight: float
    instances: int
    desired_instances: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fleet": self.fleet, "config": self.config, "variant": self.variant, "weight": self.weight,
                "desired_weight": self.desired_weight, "instances": self.instances,
                "desired_instances": self.desired_instances}


@dataclass(frozen=True)
class EndpointState:
    """One row of ``status``: a model's endpoint in one environment and region, as the cloud says.
    ``release`` is the release whose endpoint config serves (None: absent, or a config no known release
    has: ``config`` names it); ``release_tag`` only what the tag says; ``health`` from live signals."""

    model: str
    environment: str
    region: str
    endpoint: str
    release: str | None
    status: str  # the EndpointStatus, or "absent"
    weights: tuple[Weight, ...] = ()
    last_step: str | None = None
    failure_reason: str | None = None
    health: Health = field(default_factory=lambda: Health(ABSENT))
    release_tag: str | None = None
    config: str | None = None

    @property
    def release_text(self) -> str:
        if self.status == "absent":
            return "-"
        return self.release or f"unknown (config {self.config})"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "region": self.region, "endpoint": self.endpoint,
                "release": self.release, "release_tag": self.release_tag, "config": self.config,
                "status": self.status, "health": self.health.state, "health_detail": self.health.to_dict(),
                "weights": [w.to_dict() for w in self.weights], "last_step": self.last_step,
                "failure_reason": self.failure_reason}


@dataclass(frozen=True)
class StatusReport:
    endpoints: tuple[EndpointState, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoints": [e.to_dict() for e in self.endpoints]}


@dataclass(frozen=True)
class HistoryReport:
    model: str
    entries: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "entries": list(self.entries)}


@dataclass(frozen=True)
class LedgerVerifyRequest:
    """Verify the ledgers' hash chains: of ``model`` only (None: every model), of ``environment``'s
    ledger only (None: every distinct ledger of the environments)."""

    model: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class LedgerCheck:
    """One ledger's verification and the environments that write to it."""

    environments: tuple[str, ...]
    verification: Verification

    def to_dict(self) -> dict[str, Any]:
        return {"environments": list(self.environments), **self.verification.to_dict()}


@dataclass(frozen=True)
class LedgerVerifyReport:
    """``ledger verify``: exit 0 when every chain verifies, 3 when one does not (the environment's
    state is damaged: no change of input or gate makes it pass)."""

    ledgers: tuple[LedgerCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.verification.ok for c in self.ledgers)

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.ok else ExitStatus.ENVIRONMENT

    def first_error(self) -> LedgerTamperedError | None:
        """The error a deploy of the first broken model would raise."""
        for check in self.ledgers:
            if check.verification.problems:
                return LedgerTamperedError(check.verification.ledger, check.verification.problems[0])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "ledgers": [c.to_dict() for c in self.ledgers]}


@dataclass(frozen=True)
class ApprovalResult:
    """``by`` is the approver's normalised identity, ``source`` where it came from (sts, a CI, env,
    git, os), ``rule`` the access rule that let them (file:line, or none)."""

    model: str
    release: str
    environment: str
    by: str
    recorded: bool  # False: this person had approved it already
    source: str = ""
    authenticated: bool = False
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "release": self.release, "env": self.environment, "by": self.by,
                "source": self.source, "authenticated": self.authenticated, "rule": self.rule,
                "recorded": self.recorded}
