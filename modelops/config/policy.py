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
#: What a judgment still inconclusive after ``max_rounds`` means.
ON_INCONCLUSIVE = ("fail", "pass")


@dataclass(frozen=True)
class Judgment:
    """How the candidate release is judged against the serving (reference) release (``judgment:``
    of policy.yaml; these defaults when absent).

    ``confidence``: one-sided confidence of every verdict; ``max_rounds``: bakes in all before an
    inconclusive judgment is settled by ``on_inconclusive`` ("fail" or "pass");
    ``latency_quantile`` (e.g. 95) may be at most ``latency_margin`` (a fraction) worse;
    the error rate at most ``error_margin`` (an absolute fraction: 0.005 = 0.5 percentage points)
    worse; answers must agree at least ``min_agreement`` of the time (a fraction), per environment
    ``agreement_by_environment``."""

    confidence: float = 0.95
    max_rounds: int = 3
    on_inconclusive: str = "pass"
    latency_quantile: float = 95.0
    latency_margin: float = 0.10
    error_margin: float = 0.005
    min_agreement: float = 0.99
    agreement_by_environment: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def min_agreement_for(self, environment: str) -> float:
        """The least share of agreeing answers ``environment`` accepts."""
        return self.agreement_by_environment.get(environment, self.min_agreement)


def _judgment(raw: Mapping[str, Any] | None) -> Judgment:
    """``judgment:`` from its schema-valid mapping (defaults for what it leaves out)."""
    raw = raw or {}
    latency = raw.get("latency") or {}
    agreement = raw.get("agreement") or {}
    default = Judgment()
    return Judgment(
        confidence=float(raw.get("confidence", default.confidence)),
        max_rounds=int(raw.get("max_rounds", default.max_rounds)),
        on_inconclusive=str(raw.get("on_inconclusive", default.on_inconclusive)),
        latency_quantile=float(latency.get("quantile", default.latency_quantile)),
        latency_margin=float(latency.get("margin", default.latency_margin)),
        error_margin=float((raw.get("errors") or {}).get("margin", default.error_margin)),
        min_agreement=float(agreement.get("min", default.min_agreement)),
        agreement_by_environment=MappingProxyType(
            {env: float(v) for env, v in (agreement.get("environments") or {}).items()}),
    )


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
    #: The comparative judgment of a candidate release against the serving one.
    judgment: Judgment = field(default_factory=Judgment)
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
        judgment=_judgment(document.get("judgment")),
        file=file,
        source=source,
        ref=ref,
    )
