"""Requests and results of the deploy service: frozen, with ``to_dict()`` for ``--output json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelops.deploy.rollout import FAILED, ROLLED_BACK, SKIPPED, SUCCEEDED, RegionOutcome
from modelops.errors import ExitStatus
from modelops.ledger.chain import LedgerTamperedError, Verification

# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    """Deploy ``model`` (a name or folder) to ``environment``, or through every environment of the
    promotion order up to ``through``; the release is read from git at ``ref`` (None: HEAD, plus the
    working tree's changes where the environment allows a dirty tree). ``regions`` limits a
    one-environment deploy to those regions (CI runs one prod region per stage); empty: every region."""

    model: str
    environment: str | None = None
    through: str | None = None
    ref: str | None = None
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromoteRequest:
    release: str
    to: str


@dataclass(frozen=True)
class ApproveRequest:
    release: str
    environment: str
    comment: str = ""


@dataclass(frozen=True)
class RollbackRequest:
    model: str
    environment: str
    region: str | None = None


@dataclass(frozen=True)
class StatusRequest:
    model: str | None = None


@dataclass(frozen=True)
class HistoryRequest:
    model: str


@dataclass(frozen=True)
class PlanRequest:
    """What would change if ``model`` at ``ref`` were deployed to ``environment`` (helper C's ``ci pr``)."""

    model: str
    environment: str
    ref: str | None = None


@dataclass(frozen=True)
class SyncRequest:
    environment: str
    ref: str | None = None
    dry_run: bool = False


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """``result`` is succeeded | rolled_back | failed; ``message`` says why when not succeeded."""

    model: str
    release: str
    result: str
    deployments: tuple[RegionOutcome, ...] = ()
    message: str = ""
    environments: tuple[str, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        if self.result == SUCCEEDED:
            return ExitStatus.OK
        if self.result == ROLLED_BACK:
            return ExitStatus.GATE_FAILED
        return ExitStatus.ENVIRONMENT

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "release": self.release, "result": self.result, "message": self.message,
                "environments": list(self.environments), "deployments": [d.to_dict() for d in self.deployments]}


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
    """One region: what is deployed, what is wanted and the differences (empty: in sync)."""

    environment: str
    region: str
    endpoint: str
    deployed_release: str | None
    desired_release: str
    action: str  # create | update | none | busy
    changes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.environment, "region": self.region, "endpoint": self.endpoint,
                "deployed_release": self.deployed_release, "desired_release": self.desired_release,
                "action": self.action, "changes": list(self.changes)}


@dataclass(frozen=True)
class Plan:
    model: str
    environment: str
    release: str
    commit: str | None
    regions: tuple[RegionPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(r.action != "none" for r in self.regions)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "release": self.release, "commit": self.commit,
                "has_changes": self.has_changes, "regions": [r.to_dict() for r in self.regions]}


@dataclass(frozen=True)
class SyncResult:
    environment: str
    commit: str | None
    plans: tuple[Plan, ...]
    deployed: tuple[DeployResult, ...] = ()
    errors: tuple[str, ...] = ()
    dry_run: bool = False
    #: The worst exit status among ``errors`` (a config that does not load: 2, the cloud or the
    #: state dir failing: 3), so a nightly drift check tells a broken environment from drift.
    error_status: ExitStatus = ExitStatus.GATE_FAILED

    @property
    def drift(self) -> tuple[Plan, ...]:
        return tuple(p for p in self.plans if p.has_changes)

    @property
    def exit_status(self) -> ExitStatus:
        statuses = [d.exit_status for d in self.deployed]
        if self.errors:
            statuses.append(self.error_status)
        if self.dry_run and self.drift:  # a drift check (e.g. a nightly job) fails on drift
            statuses.append(ExitStatus.GATE_FAILED)
        return ExitStatus(max(statuses, default=ExitStatus.OK))

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.environment, "commit": self.commit,
                "drift": [p.to_dict() for p in self.drift], "in_sync": [p.model for p in self.plans if not p.has_changes],
                "deployed": [d.to_dict() for d in self.deployed], "errors": list(self.errors)}


@dataclass(frozen=True)
class Weight:
    fleet: str  # blue (serving) | green (being deployed)
    config: str
    variant: str
    weight: float
    desired_weight: float
    instances: int

    def to_dict(self) -> dict[str, Any]:
        return {"fleet": self.fleet, "config": self.config, "variant": self.variant, "weight": self.weight,
                "desired_weight": self.desired_weight, "instances": self.instances}


@dataclass(frozen=True)
class EndpointState:
    """One row of ``status``: a model's endpoint in one environment and region."""

    model: str
    environment: str
    region: str
    endpoint: str
    release: str | None
    status: str  # the EndpointStatus, or "absent"
    weights: tuple[Weight, ...] = ()
    last_step: str | None = None
    failure_reason: str | None = None

    @property
    def health(self) -> str:
        if self.status == "InService" and not self.failure_reason:
            return "healthy"
        if self.status == "absent":
            return "-"
        return "degraded" if self.status in ("InService", "Updating", "RollingBack", "Creating") else "unhealthy"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "region": self.region, "endpoint": self.endpoint,
                "release": self.release, "status": self.status, "health": self.health,
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
