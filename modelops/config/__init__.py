"""Model and pipeline configuration: JSON Schemas, loading from the working tree or a git ref, typed
immutable config objects with the source position of every value.

Public API (stable; changes are additive):

Files and schemas
    ``models/<name>/model.yaml`` (kind Model), ``pipelines/environments.yaml`` (kind Environments),
    ``pipelines/policy.yaml`` (kind Policy; optional). JSON Schemas (draft 2020-12) ship in
    ``modelops/config/schemas/``: :func:`schema_text` ``(kind) -> str`` with kind ``model``,
    ``environments`` or ``policy``.

Workspace (the one seam to git)
    ``Workspace.discover(path)`` finds the repo root (nearest folder above ``path`` holding
    ``pipelines/`` or ``.git``); ``ws.at(ref)`` reads the same repo at a git ref without checking it
    out. ``ws.head_commit``, ``ws.is_dirty(paths)``, ``ws.changed_models(since_ref)``,
    ``ws.model_folders()``, ``ws.read_bytes(rel)``, ``ws.sha256(rel)``,
    ``ws.escape_reason(folder, rel)``, ``ws.user_email()``, ``ws.commit_author(commit)``. Git errors
    become :class:`~modelops.errors.InputError`.

Loading
    Strict (raise ``InputError`` naming file:line:col):
    ``load_model(ws, name_or_path, ref=None) -> ModelConfig``,
    ``load_environments(ws, ref=None) -> Environments``, ``load_policy(ws, ref=None) -> Policy``,
    ``find_model_folder(ws, name_or_path) -> str``.
    Lenient (collect problems as findings; used by validate): ``read_model(ws, folder)``,
    ``read_environments(ws)``, ``read_policy(ws)`` each ``-> Loaded[T]`` with ``.value`` (None
    when unusable), ``.findings``, ``.fatal``, and the raw ``.document`` / ``.source`` when the
    file parsed.

Config objects (frozen dataclasses)
    :class:`ModelConfig`: ``name``, ``metadata`` (name, team, description, labels), ``clouds``
    (``("local", "aws")`` by default; ``supports_cloud(cloud)``), ``container`` (framework +
    framework_version or image; ``handler`` with contract ``inference-toolkit`` | ``djl-python``
    and entry_point; ``serving`` DJL/LMI options with ``properties()`` and ``environment()``;
    ``env``; ``requirements``), ``artifacts`` (path | uri, sha256, parameters, generated_by;
    signed as a whole by ``artifacts.sig``), ``resources`` (instance_type, instance_count, autoscaling), ``security``,
    ``tests`` (cases file, load profile with SLOs), ``rollout`` (overrides), ``environments``
    (per-environment overrides), ``folder``/``file`` (repo-relative), ``ref``, ``source``.
    ``resources_for(env_name)`` (the base with the environment's override merged). Positions: ``model.position("spec", "resources", "instance_type") -> Position(file, line, column)``.

    :class:`Environments`: iterable of :class:`Environment` in file order; ``get(name)`` (InputError
    with "did you mean"), ``promotion``, ``previous(name)``, ``next(name)``, ``deploy_targets(clouds)``,
    ``roll_back_completed_regions``. Each :class:`Environment`: name, cloud (``local`` | ``aws``),
    account, regions, waves (tuples of regions; a wave's regions deploy in parallel), approval
    (required, four_eyes), rollout (:class:`RolloutPolicy`: strategy, step_size
    (:class:`CapacitySize`), wait_interval_seconds, termination_wait_seconds,
    max_execution_timeout_seconds, alarms), builder, synthetic_traffic, aws (role_arn, profile),
    security defaults (execution_role, kms_key, vpc per region); ``check_regions(regions)``
    (InputError naming a region it does not have).

Effective config (``modelops.config.effective``: where a model and an environment meet)
    ``effective(model, environment) -> Effective`` (resources, rollout, ``security(region)``,
    ``rollout_problems()``); ``rollout_for(model, environment)``; ``security_for(model, environment,
    region)`` (environment defaults <- model <- model's env override, placeholders
    ``{account}``/``{region}``/``{environment}`` filled); ``check_runs(model, environment)``
    (InputError when the model does not run on the environment's cloud).

Rollout strategies (``modelops.config.rollout``: the one table)
    :data:`STRATEGIES` name -> :class:`Strategy` (SageMaker routing type, size member, allowed share
    of the fleet, traffic steps); ``problems(policy, environment=, instance_count=)`` (what SageMaker
    would refuse), ``total_wait(policy, count)``, ``routing(policy)`` (TrafficRoutingConfiguration).

    :class:`Policy`: fail_on, per-rule settings (``severity_of``, ``environments_of``),
    ``allows_instance_type(env, type)``, artifact_locations, bandit thresholds,
    signed_artifacts_required_in, capacity_headroom, ``judgment`` (:class:`Judgment`: confidence,
    max_rounds, on_inconclusive, latency_quantile/latency_margin, error_margin, min_agreement,
    agreement_by_environment, ``min_agreement_for(env)``).

Regression cases (``models/<name>/tests/cases.yaml``, kind Cases; schema ``cases``)
    ``read_cases(ws, model) -> Loaded[Cases]`` (lenient), ``load_cases(ws, model, ref=None) -> Cases``
    (strict). :class:`Cases` (file, cases, ``load_mix()``) of :class:`Case` (name, request
    (content_type, accept, body bytes), expect (status, latency_ms, json_schema, checks), weight,
    position). See ``modelops/config/cases.py``. Replay files (``spec.tests.replay``, JSON lines):
    ``read_replay(ws, model) -> Loaded[tuple[CaseRequest, ...]]``, ``load_replay(ws, model, ref=None)``.

Answer rules (``spec.answers``; ``modelops.config.answers``)
    ``model.answers``: :class:`AnswerRules` (expect_change, rules) of :class:`AnswerRule` (path, kind
    in equals | tolerance | cosine | top_k | similarity, threshold, top_k, length_ratio);
    ``modelops.verify.answers.compare`` applies them.

Findings
    :class:`Finding` ``(rule, severity, location, message, hint, model, fatal)``,
    :class:`Location` ``(file, line, column, path)``, :class:`Severity` (info < warning < error).
    ``modelops.policy`` re-exports them.

Catalog (data files, no sagemaker import)
    ``modelops.config.catalog``: ``instance_type(name) -> InstanceType | None`` (vCPU, memory, GPUs,
    GPU memory), ``instance_type_names()``, ``dlc_accounts()``, ``frameworks()``.
"""

from modelops.config.answers import AnswerRule, AnswerRules
from modelops.config.cases import Case, CaseRequest, Cases, load_cases, load_replay, read_cases, read_replay
from modelops.config.effective import Effective, check_runs, effective, rollout_for, security_for
from modelops.config.environments import Environment, Environments
from modelops.config.findings import Finding, Location, Severity
from modelops.config.loading import (
    Loaded,
    find_model_folder,
    load_environments,
    load_model,
    load_policy,
    read_environments,
    read_model,
    read_policy,
)
from modelops.config.model import Artifact, Container, ModelConfig, Resources, ServingOptions
from modelops.config.policy import Judgment, Policy
from modelops.config.rollout import STRATEGIES, CapacitySize, RolloutPolicy, Strategy
from modelops.config.schema import schema_text
from modelops.config.security import Security
from modelops.config.workspace import Workspace
from modelops.config.yamlsource import Position, SourceMap

__all__ = [
    "STRATEGIES",
    "AnswerRule",
    "AnswerRules",
    "Artifact",
    "CapacitySize",
    "Case",
    "CaseRequest",
    "Cases",
    "Container",
    "Effective",
    "Environment",
    "Environments",
    "Finding",
    "Judgment",
    "Loaded",
    "Location",
    "ModelConfig",
    "Policy",
    "Position",
    "Resources",
    "RolloutPolicy",
    "Security",
    "ServingOptions",
    "Severity",
    "SourceMap",
    "Strategy",
    "Workspace",
    "check_runs",
    "effective",
    "find_model_folder",
    "load_cases",
    "load_environments",
    "load_model",
    "load_policy",
    "load_replay",
    "read_cases",
    "read_environments",
    "read_model",
    "read_policy",
    "read_replay",
    "rollout_for",
    "schema_text",
    "security_for",
]
