"""AWS Deep Learning Container (DLC) resolution: framework + version + processor + region -> image URI.

sagemaker-core's ``image_uris`` is the source of truth (imported lazily: it costs over a second,
and ``modelops validate`` must never pay for it). Resolutions are cached on disk keyed by the
installed sagemaker-core version, so a repeated build (a cache hit) does not import it at all.

A :class:`Dlc` separates the **registry** (``<account>.dkr.ecr.<region>.amazonaws.com``, which
differs per region) from the **identity** (repository and tag, the same in every region). The build
digest covers the identity only, so one release digest serves every region.

``djl-cpu`` (DJL Serving's CPU image, ``djl-inference:<version>-cpu-full``) is not listed by
sagemaker-core; its registries are those of ``djl-lmi`` (the same ECR repository) and its versions
come from modelops' catalog.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelops.config import catalog
from modelops.config.catalog import DLC_HINT, DLC_REFUSED, UNKNOWN_FRAMEWORK, UNKNOWN_REGION, UNKNOWN_VERSION
from modelops.errors import InputError

REGION_TAGS_DIFFER = "{where}: the {framework} {version} DLC has different tags per region ({tags})"

#: The DJL repository serves both the LMI (GPU) and the CPU images.
_DJL_CPU = "djl-cpu"
_DJL_REGISTRY_SOURCE = "djl-lmi"


@dataclass(frozen=True)
class Dlc:
    """One DLC image in one region. ``identity`` (``repository:tag``) is region-independent."""

    framework: str
    version: str
    processor: str  # "cpu" | "gpu"
    region: str
    registry: str  # <account>.dkr.ecr.<region>.amazonaws.com
    repository: str
    tag: str

    @property
    def identity(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.identity}"

    @property
    def account(self) -> str:
        return self.registry.split(".", 1)[0]

    @classmethod
    def from_uri(cls, uri: str, *, framework: str, version: str, processor: str, region: str) -> Dlc:
        registry, rest = uri.split("/", 1)
        repository, tag = rest.rsplit(":", 1)
        return cls(framework, version, processor, region, registry, repository, tag)


def processor_of(instance_type: str) -> str:
    """``gpu`` when the instance type has GPUs (modelops' catalog), else ``cpu``."""
    itype = catalog.instance_type(instance_type)
    return "gpu" if itype is not None and itype.gpus > 0 else "cpu"


def _sagemaker_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sagemaker-core")
    except PackageNotFoundError:  # pragma: no cover - a dependency of modelops
        return "unknown"


class DlcResolver:
    """Resolves DLCs, remembering answers in ``cache_file`` (JSON; None: no disk cache)."""

    def __init__(self, cache_file: Path | None = None):
        self._cache_file = cache_file
        self._memory: dict[str, dict[str, Any]] = {}
        self._loaded = False
        self._dirty = False

    # -- cache ---------------------------------------------------------------------------------

    def _key(self, framework: str, version: str, processor: str, py_version: str | None, region: str) -> str:
        return "|".join((_sagemaker_version(), framework, version, processor, py_version or "", region))

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._cache_file is not None and self._cache_file.is_file():
            try:
                data = json.loads(self._cache_file.read_text(encoding="utf-8"))
                if isinstance(data, dict):
                    self._memory.update(data)
            except (OSError, ValueError):
                pass  # a broken cache is rebuilt

    def save(self) -> None:
        """Write new answers to the cache file (atomically; concurrent builds may race harmlessly)."""
        if not self._dirty or self._cache_file is None:
            return
        tmp = self._cache_file.with_name(f".{self._cache_file.name}.{os.getpid()}.tmp")
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._memory, sort_keys=True, indent=1), encoding="utf-8")
            os.replace(tmp, self._cache_file)
        except OSError:  # a cache that cannot be written is asked again next time, as a broken one is
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return
        self._dirty = False

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, framework: str, version: str, *, instance_type: str, region: str,
                py_version: str | None = None, where: str = "spec.container") -> Dlc:
        """The DLC of ``framework`` ``version`` for ``instance_type`` in ``region``.

        :class:`InputError` naming ``where`` and listing what exists when the framework, the
        version or the region is unknown."""
        processor = processor_of(instance_type)
        self._load()
        key = self._key(framework, version, processor, py_version, region)
        hit = self._memory.get(key)
        if hit is not None:
            return Dlc(**hit)
        dlc = self._retrieve(framework, version, processor, py_version, instance_type, region, where)
        self._memory[key] = asdict(dlc)
        self._dirty = True
        return dlc

    def resolve_regions(self, framework: str, version: str, *, instance_type: str, regions: tuple[str, ...],
                        py_version: str | None = None, where: str = "spec.container") -> tuple[Dlc, ...]:
        """The DLC in each region; their identities (repository:tag) must agree, since one build
        digest serves every region."""
        dlcs = tuple(self.resolve(framework, version, instance_type=instance_type, region=r,
                                  py_version=py_version, where=where) for r in regions)
        tags = sorted({d.identity for d in dlcs})
        if len(tags) > 1:
            raise InputError(REGION_TAGS_DIFFER.format(where=where, framework=framework, version=version,
                                                       tags=", ".join(tags)), hint=DLC_HINT)
        return dlcs

    def _retrieve(self, framework: str, version: str, processor: str, py_version: str | None,
                  instance_type: str, region: str, where: str) -> Dlc:
        from sagemaker.core import image_uris

        if framework == _DJL_CPU:
            known = catalog.frameworks().get(_DJL_CPU)
            versions = known.versions if known else ()
            if version not in versions:
                raise InputError(UNKNOWN_VERSION.format(where=where, framework=framework, version=version,
                                                        known=", ".join(versions)), hint=DLC_HINT)
            registry = self._djl_registry(region, where, framework, version)
            tag = (known.tag if known and known.tag else "{version}-cpu-full").format(version=version)
            repository = known.repository if known and known.repository else "djl-inference"
            return Dlc(framework, version, "cpu", region, registry, repository, tag)

        frameworks = image_uris.list_frameworks()
        if framework not in frameworks:
            # The inference frameworks modelops knows; sagemaker-core lists eighty, mostly algorithms.
            listed = sorted(catalog.frameworks())
            raise InputError(UNKNOWN_FRAMEWORK.format(where=where, framework=framework, known=", ".join(listed)),
                             hint=DLC_HINT)
        versions = image_uris.list_versions(framework, "inference" if _has_scope(framework, "inference") else None)
        if version not in versions:
            raise InputError(UNKNOWN_VERSION.format(where=where, framework=framework, version=version,
                                                    known=", ".join(v for v in versions if v != "latest")),
                             hint=DLC_HINT)
        regions = _regions(framework, version)
        if regions and region not in regions:
            raise InputError(UNKNOWN_REGION.format(where=where, framework=framework, version=version,
                                                   region=region, known=", ".join(sorted(regions))), hint=DLC_HINT)
        try:
            uri = image_uris.retrieve(framework, region=region, version=version, py_version=py_version,
                                      instance_type=instance_type, image_scope="inference")
        except ValueError as exc:
            # sagemaker-core's messages list what is supported; keep the first sentence and that list.
            message = " ".join(str(exc).split())
            raise InputError(DLC_REFUSED.format(where=where, framework=framework, version=version, region=region,
                                                detail=message), hint=DLC_HINT) from exc
        return Dlc.from_uri(uri, framework=framework, version=version, processor=processor, region=region)

    def _djl_registry(self, region: str, where: str, framework: str, version: str) -> str:
        from sagemaker.core import image_uris

        config = image_uris.config_for_framework(_DJL_REGISTRY_SOURCE)
        latest = sorted((v for v in config["versions"] if v[0].isdigit()),
                        key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))[-1]
        registries = config["versions"][latest]["registries"]
        if region not in registries:
            raise InputError(UNKNOWN_REGION.format(where=where, framework=framework, version=version, region=region,
                                                   known=", ".join(sorted(registries))), hint=DLC_HINT)
        uri = image_uris.retrieve(_DJL_REGISTRY_SOURCE, region=region, version=latest, image_scope="inference")
        return uri.split("/", 1)[0]


def _has_scope(framework: str, scope: str) -> bool:
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(framework)
    if "versions" in config:
        return scope in (config.get("scope") or [scope])
    return scope in config


def _regions(framework: str, version: str) -> frozenset[str]:
    """Regions with a registry for ``framework`` ``version`` (inference scope); empty when the
    config nests deeper than modelops looks (sagemaker-core then checks the region itself)."""
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(framework)
    scope = config if "versions" in config else config.get("inference", {})
    resolved = scope.get("version_aliases", {}).get(version, version)
    entry = scope.get("versions", {}).get(resolved, {})
    registries = entry.get("registries")
    return frozenset(registries) if isinstance(registries, dict) else frozenset()


# -- what validate knows without sagemaker-core -----------------------------------------------------

#: The instance types whose processor the availability table asks about.
_PROCESSOR_PROBES = {"cpu": "ml.m5.large", "gpu": "ml.g5.xlarge"}


def availability_table() -> dict[str, Any]:
    """For every framework version of modelops' catalog, each processor and each Python version
    sagemaker-core lists for it (and none: ``""``): the regions that have its DLC, or why
    sagemaker-core refuses it. Shipped as
    ``modelops/config/data/dlc_availability.json`` for validate (``catalog.dlc_availability``), which
    must not import sagemaker-core; the catalog test regenerates it and compares. Slow: sagemaker-core
    takes ~0.1 s per image."""
    resolver = DlcResolver(None)
    region_sets: list[list[str]] = []
    images: dict[str, dict[str, dict[str, dict[str, int | str]]]] = {}
    for framework, known in sorted(catalog.frameworks().items()):
        for version in known.versions:
            regions = _djl_regions() if framework == _DJL_CPU else sorted(_regions(framework, version))
            if regions not in region_sets:
                region_sets.append(regions)
            row: dict[str, dict[str, int | str]] = {}
            for processor, instance_type in _PROCESSOR_PROBES.items():
                answers: dict[str, int | str] = {}
                for py in ("", *_py_versions(framework, version)):
                    try:
                        resolver._retrieve(framework, version, processor, py or None, instance_type,
                                           regions[0] if regions else "us-east-1", "")
                        answers[py] = region_sets.index(regions)
                    except InputError as err:
                        answers[py] = err.message.split(": ", 2)[-1]  # sagemaker-core's own words
                row[processor] = answers
            images.setdefault(framework, {})[version] = row
    return {"sagemaker_core": _sagemaker_version(), "region_sets": region_sets, "images": images}


def _py_versions(framework: str, version: str) -> list[str]:
    if framework == _DJL_CPU:
        return []
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(framework)
    scope = config if "versions" in config else config.get("inference", {})
    resolved = scope.get("version_aliases", {}).get(version, version)
    found = scope.get("versions", {}).get(resolved, {}).get("py_versions")
    return list(found) if isinstance(found, list) else []


def _djl_regions() -> list[str]:
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(_DJL_REGISTRY_SOURCE)
    latest = sorted((v for v in config["versions"] if v[0].isdigit()),
                    key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))[-1]
    return sorted(config["versions"][latest]["registries"])
