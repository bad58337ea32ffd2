"""Facts about SageMaker that the checks need, shipped as data files (no sagemaker import):
instance types with their CPUs, memory and GPUs, and the AWS Deep Learning Container registries and
framework versions."""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

# What build says when a framework has no Deep Learning Container for a model (validate says it first).
UNKNOWN_FRAMEWORK = "{where}: framework '{framework}' has no Deep Learning Container (frameworks: {known})"
UNKNOWN_VERSION = "{where}: {framework} {version} has no Deep Learning Container (versions: {known})"
UNKNOWN_REGION = "{where}: {framework} {version} has no Deep Learning Container in {region} (regions: {known})"
DLC_REFUSED = "{where}: {framework} {version} in {region}: {detail}"
DLC_HINT = "pick one of the listed values in spec.container, or set spec.container.image"
PY_UNKNOWN = "no Deep Learning Container for python_version {python_version} (python versions: {listed})"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    gpus: int = 0
    gpu_memory_mib: int = 0
    gpu: str | None = None

    @property
    def gpu_memory_gib(self) -> float:
        return self.gpu_memory_mib / 1024

    @property
    def memory_per_gpu_gib(self) -> float:
        return self.gpu_memory_gib / self.gpus if self.gpus else 0.0


@dataclass(frozen=True)
class Framework:
    name: str
    repository: str | None
    versions: tuple[str, ...]
    tag: str | None = None  # tag template when it is not sagemaker-core's


def _data(name: str) -> dict[str, Any]:
    text = resources.files("modelops.config").joinpath("data", name).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def _instance_types() -> dict[str, InstanceType]:
    return {name: InstanceType(name=name, **row) for name, row in _data("instance_types.json")["instance_types"].items()}


def instance_type(name: str) -> InstanceType | None:
    """The SageMaker instance type ``name`` (``ml.g5.12xlarge``), None when unknown."""
    return _instance_types().get(name)


def instance_type_names() -> tuple[str, ...]:
    return tuple(_instance_types())


def closest_instance_type(name: str) -> str | None:
    """The known instance type most like ``name`` (for "did you mean")."""
    close = difflib.get_close_matches(name, instance_type_names(), n=1, cutoff=0.7)
    return close[0] if close else None


@functools.cache
def _dlc() -> dict[str, Any]:
    return _data("dlc.json")


def dlc_accounts() -> frozenset[str]:
    """AWS accounts that host Deep Learning Container registries."""
    return frozenset(_dlc()["dlc_accounts"])


@functools.cache
def frameworks() -> dict[str, Framework]:
    return {
        name: Framework(name, row.get("repository"), tuple(row["versions"]), row.get("tag"))
        for name, row in _dlc()["frameworks"].items()
    }


@functools.cache
def _availability() -> dict[str, Any]:
    return _data("dlc_availability.json")


def dlc_availability(framework: str, version: str, processor: str,
                     python_version: str | None = None) -> frozenset[str] | str | None:
    """Where the DLC of ``framework`` ``version`` for ``processor`` (``cpu`` | ``gpu``) and
    ``python_version`` (None: the default) exists: the regions (empty: sagemaker-core lists none, so
    build asks in each), or why it has none; None when the catalog does not know the version.
    Generated from sagemaker-core by ``modelops.build.dlc.availability_table``."""
    data = _availability()
    row = data["images"].get(framework, {}).get(version, {}).get(processor)
    if row is None:
        return None
    found = row.get(python_version or "")
    if found is None:
        listed = ", ".join(k for k in row if k) or "none"
        return PY_UNKNOWN.format(python_version=python_version, listed=listed)
    return found if isinstance(found, str) else frozenset(data["region_sets"][found])
