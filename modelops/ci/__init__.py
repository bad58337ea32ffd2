"""CI integration: what a change touches, the pull-request check, generated Spinnaker pipelines.

Everything here is a library the ``modelops ci`` commands (and Jenkins, Spinnaker and GitHub through
them) call; nothing prints.

Public API:

- :func:`changed` ``(ChangedRequest(since, ref=None), Runtime) -> ChangedResult``: the models changed
  since the merge base of ``since`` (all of them when ``pipelines/`` changed) with the environments
  each deploys to, and the environments' regions and waves in promotion order. ``to_dict()`` is the
  ``modelops ci changed --output json`` document the Jenkinsfile fans out from.
- :func:`check_pr` ``(PrRequest(base, bandit=True, plan=True, cloud_plan=True), Runtime, *,
  cloud_planner=None) -> PrResult``: validate the changed models, compare their findings with the
  base (``new``, ``fixed``, ``kept``), plan per (model, environment, region) (:class:`PlanRow`), and
  ``report()`` / ``markdown()`` / ``to_dict()``; ``exit_status`` 1 when a gate would fail.
  ``cloud_planner`` plugs deploy's plan in (default: :func:`modelops.ci.plan.default_cloud_planner`,
  which never starts the local cloud and never writes to a cloud).
- :func:`generate` ``(SpinnakerRequest(out=None, check=False), Runtime) -> SpinnakerResult``: write or
  check ``spinnaker/modelops-deploy.json``; :func:`spinnaker_pipeline` ``(Environments) -> dict`` the
  document; :func:`spinnaker_problems` ``(document) -> list[str]`` its schema and graph check
  (the JSON Schema ships as ``modelops/ci/spinnaker_pipeline.schema.json``).
"""

from modelops.ci.changed import ChangedModel, ChangedRequest, ChangedResult, Stage, changed
from modelops.ci.plan import CloudPlanner, CloudVerdict, PlanRow, config_plan, desired_state
from modelops.ci.pr import PrRequest, PrResult, check_pr, render_pr_markdown
from modelops.ci.spinnaker import SpinnakerRequest, SpinnakerResult, generate
from modelops.ci.spinnaker import pipeline as spinnaker_pipeline
from modelops.ci.spinnaker import problems as spinnaker_problems
from modelops.ci.spinnaker import schema as spinnaker_schema

__all__ = [
    "ChangedModel",
    "ChangedRequest",
    "ChangedResult",
    "CloudPlanner",
    "CloudVerdict",
    "PlanRow",
    "PrRequest",
    "PrResult",
    "SpinnakerRequest",
    "SpinnakerResult",
    "Stage",
    "changed",
    "check_pr",
    "config_plan",
    "desired_state",
    "generate",
    "render_pr_markdown",
    "spinnaker_pipeline",
    "spinnaker_problems",
    "spinnaker_schema",
]
