"""Environments, waves and rollouts: the SageMaker calls through boto3, gates, rollback, plan, drift.

Public API (each takes a frozen request and the :class:`~modelops.runtime.Runtime`; results are
frozen with ``to_dict()`` = the ``--output json`` document)::

    deploy(DeployRequest(model, environment=None, through=None, ref=None, regions=()), runtime) -> DeployResult
        # DeployResult: model, release, result ("succeeded" | "rolled_back" | "failed"), message, environments,
        #   deployments: tuple[RegionOutcome(environment, region, endpoint, release, status, detail,
        #   previous_release, serving)], .exit_status (0 / 1 rolled back / 3 failed)
        # gates raise GateError (exit 1): access (pipelines/access.yaml), dirty tree, policy, tests in the
        #   previous env, approval; LedgerTamperedError (exit 3) when the model's history does not verify
    promote(PromoteRequest(release, to), runtime) -> DeployResult
    approve(ApproveRequest(release, environment, comment=""), runtime) -> ApprovalResult
    rollback(RollbackRequest(model, environment, region=None), runtime) -> DeployResult
    status(StatusRequest(model=None), runtime) -> StatusReport      # EndpointState rows with weights
    history(HistoryRequest(model), runtime) -> HistoryReport
    verify_ledgers(LedgerVerifyRequest(model=None, environment=None), runtime) -> LedgerVerifyReport
        # LedgerCheck(environments, verification) per distinct ledger; .ok, .exit_status (0 / 3), .first_error()
    plan(PlanRequest(model, environment, ref=None), runtime) -> Plan  # RegionPlan per region (ci pr)
    sync(SyncRequest(environment, ref=None, dry_run=False), runtime) -> SyncResult

Modules: :mod:`~modelops.deploy.service` (deploy, promote, approve), :mod:`~modelops.deploy.rollback`,
:mod:`~modelops.deploy.inspection` (status, history, plan, sync), :mod:`~modelops.deploy.repo` (what every
command opens), :mod:`~modelops.deploy.gates`, :mod:`~modelops.deploy.rollout` (the reconcile loop).
``modelops invoke`` is verify's (:func:`modelops.verify.invoke.invoke_model`).

Pure pieces, unit-tested without a cloud: :mod:`modelops.deploy.specs` (request bodies,
DeploymentConfig, alarms), :mod:`modelops.deploy.machine` (the rollout step machine).

Importing this package loads no cloud library: boto3 and the ledger come in inside the functions.
"""

from modelops.deploy.api import (
    ApprovalResult,
    ApproveRequest,
    DeployRequest,
    DeployResult,
    HistoryReport,
    HistoryRequest,
    LedgerCheck,
    LedgerVerifyReport,
    LedgerVerifyRequest,
    Plan,
    PlanRequest,
    PromoteRequest,
    RegionPlan,
    RollbackRequest,
    StatusReport,
    StatusRequest,
    SyncRequest,
    SyncResult,
)
from modelops.deploy.inspection import history, plan, status, sync, verify_ledgers
from modelops.deploy.rollback import rollback
from modelops.deploy.service import approve, deploy, promote

__all__ = [
    "ApprovalResult", "ApproveRequest", "DeployRequest", "DeployResult", "HistoryReport", "HistoryRequest",
    "LedgerCheck", "LedgerVerifyReport", "LedgerVerifyRequest", "Plan", "PlanRequest", "PromoteRequest",
    "RegionPlan", "RollbackRequest", "StatusReport", "StatusRequest", "SyncRequest", "SyncResult", "approve",
    "deploy", "history", "plan", "promote", "rollback", "status", "sync", "verify_ledgers",
]
