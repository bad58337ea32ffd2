"""The typed, immutable model config (``models/<name>/model.yaml``).

Words used here:

- the **model folder** is the folder holding ``model.yaml`` (``folder``, repo-relative, posix);
  every path in the config (entry point, requirements, artifacts, cases) is relative to it;
- **per-environment overrides** (``spec.environments.<env>``) are merged over the base values by
  :meth:`ModelConfig.resources_for`, and over the environment's own security and rollout by
  :mod:`modelops.config.effective` (which knows both the model and the environment).

Objects are built only from documents that passed the schema; building from anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from modelops.config.answers import AnswerRules, answer_rules
from modelops.config.rollout import RolloutOverride, rollout_override
from modelops.config.security import Security, security
from modelops.config.yamlsource import Position, SourceMap

API_VERSION = "modelops/v1"
CLOUDS = ("local", "aws")
CONTRACTS = ("inference-toolkit", "djl-python")

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Metadata:
    name: str
    team: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class Handler:
    """How the serving stack calls the model's code.

    ``inference-toolkit``: the SageMaker inference toolkit imports ``entry_point`` and calls
    ``model_fn(model_dir)``, ``input_fn(body, content_type)``, ``predict_fn(data, model)``,
    ``output_fn(prediction, accept)``. ``djl-python``: DJL Serving's Python engine calls
    ``handle(inputs)`` of ``entry_point`` (shipped as ``model.py``)."""

    contract: str
    entry_point: str | None = None  # None: DJL's built-in handler (djl-python only)
    source_dir: str | None = None


@dataclass(frozen=True)
class ServingOptions:
    """DJL Serving / LMI options (``serving.properties``); all optional."""

    engine: str | None = None
    model_id: str | None = None
    rolling_batch: str | None = None
    max_rolling_batch_size: int | None = None
    job_queue_size: int | None = None
    tensor_parallel_degree: int | None = None
    quantize: str | None = None
    dtype: str | None = None
    max_model_len: int | None = None

    def properties(self) -> dict[str, str]:
        """The ``serving.properties`` entries, in a stable order (``engine``, ``job_queue_size`` and
        ``option.<key>`` for the rest)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            key = f.name if f.name in ("engine", "job_queue_size") else f"option.{f.name}"
            out[key] = str(value)
        return out

    def environment(self) -> dict[str, str]:
        """The same options as ``OPTION_<KEY>`` environment variables (``SERVING_`` for engine and
        job queue size, as DJL reads them)."""
        out = {}
        for key, value in self.properties().items():
            if key.startswith("option."):
                out["OPTION_" + key[len("option."):].upper()] = value
            else:
                out["SERVING_" + key.upper()] = value
        return out

    @property
    def is_empty(self) -> bool:
        return not self.properties()


@dataclass(frozen=True)
class Container:
    """The serving container: a DLC framework + version (resolved per region by build) or an
    explicit image, the handler contract, DJL options, environment variables and requirements."""

    handler: Handler
    framework: str | None = None
    framework_version: str | None = None
    python_version: str | None = None
    image: str | None = None
    serving: ServingOptions = field(default_factory=ServingOptions)
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    requirements: str | None = None


@dataclass(frozen=True)
class Artifact:
    """One artifact file: ``path`` in the model folder or an s3 ``uri``, pinned by ``sha256``."""

    sha256: str
    path: str | None = None
    uri: str | None = None
    parameters: int | None = None
    generated_by: str | None = None


@dataclass(frozen=True)
class Autoscaling:
    min_instances: int
    max_instances: int
    target_invocations_per_instance: int | None = None
    scale_in_cooldown_seconds: int | None = None
    scale_out_cooldown_seconds: int | None = None


@dataclass(frozen=True)
class Resources:
    instance_type: str
    instance_count: int = 1
    autoscaling: Autoscaling | None = None


@dataclass(frozen=True)
class ResourcesOverride:
    instance_type: str | None = None
    instance_count: int | None = None
    autoscaling: Autoscaling | None = None


@dataclass(frozen=True)
class Slo:
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_error_rate: float | None = None
    min_rps: float | None = None


@dataclass(frozen=True)
class LoadProfile:
    users: int = 10
    spawn_rate: float = 5.0
    duration_seconds: int = 30
    slo: Slo = field(default_factory=Slo)


@dataclass(frozen=True)
class Tests:
    """``spec.tests``: paths relative to the model folder. ``replay``: a JSON-lines file of requests
    that judgments send to both releases (:func:`modelops.config.cases.load_replay`)."""

    cases: str | None = None
    load: LoadProfile | None = None
    replay: str | None = None


@dataclass(frozen=True)
class EnvironmentOverride:
    resources: ResourcesOverride = field(default_factory=ResourcesOverride)
    security: Security = field(default_factory=Security)
    rollout: RolloutOverride = field(default_factory=RolloutOverride)


@dataclass(frozen=True)
class ModelConfig:
    """One model, as its ``model.yaml`` says at one point in git (``ref`` None: the working tree).

    ``folder`` and ``file`` are repo-relative posix paths; ``source`` maps every value's JSON path to
    its position (``model.source.position(("spec", "resources", "instance_type"))``)."""

    metadata: Metadata
    container: Container
    resources: Resources
    folder: str
    file: str
    source: SourceMap = field(repr=False, compare=False)
    clouds: tuple[str, ...] = CLOUDS
    artifacts: tuple[Artifact, ...] = ()
    security: Security = field(default_factory=Security)
    tests: Tests = field(default_factory=Tests)
    #: How answers of two releases are compared in a judgment (``spec.answers``).
    answers: AnswerRules = field(default_factory=AnswerRules)
    rollout: RolloutOverride = field(default_factory=RolloutOverride)
    environments: Mapping[str, EnvironmentOverride] = field(default_factory=lambda: MappingProxyType({}))
    ref: str | None = None
    document: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.metadata.name

    def supports_cloud(self, cloud: str) -> bool:
        return cloud in self.clouds

    def position(self, *path: str | int, key: bool = False) -> Position:
        """Where the value at ``path`` (under the document root) is: ``model.position("spec", "resources")``."""
        return self.source.position(path, key=key)

    def path_in_repo(self, relative: str) -> str:
        """A model-folder-relative path as a repo-relative posix path."""
        return f"{self.folder}/{relative}" if self.folder else relative

    @property
    def parameter_count(self) -> int | None:
        """Total parameters declared on the artifacts (None when none declares any)."""
        counts = [a.parameters for a in self.artifacts if a.parameters]
        return sum(counts) if counts else None

    def resources_for(self, environment: str) -> Resources:
        """Resources in ``environment``, with its overrides merged."""
        over = self.environments.get(environment)
        if over is None:
            return self.resources
        r = over.resources
        return Resources(
            instance_type=r.instance_type or self.resources.instance_type,
            instance_count=r.instance_count or self.resources.instance_count,
            autoscaling=r.autoscaling or self.resources.autoscaling,
        )


# -- building from a schema-valid document -------------------------------------------------------


def _autoscaling(d: Mapping[str, Any] | None) -> Autoscaling | None:
    if d is None:
        return None
    return Autoscaling(
        min_instances=d["min_instances"],
        max_instances=d["max_instances"],
        target_invocations_per_instance=d.get("target_invocations_per_instance"),
        scale_in_cooldown_seconds=d.get("scale_in_cooldown_seconds"),
        scale_out_cooldown_seconds=d.get("scale_out_cooldown_seconds"),
    )


def model_from_document(document: Mapping[str, Any], *, folder: str, file: str, source: SourceMap,
                        ref: str | None = None) -> ModelConfig:
    """Build a :class:`ModelConfig` from a document that passed the model schema."""
    meta = document["metadata"]
    spec = document["spec"]
    c = spec["container"]
    h = c["handler"]
    r = spec["resources"]
    t = spec.get("tests") or {}
    load = t.get("load")
    overrides = {}
    for env_name, o in (spec.get("environments") or {}).items():
        ro = o.get("resources") or {}
        overrides[env_name] = EnvironmentOverride(
            resources=ResourcesOverride(ro.get("instance_type"), ro.get("instance_count"),
                                        _autoscaling(ro.get("autoscaling"))),
            security=security(o.get("security")),
            rollout=rollout_override(o.get("rollout")),
        )
    return ModelConfig(
        metadata=Metadata(meta["name"], meta["team"], meta.get("description", ""), _frozen(meta.get("labels"))),
        container=Container(
            handler=Handler(h["contract"], h.get("entry_point"), h.get("source_dir")),
            framework=c.get("framework"),
            framework_version=c.get("framework_version"),
            python_version=c.get("python_version"),
            image=c.get("image"),
            serving=ServingOptions(**(c.get("serving") or {})),
            env=_frozen(c.get("env")),
            requirements=c.get("requirements"),
        ),
        resources=Resources(r["instance_type"], r.get("instance_count", 1), _autoscaling(r.get("autoscaling"))),
        folder=folder,
        file=file,
        source=source,
        clouds=tuple(spec.get("clouds") or CLOUDS),
        artifacts=tuple(
            Artifact(
                sha256=a["sha256"], path=a.get("path"), uri=a.get("uri"), parameters=a.get("parameters"),
                generated_by=a.get("generated_by"),
            )
            for a in spec.get("artifacts") or ()
        ),
        security=security(spec.get("security")),
        tests=Tests(
            cases=t.get("cases"),
            load=None if load is None else LoadProfile(
                users=load.get("users", 10),
                spawn_rate=load.get("spawn_rate", 5.0),
                duration_seconds=load.get("duration_seconds", 30),
                slo=Slo(**(load.get("slo") or {})),
            ),
            replay=t.get("replay"),
        ),
        answers=answer_rules(spec.get("answers")),
        rollout=rollout_override(spec.get("rollout")),
        environments=MappingProxyType(overrides),
        ref=ref,
        document=MappingProxyType(dict(document)),
    )
