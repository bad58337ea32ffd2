"""``modelops build``: a model at a git ref -> a release with an image and model data per region.

The pipeline: read the model, the environment and the policy (at ``ref``, or the working tree);
gather the artifacts and check them against their pins (and the manifest signature where
present or required); resolve the DLC of every region; render the build context and compute its
digest; then, unless only the context is wanted, run the environment's builder and record the
release and one build record per region in the environment's ledger (where deploy finds them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.build import artifacts
from modelops.build.builders import BUILDERS, UNKNOWN_BUILDER, BuildPlan, image_uri, run_builder
from modelops.build.cache import ARTIFACT_CACHE, CONTEXTS, MODEL_DATA, remember_archive
from modelops.build.context import BuildContext, ReleaseLabels, model_data_extras, render
from modelops.build.dlc import DlcResolver
from modelops.config import (
    Environment,
    ModelConfig,
    Policy,
    Workspace,
    load_environments,
    load_model,
    load_policy,
)
from modelops.errors import EnvironmentFailedError, InputError
from modelops.identity import identify, normalise
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients

CLOUD_NOT_SUPPORTED = "{model} runs on {clouds} only (spec.clouds in {file}); environment {env} is on the {cloud} cloud"
CLOUD_NOT_SUPPORTED_HINT = "build it for an aws environment (--env), or render its context with --context-only DIR"
NO_FRAMEWORK = "{file}: spec.container needs a framework and framework_version, or an image"
DATA_DIR_UNUSABLE = "cannot use {data_dir}: {reason}"
DATA_DIR_UNUSABLE_HINT = "modelops keeps its state in MODELOPS_DATA_DIR (or --data-dir): point it at a writable directory"
CONTEXT_NOT_EMPTY = ("{folder} holds files this build does not render ({files}); an image built from it would "
                     "hold them too")
CONTEXT_NOT_EMPTY_HINT = "render into a new or empty folder (--context-only DIR), or remove those files"
SIGN_AT_REF = "--sign-key signs the working tree's artifacts; it cannot be used with --ref"
DEFAULT_MODEL_DATA_LOCATION = "s3://modelops-model-artifacts-{account}-{region}/"

#: Marks the commit of a release built from a working tree with uncommitted changes in the model folder.
DIRTY_SUFFIX = "-dirty"


@dataclass(frozen=True)
class BuildRequest:
    """What to build: ``model`` (name or folder) for ``environment`` at ``ref`` (None: the working
    tree). ``context_only``: write each region's context to ``context_only/<region>/`` and stop.
    ``builder``: override the environment's builder. ``sign_key``: sign the artifact manifest with
    this EC private key (PEM) and write ``<model folder>/artifacts.sig``."""

    model: str
    environment: str = "dev"
    ref: str | None = None
    context_only: Path | None = None
    builder: str | None = None
    sign_key: Path | None = None


@dataclass(frozen=True)
class BuildImage:
    """What CreateModel takes in one region: the image and the model data (``""``: none)."""

    region: str
    image_uri: str
    model_data_url: str

    def to_dict(self) -> dict[str, str]:
        return {"region": self.region, "image_uri": self.image_uri, "model_data_url": self.model_data_url}


@dataclass(frozen=True)
class BuildResult:
    """A built (or, with ``context_only``, rendered) release."""

    release: str
    model: str
    environment: str
    commit: str
    digest: str  # sha256:<hex>, region-independent
    config_digest: str  # sha256:<hex> of the model config
    manifest_digest: str
    builder: str
    cache_hit: bool
    images: tuple[BuildImage, ...]
    base_images: dict[str, str] = field(default_factory=dict)  # region -> FROM
    context_dir: Path | None = None
    signed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {
            "release": self.release,
            "model": self.model,
            "environment": self.environment,
            "commit": self.commit,
            "digest": self.digest,
            "config_digest": self.config_digest,
            "artifacts_manifest_digest": self.manifest_digest,
            "builder": self.builder,
            "cache_hit": self.cache_hit,
            "signed": self.signed,
            "context_dir": str(self.context_dir) if self.context_dir else None,
            "images": [{**i.to_dict(), "base_image": self.base_images.get(i.region, "")} for i in self.images],
        }


def config_digest(model: ModelConfig) -> str:
    """``sha256:`` over the model config as canonical JSON (key order and YAML layout do not count)."""
    text = json.dumps(_plain(model.document), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _work_dir(runtime: Runtime) -> Path:
    """Where builds keep what they make: caches, model data archives, rendered contexts. A data dir
    that cannot hold it is :class:`EnvironmentFailedError` naming it."""
    work = runtime.data_dir / "build"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFailedError(DATA_DIR_UNUSABLE.format(data_dir=runtime.data_dir,
                                                              reason=exc.strerror or exc),
                                     hint=DATA_DIR_UNUSABLE_HINT) from exc
    return work


def _where(model: ModelConfig, *path: str) -> str:
    pos = model.position(*path)
    return f"{pos.file}:{pos.line}:{pos.column}" if pos.line else model.file


def model_data_location(policy: Policy, *, account: str, region: str) -> str:
    """Where model data goes in a region: the policy's first artifact location that names a region
    (SageMaker reads model data from the endpoint's region), else its first one, else a default."""
    locations = policy.artifact_locations
    chosen = next((loc for loc in locations if "{region}" in loc), locations[0] if locations else
                  DEFAULT_MODEL_DATA_LOCATION)
    return chosen.replace("{account}", account).replace("{region}", region).rstrip("/") + "/"


def _base_images(model: ModelConfig, env: Environment, runtime: Runtime) -> tuple[dict[str, str], str]:
    c = model.container
    if c.image:
        return {r: c.image for r in env.regions}, c.image
    if not c.framework or not c.framework_version:
        raise InputError(NO_FRAMEWORK.format(file=model.file))
    resolver = DlcResolver(_work_dir(runtime) / "dlc-cache.json")
    dlcs = resolver.resolve_regions(c.framework, c.framework_version, instance_type=model.resources_for(env.name).instance_type,
                                    regions=env.regions, py_version=c.python_version,
                                    where=_where(model, "spec", "container", "framework_version"))
    resolver.save()
    return {d.region: d.uri for d in dlcs}, dlcs[0].identity


def _author(ws: Workspace, commit: str) -> str:
    """Who wrote what a build holds, normalised: the commit's author, or for uncommitted changes who
    made them (git's ``user.email``); empty when git knows neither."""
    found = ws.user_email() if commit.endswith("-dirty") or commit == "uncommitted" else ws.commit_author(commit)
    return normalise(found) if found else ""


def _signature_required_by(policy: Policy, env_name: str) -> str | None:
    return env_name if env_name in policy.signed_artifacts_required_in else None


@dataclass(frozen=True)
class _Prepared:
    """A model at a commit rendered into a release: everything the builders need, nothing built yet."""

    model: ModelConfig
    env: Environment
    context: BuildContext
    labels: ReleaseLabels
    gathered: artifacts.GatheredArtifacts
    data_urls: dict[str, str]  # region -> model data URL ("" when the model has no artifacts)
    work: Path
    result: BuildResult  # what the build will answer, before the builder says whether it hit its cache
    workspace: Workspace  # the repository at the ref built: who wrote it, who builds it


def build(request: BuildRequest, runtime: Runtime, *, clients: Clients | None = None) -> BuildResult:
    """Build ``request.model`` for ``request.environment`` (see the module docstring)."""
    prepared = _prepare(request, runtime)
    if request.context_only is not None:
        return _write_contexts(prepared, request.context_only, runtime)
    return _publish(prepared, runtime, clients)


def _prepare(request: BuildRequest, runtime: Runtime) -> _Prepared:
    """Read the model at the ref, gather and check its artifacts (signing them when asked), resolve each
    region's DLC and render the build context: the release id is known from here on."""
    ws = Workspace.discover(runtime.cwd)
    if request.ref is not None:
        ws = ws.at(request.ref)
    model = load_model(ws, request.model)
    env = load_environments(ws).get(request.environment)
    policy = load_policy(ws)
    builder = request.builder or env.builder
    if builder not in BUILDERS:
        raise InputError(UNKNOWN_BUILDER.format(builder=builder))
    if request.context_only is None and not model.supports_cloud(env.cloud):
        raise InputError(CLOUD_NOT_SUPPORTED.format(model=model.name, clouds=", ".join(model.clouds), file=model.file,
                                                    env=env.name, cloud=env.cloud), hint=CLOUD_NOT_SUPPORTED_HINT)
    commit = ws.head_commit or "uncommitted"
    shown = ws.head_commit[:12] if ws.head_commit else commit
    if ws.ref is None and ws.is_git and ws.is_dirty([model.folder]):
        commit += DIRTY_SUFFIX
        shown += DIRTY_SUFFIX  # the build holds uncommitted changes: the line says so, not just the commit
    runtime.progress.step(f"building {model.name} for {env.name} ({', '.join(env.regions)}) at {shown}")

    work = _work_dir(runtime)
    gathered = artifacts.gather(model, ws, cache_dir=work / ARTIFACT_CACHE, progress=runtime.progress)
    signed = False
    if request.sign_key is not None:
        if ws.ref is not None:
            raise InputError(SIGN_AT_REF)
        artifacts.sign_manifest(gathered.manifest, request.sign_key, ws.root / model.path_in_repo(artifacts.SIGNATURE_FILE))
        runtime.progress.step(f"signed the artifact manifest: {model.path_in_repo(artifacts.SIGNATURE_FILE)}")
    if model.artifacts:
        signed = artifacts.check_signature(model, ws, gathered.manifest,
                                           required_by=_signature_required_by(policy, env.name))

    base_images, identity = _base_images(model, env, runtime)
    ctx = render(model, ws, base_images=base_images, base_identity=identity, manifest=gathered.manifest)
    cdigest = config_digest(model)
    release = naming.release_id(model.name, ctx.digest, cdigest)
    data_urls = {r: (model_data_location(policy, account=env.account, region=r) + f"{model.name}/{release}/model.tar.gz"
                     if gathered.files else "") for r in env.regions}
    images = tuple(BuildImage(r, image_uri(env.account, r, model.name, ctx.digest), data_urls[r]) for r in env.regions)
    result = BuildResult(release=release, model=model.name, environment=env.name, commit=commit, digest=ctx.digest,
                         config_digest=cdigest, manifest_digest=gathered.manifest.digest, builder=builder,
                         cache_hit=False, images=images, base_images=base_images, signed=signed)
    return _Prepared(model=model, env=env, context=ctx,
                     labels=ReleaseLabels(release=release, commit=commit, config_digest=cdigest), gathered=gathered,
                     data_urls=data_urls, work=work, result=result, workspace=ws)


def _write_contexts(prepared: _Prepared, folder: Path, runtime: Runtime) -> BuildResult:
    """``--context-only DIR``: each region's build context in ``DIR/<region>/``; nothing is built."""
    out = folder if folder.is_absolute() else runtime.cwd / folder
    regions = prepared.env.regions
    artifacts.ensure_io_ok(out)
    for region in regions:  # all checked before any is written
        if foreign := prepared.context.foreign_files(out / region):
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise InputError(CONTEXT_NOT_EMPTY.format(folder=out / region, files=shown), hint=CONTEXT_NOT_EMPTY_HINT)
    for region in regions:
        prepared.context.write(out / region, region, prepared.labels)
    runtime.progress.step(f"wrote the build context of {len(regions)} region(s) to {out}")
    return replace(prepared.result, context_dir=out, builder="none")


def _publish(prepared: _Prepared, runtime: Runtime, clients: Clients | None) -> BuildResult:
    """Run the builder (a cache hit when every region has this digest already) and record the release
    and one build per region in the environment's ledger, where deploy finds them."""
    model, env, ctx, gathered, result = prepared.model, prepared.env, prepared.context, prepared.gathered, prepared.result
    archive = None
    extras = model_data_extras(ctx)
    if gathered.files:
        archive = artifacts.write_model_data(
            gathered, prepared.work / MODEL_DATA / artifacts.model_data_name(gathered, extras), extras,
            progress=runtime.progress)
        remember_archive(prepared.work, result.release, archive)

    def check_model_data() -> None:
        # The cached archive is what gets published: before it is, check every member against the
        # pins and the code files rendered from this commit (a reused archive may have changed).
        if archive is not None:
            artifacts.verify_model_data(archive, gathered.manifest, model_folder=model.folder, extras=extras,
                                        progress=runtime.progress)

    if clients is None:
        from modelops.clients import clients_for

        clients = clients_for(env, runtime)
    from modelops.ledger import BuildRecord, ReleaseRecord, open_ledger

    ledger = open_ledger(clients, runtime)
    try:
        recorded = {b.region: b for b in ledger.builds(result.release, env.name)}

        def already_published(region: str) -> bool:
            rec = recorded.get(region)
            return rec is not None and rec.model_data_url == prepared.data_urls[region] and rec.digest == ctx.digest

        plan = BuildPlan(model=model, environment=env, context=ctx, labels=prepared.labels,
                         image_uris={i.region: i.image_uri for i in result.images}, model_data=archive,
                         model_data_urls=prepared.data_urls, work_dir=prepared.work / CONTEXTS / result.release,
                         check_model_data=check_model_data)
        hit = run_builder(result.builder, plan, runtime, clients, already_published=already_published)
        builder = identify(runtime.environ, git_email=prepared.workspace.user_email,
                           caller_arn=None if clients.is_local else clients.caller_arn)
        ledger.record_release(ReleaseRecord(model=model.name, release=result.release, commit=result.commit,
                                            config_digest=result.config_digest, build_digest=ctx.digest,
                                            created_by=builder.name, author=_author(prepared.workspace, result.commit),
                                            source=builder.source))
        for image in result.images:
            ledger.record_build(BuildRecord(model=model.name, release=result.release, environment=env.name,
                                            region=image.region, image_uri=image.image_uri,
                                            model_data_url=image.model_data_url, digest=ctx.digest))
    finally:
        ledger.close()
    runtime.progress.step(f"release {result.release} ({'cache hit' if hit else 'built'})")
    return replace(result, cache_hit=hit)


def verify_artifacts(model: ModelConfig, workspace: Workspace, *, environment: Environment | str,
                     policy: Policy | None = None, runtime: Runtime | None = None,
                     public_key: Path | None = None) -> artifacts.Manifest:
    """Check a model's artifacts before deploy: every artifact file against its pinned sha256 (the
    files in ``workspace``, generated ones in the build cache of ``runtime``), the cached model data
    archive against the manifest, and the manifest signature (verified when present; required when
    the policy's ``signed_artifacts.required_in`` lists the environment).

    Raises :class:`~modelops.errors.GateError` naming the file. Returns the manifest."""
    env_name = environment if isinstance(environment, str) else environment.name
    policy = policy if policy is not None else load_policy(workspace)
    if runtime is not None:
        work = _work_dir(runtime)
        gathered = artifacts.gather(model, workspace, cache_dir=work / ARTIFACT_CACHE, progress=runtime.progress)
        # Every cached archive of this manifest (a DJL model's also carries its code files, which
        # must match the tag in its name), checked member by member against the pins.
        hexdigest = gathered.manifest.digest[len("sha256:"):]
        for archive in sorted((work / MODEL_DATA).glob(f"{hexdigest}*.tar.gz")):
            artifacts.verify_model_data(archive, gathered.manifest, model_folder=model.folder,
                                        progress=runtime.progress)
        manifest = gathered.manifest
    else:
        manifest = artifacts.manifest_of(model, workspace)
    if model.artifacts:
        artifacts.check_signature(model, workspace, manifest, required_by=_signature_required_by(policy, env_name),
                                  public_key=public_key)
    return manifest


__all__ = ["BuildContext", "BuildImage", "BuildRequest", "BuildResult", "build", "config_digest", "verify_artifacts"]
