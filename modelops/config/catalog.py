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
