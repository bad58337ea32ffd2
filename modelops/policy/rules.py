"""The catalog of rules: every finding names one of these ids.

A rule has a default severity; ``pipelines/policy.yaml`` may change it (or turn it off) and, for
environment-scoped rules, choose the environments where it is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops.config.findings import Severity

E, W = Severity.error, Severity.warning


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    #: Environments where an environment-scoped rule applies by default; None: not environment-scoped.
    environments: tuple[str, ...] | None = None


_ALL = [
    # Reading files (fatal ones make validate exit 2).
    Rule("yaml.syntax", E, "the file is not valid YAML"),
    Rule("yaml.encoding", E, "the file is not UTF-8"),
    Rule("yaml.too-large", E, "the file is larger than 1 MiB"),
    Rule("yaml.alias-bomb", E, "aliases expand to too many nodes"),
    Rule("yaml.too-deep", E, "the document nests too deeply"),
    Rule("yaml.not-a-mapping", E, "the document is not a mapping"),
    Rule("yaml.duplicate-key", E, "a key appears twice in one mapping"),
    Rule("config.missing-file", E, "a config file does not exist"),
    Rule("config.unreadable", E, "a config file cannot be read"),
    # Schema and consistency.
    Rule("schema.invalid", E, "a value does not match the schema"),
    Rule("schema.unknown-key", E, "a key the schema does not know"),
    Rule("config.waves", E, "prod waves must cover the environment's regions exactly once"),
    Rule("config.promotion", E, "the promotion order must name every environment once"),
    Rule("config.rollout", E, "a rollout policy is incomplete or inconsistent"),
    Rule("config.missing-path", E, "a file the model config names does not exist"),
    Rule("config.symlink", E, "a symlink in the code folder (build packs regular files only)"),
    Rule("config.duplicate-name", E, "two model folders declare the same metadata.name"),
    Rule("config.name-mismatch", W, "metadata.name differs from the model folder's name"),
    Rule("config.unknown-environment", E, "an override names an environment that does not exist"),
    Rule("config.handler", E, "the handler contract does not fit the container"),
    Rule("config.framework-version", E, "the framework version is not a known DLC version"),
    Rule("config.dlc", E, "no Deep Learning Container for the framework version, processor or region"),
    Rule("config.autoscaling", E, "autoscaling bounds are inconsistent"),
    Rule("config.data-capture", E, "data capture is enabled without a destination"),
    Rule("config.tests", E, "the regression cases cannot run the tests (or traffic) deploy needs"),
    Rule("config.environment-gap", E, "the model skips an environment whose tests a later one needs"),
    Rule("config.deprecated", W, "a setting that is no longer used (it is ignored; the message says what replaced it)"),
    Rule("cases.duplicate-name", E, "two regression cases have the same name"),
    Rule("cases.missing-file", E, "a case's request file cannot be read"),
    Rule("cases.any-model-error", W, "a case expects any container error (status 424 without model_error)"),
    Rule("cases.replay", E, "a line of a replay file (spec.tests.replay) is not a request"),
    # Security.
    Rule("security.image-registry", E, "images must come from an AWS Deep Learning Container registry"),
    Rule("security.image-unpinned", E, "images must be pinned (a version tag that is not latest, or a digest)"),
    Rule("security.image-digest", W, "images pinned by tag only, not by digest"),
    Rule("security.secret-in-env", E, "environment variables must not hold secrets"),
    Rule("security.path-escape", E, "paths may not leave the model folder"),
    Rule("security.artifact-sha256", E, "an artifact's content does not match its pinned sha256"),
    Rule("security.artifact-missing", E, "an artifact file is missing and nothing generates it"),
    Rule("security.artifact-location", E, "artifacts must live in an allowed location"),
    Rule("security.artifact-signature", E, "artifacts must be signed in this environment", ()),
    Rule("security.instance-type", E, "the instance type is not allowed in this environment",
         ("dev", "staging", "prod")),
    Rule("security.kms-required", E, "a KMS key is required in this environment", ("staging", "prod")),
    Rule("security.vpc-required", E, "a VPC config is required in this environment", ("staging", "prod")),
    Rule("security.network-isolation", E, "network isolation is required in this environment", ("staging", "prod")),
    Rule("security.execution-role", E, "a scoped execution role is required in this environment",
         ("staging", "prod")),
    Rule("security.bandit", E, "bandit found an issue in the inference code"),
    # Capacity.
    Rule("capacity.unknown-instance-type", E, "not a SageMaker instance type modelops knows"),
    Rule("capacity.tensor-parallel", E, "tensor_parallel_degree must divide the instance's GPU count"),
    Rule("capacity.gpu-memory", E, "weights plus headroom must fit the GPUs' memory"),
    Rule("capacity.memory", E, "weights plus headroom must fit the instance's memory"),
    Rule("capacity.gpu-required", E, "GPU serving options on an instance without GPUs"),
    Rule("capacity.artifact-size", W, "the model's artifact files are larger than the policy allows"),
    # Rollouts.
    Rule("rollout.step-size", E, "canary/linear sizes must be within SageMaker's limits"),
    Rule("rollout.timeout", E, "the execution timeout must exceed the sum of the waits"),
    Rule("rollout.limits", E, "waits, timeout and alarm period within SageMaker's and CloudWatch's limits"),
    # The policy file itself.
    Rule("policy.unknown-rule", W, "policy.yaml names a rule that does not exist"),
    Rule("policy.unknown-environment", W, "policy.yaml names an environment that does not exist"),
    # Access control (pipelines/access.yaml).
    Rule("access.unknown-group", E, "access.yaml names a group it does not define"),
    Rule("access.reserved-group", E, "access.yaml defines the built-in group anyone"),
    Rule("access.unknown-environment", W, "access.yaml names an environment that does not exist"),
    Rule("access.pattern", E, "a member pattern matches everything, or cannot mean what it says"),
    Rule("access.empty-group", W, "a group has no members"),
    Rule("access.changed", W, "the change edits access.yaml: its owners must review it"),
]

RULES: dict[str, Rule] = {r.id: r for r in _ALL}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]


def register_rule(new: Rule) -> Rule:
    """Add a rule (for checkers other modules add, e.g. hadolint findings from build)."""
    RULES.setdefault(new.id, new)
    return RULES[new.id]
