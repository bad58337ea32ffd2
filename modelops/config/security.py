"""Security settings of a model or an environment (execution role, KMS key, VPC, network
isolation, data capture), shared by ``model.yaml`` and ``pipelines/environments.yaml``.

**Placeholders** ``{account}``, ``{region}``, ``{environment}`` in security values are filled in per
environment and region by :meth:`Security.filled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Vpc:
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]


@dataclass(frozen=True)
class DataCapture:
    enabled: bool
    sampling_percentage: int | None = None
    destination: str | None = None


def fill(text: str | None, *, account: str, region: str, environment: str) -> str | None:
    """Fill the ``{account}``, ``{region}``, ``{environment}`` placeholders of ``text``."""
    if text is None:
        return None
    return text.replace("{account}", account).replace("{region}", region).replace("{environment}", environment)


@dataclass(frozen=True)
class Security:
    """Security settings; None means "not set here" (inherit, or the policy may complain)."""

    execution_role: str | None = None
    kms_key: str | None = None
    vpc: Vpc | None = None
    network_isolation: bool | None = None
    data_capture: DataCapture | None = None

    def merged(self, over: Security) -> Security:
        """These settings with the ones set in ``over`` taking precedence."""
        return replace(self, **{f.name: getattr(over, f.name) for f in fields(over) if getattr(over, f.name) is not None})

    def filled(self, *, account: str, region: str, environment: str) -> Security:
        """Placeholders filled in for one environment and region."""
        kw = {"account": account, "region": region, "environment": environment}
        capture = self.data_capture
        if capture is not None and capture.destination:
            capture = replace(capture, destination=fill(capture.destination, **kw))
        return replace(self, execution_role=fill(self.execution_role, **kw), kms_key=fill(self.kms_key, **kw),
                       data_capture=capture)


# -- building from a schema-valid document -------------------------------------------------------


def vpc(d: Mapping[str, Any] | None) -> Vpc | None:
    return None if d is None else Vpc(tuple(d["subnets"]), tuple(d["security_groups"]))


def security(d: Mapping[str, Any] | None) -> Security:
    d = d or {}
    capture = d.get("data_capture")
    return Security(
        execution_role=d.get("execution_role"),
        kms_key=d.get("kms_key"),
        vpc=vpc(d.get("vpc")),
        network_isolation=d.get("network_isolation"),
        data_capture=None if capture is None else DataCapture(
            capture["enabled"], capture.get("sampling_percentage"), capture.get("destination")),
    )
