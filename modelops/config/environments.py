"""The typed, immutable environments config (``pipelines/environments.yaml``).

An **environment** (dev, staging, prod...) lives on one cloud (``local`` or ``aws``) in one account
with one or more regions. Its regions deploy in **waves**: the regions of a wave in parallel, waves
one after another. The **promotion** order says which environment a release enters after which.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from modelops.config.rollout import RolloutPolicy, rollout_override
from modelops.config.security import Security, Vpc, vpc
from modelops.config.yamlsource import SourceMap
from modelops.errors import InputError

#: The account a local environment is in when its config names none.
LOCAL_ACCOUNT = "000000000000"

UNKNOWN_ENVIRONMENT = "unknown environment '{name}'{suggestion}"
UNKNOWN_ENVIRONMENT_HINT = "environments are defined in {file}: {names}"
UNKNOWN_REGION = "environment {environment} has no region {region} (it has {regions})"


@dataclass(frozen=True)
class Approval:
    required: bool = False
    four_eyes: bool = False  # the approver may not be the release's author


@dataclass(frozen=True)
class SyntheticTraffic:
    enabled: bool = False
    requests_per_second: float = 2.0


@dataclass(frozen=True)
class AwsAccess:
    """How modelops reaches an aws environment's account: a role to assume and/or a profile."""

    role_arn: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class EnvironmentSecurity:
    """Security defaults models inherit in an environment; VPC config per region."""

    execution_role: str | None = None
    kms_key: str | None = None
    vpc: Mapping[str, Vpc] = field(default_factory=lambda: MappingProxyType({}))

    def for_region(self, region: str) -> Security:
        return Security(execution_role=self.execution_role, kms_key=self.kms_key, vpc=self.vpc.get(region))


@dataclass(frozen=True)
class Environment:
    name: str
    cloud: str
    account: str
    regions: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    approval: Approval = field(default_factory=Approval)
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    builder: str = "local"
    synthetic_traffic: SyntheticTraffic = field(default_factory=SyntheticTraffic)
    aws: AwsAccess = field(default_factory=AwsAccess)
    security: EnvironmentSecurity = field(default_factory=EnvironmentSecurity)

    @property
    def is_local(self) -> bool:
        return self.cloud == "local"

    def check_regions(self, regions: Iterable[str]) -> None:
        """:class:`InputError` naming the first of ``regions`` this environment does not have."""
        for region in regions:
            if region not in self.regions:
                raise InputError(UNKNOWN_REGION.format(environment=self.name, region=region,
                                                       regions=", ".join(self.regions)))


@dataclass(frozen=True)
class Environments:
    """All environments in file order, the promotion order and the rollback policy."""

    environments: tuple[Environment, ...]
    promotion: tuple[str, ...]
    file: str
    source: SourceMap = field(repr=False, compare=False)
    roll_back_completed_regions: bool = True
    ref: str | None = None

    def __iter__(self) -> Iterator[Environment]:
        return iter(self.environments)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    def find(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def get(self, name: str) -> Environment:
        """The environment called ``name``; an :class:`InputError` with "did you mean" otherwise."""
        env = self.find(name)
        if env is None:
            close = difflib.get_close_matches(name, self.names, n=1)
            raise InputError(
                UNKNOWN_ENVIRONMENT.format(name=name, suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
                hint=UNKNOWN_ENVIRONMENT_HINT.format(file=self.file, names=", ".join(self.names)),
            )
        return env

    def previous(self, name: str) -> Environment | None:
        """The environment before ``name`` in the promotion order (None for the first)."""
        i = self.promotion.index(self.get(name).name)
        return self.get(self.promotion[i - 1]) if i > 0 else None

    def next(self, name: str) -> Environment | None:
        """The environment after ``name`` in the promotion order (None for the last)."""
        i = self.promotion.index(self.get(name).name)
        return self.get(self.promotion[i + 1]) if i + 1 < len(self.promotion) else None

    def in_promotion_order(self) -> tuple[Environment, ...]:
        return tuple(self.get(n) for n in self.promotion)

    def deploy_targets(self, clouds: Iterable[str]) -> tuple[Environment, ...]:
        """The environments a model on ``clouds`` (its ``spec.clouds``) deploys to, in promotion order."""
        wanted = set(clouds)
        return tuple(e for e in self.in_promotion_order() if e.cloud in wanted)


def _environment(name: str, d: Mapping[str, Any]) -> Environment:
    regions = tuple(d["regions"])
    waves = tuple(tuple(w) for w in d.get("waves") or [regions])
    rollout = rollout_override(d.get("rollout")).apply(RolloutPolicy())
    sec = d.get("security") or {}
    approval = d.get("approval") or {}
    traffic = d.get("synthetic_traffic")
    aws = d.get("aws") or {}
    return Environment(
        name=name,
        cloud=d["cloud"],
        account=d.get("account") or LOCAL_ACCOUNT,
        regions=regions,
        waves=waves,
        approval=Approval(approval.get("required", False), approval.get("four_eyes", False)),
        rollout=rollout,
        builder=d.get("builder") or ("local" if d["cloud"] == "local" else "codebuild"),
        synthetic_traffic=SyntheticTraffic() if traffic is None else SyntheticTraffic(
            traffic["enabled"], traffic.get("requests_per_second", 2.0)),
        aws=AwsAccess(aws.get("role_arn"), aws.get("profile")),
        security=EnvironmentSecurity(
            execution_role=sec.get("execution_role"),
            kms_key=sec.get("kms_key"),
            vpc=MappingProxyType({region: v for region, raw in (sec.get("vpc") or {}).items()
                                  if (v := vpc(raw)) is not None}),
        ),
    )


def environments_from_document(document: Mapping[str, Any], *, file: str, source: SourceMap,
                               ref: str | None = None) -> Environments:
    """Build :class:`Environments` from a document that passed the environments schema. Names in
    ``promotion`` that are not environments are left for the semantic checks to report; they are
    dropped here."""
    envs = tuple(_environment(name, d) for name, d in document["environments"].items())
    names = {e.name for e in envs}
    promotion = tuple(n for n in document.get("promotion") or [e.name for e in envs] if n in names)
    rollback = document.get("rollback") or {}
    return Environments(
        environments=envs,
        promotion=promotion,
        file=file,
        source=source,
        roll_back_completed_regions=rollback.get("roll_back_completed_regions", True),
        ref=ref,
    )
