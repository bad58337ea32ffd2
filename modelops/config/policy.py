"""The typed, immutable security policy (``pipelines/policy.yaml``): the policy as data.

The rules themselves (what each checks, its default severity and environments) are code in
``modelops.policy``; this object only says how this repository tunes them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from modelops.config.findings import Severity
from modelops.config.yamlsource import SourceMap

BANDIT_LEVELS = ("low", "medium", "high")


@dataclass(frozen=True)
class RuleSetting:
    """How the policy tunes one rule: ``severity`` ("off" disables it) and, for environment-scoped
    rules, the ``environments`` where it is enforced. None: the rule's default."""

    severity: str | None = None
    environments: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Policy:
    fail_on: Severity = Severity.error
    rules: Mapping[str, RuleSetting] = field(default_factory=lambda: MappingProxyType({}))
    instance_types: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    artifact_locations: tuple[str, ...] = ()
    artifact_max_size_mb: float = 1024.0
    bandit_severity: str = "medium"
    bandit_confidence: str = "medium"
    signed_artifacts_required_in: tuple[str, ...] = ()
    capacity_headroom: float = 0.2
    # Load test against the baseline (modelops test): allowed p95 increase (fraction, and an absolute
    # slack in ms under which noise never fails) and allowed throughput drop (fraction).
    baseline_p95_tolerance: float = 0.25
    baseline_p95_slack_ms: float = 5.0
    baseline_throughput_tolerance: float = 0.25
    file: str | None = None  # None: no policy file, the defaults above
    source: SourceMap | None = field(default=None, repr=False, compare=False)
    ref: str | None = None

    def severity_of(self, rule: str, default: Severity) -> Severity | None:
        """The severity findings of ``rule`` get (None: the rule is off)."""
        setting = self.rules.get(rule)
        if setting is None or setting.severity is None:
            return default
        return None if setting.severity == "off" else Severity(setting.severity)

    def environments_of(self, rule: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """Where an environment-scoped rule is enforced."""
        setting = self.rules.get(rule)
        if setting is None or setting.environments is None:
            return default
        return setting.environments

    def allows_instance_type(self, environment: str, instance_type: str) -> bool:
        patterns = self.instance_types.get(environment)
        return patterns is None or any(fnmatch.fnmatchcase(instance_type, p) for p in patterns)

    def fails(self, severity: Severity) -> bool:
        """True when a finding of ``severity`` fails the check."""
        return severity.at_least(self.fail_on)


def policy_from_document(document: Mapping[str, Any], *, file: str, source: SourceMap,
                         ref: str | None = None) -> Policy:
    """Build a :class:`Policy` from a document that passed the policy schema."""
    bandit = document.get("bandit") or {}
    rules = {
        rule: RuleSetting(d.get("severity"), tuple(d["environments"]) if "environments" in d else None)
        for rule, d in (document.get("rules") or {}).items()
    }
    return Policy(
        fail_on=Severity(document.get("fail_on", "error")),
        rules=MappingProxyType(rules),
        instance_types=MappingProxyType({k: tuple(v) for k, v in (document.get("instance_types") or {}).items()}),
        artifact_locations=tuple(document.get("artifact_locations") or ()),
        artifact_max_size_mb=float(document.get("artifact_max_size_mb", 1024.0)),
        bandit_severity=bandit.get("severity", "medium"),
        bandit_confidence=bandit.get("confidence", "medium"),
        signed_artifacts_required_in=tuple((document.get("signed_artifacts") or {}).get("required_in") or ()),
        capacity_headroom=float((document.get("capacity") or {}).get("headroom", 0.2)),
        baseline_p95_tolerance=float((document.get("baseline") or {}).get("p95_tolerance", 0.25)),
        baseline_p95_slack_ms=float((document.get("baseline") or {}).get("p95_slack_ms", 5.0)),
        baseline_throughput_tolerance=float((document.get("baseline") or {}).get("throughput_tolerance", 0.25)),
        file=file,
        source=source,
        ref=ref,
    )
