"""Builders: turn a rendered build context into images (and model data) where an environment's
endpoints can use them.

- ``local``: the local cloud's image store (``modelops.localcloud.add_image``: a content-addressed
  folder with a virtual environment holding the requirements) and its model data store
  (``put_model_data``). Cached by digest.
- ``docker``: ``docker buildx build --platform linux/amd64`` per region (each region's Dockerfile is
  FROM that region's DLC) and a push to ECR: the repository ``modelops/<model>`` is created when
  missing with scan on push, immutable tags and KMS encryption; a tag already in ECR is not built
  again (tags are immutable, and the tag is the digest). Model data goes to S3.
- ``codebuild``: the context of each region as a deterministic zip in S3, an AWS CodeBuild build
  with a generated buildspec (docker login, buildx, push), its log lines streamed as progress.

The docker command line is the seam to Docker (``run_docker``); ECR, S3, CodeBuild and CloudWatch
Logs calls go through ``modelops.clients`` and their errors through ``clients.translate``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.build.artifacts import byte_progress, sha256_file
from modelops.build.context import BuildContext, ReleaseLabels
from modelops.config import Environment, ModelConfig, security_for
from modelops.errors import EnvironmentFailedError, InputError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients

BUILDERS = ("local", "docker", "codebuild")

UNKNOWN_BUILDER = "unknown builder '{builder}' (builders: local, docker, codebuild)"
LOCAL_NEEDS_LOCAL_CLOUD = "the local builder fills the local cloud's image store, but environment {env} is on {cloud}"
LOCAL_NEEDS_LOCAL_CLOUD_HINT = "use --builder docker or --builder codebuild for aws environments"
NO_DOCKER = "no Docker engine: {reason}; the codebuild builder builds in AWS without one"
NO_DOCKER_HINT = "start Docker, or pass --builder codebuild (or set builder: codebuild in environments.yaml)"
DOCKER_FAILED = "docker {what} failed for {image} (exit {code}): {detail}"
CODEBUILD_FAILED = "CodeBuild build {build_id} for {image} ended {status}: {detail}"
CODEBUILD_FAILED_HINT = "see the build's log in the CodeBuild console (log group {group})"
CODEBUILD_TIMEOUT = "CodeBuild build {build_id} for {image} did not finish within {minutes} minutes"

REPOSITORY_PREFIX = "modelops"
CODEBUILD_PROJECT = "modelops-image-build"
CODEBUILD_IMAGE = "aws/codebuild/standard:7.0"
CODEBUILD_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class BuildPlan:
    """Everything a builder needs for one model in one environment."""

    model: ModelConfig
    environment: Environment
    context: BuildContext
    labels: ReleaseLabels
    image_uris: Mapping[str, str]  # region -> image URI
    model_data: Path | None  # model.tar.gz, None when the model has no artifact files
    model_data_urls: Mapping[str, str]  # region -> s3 URL ("" when no model data)
    work_dir: Path  # where builders may write contexts
    # Checks ``model_data`` member by member (GateError naming the file); builders call it right
    # before they publish the archive, so a cache hit that publishes nothing does not pay for it.
    check_model_data: Callable[[], None] = lambda: None

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.image_uris)

    @property
    def tag(self) -> str:
        return next(iter(self.image_uris.values())).rsplit(":", 1)[1]

    def kms_key(self, region: str) -> str | None:
        return security_for(self.model, self.environment, region).kms_key


def repository_name(model: str) -> str:
    return f"{REPOSITORY_PREFIX}/{model}"


def image_tag(digest: str) -> str:
    """The image tag: the build digest's first 16 hex digits (ECR tags may not hold ':')."""
    return digest.split(":", 1)[-1][:16]


def image_uri(account: str, region: str, model: str, digest: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository_name(model)}:{image_tag(digest)}"


# -- local -----------------------------------------------------------------------------------------


def build_local(plan: BuildPlan, runtime: Runtime, *, already_published: Callable[[str], bool]) -> bool:
    """Fill the local cloud's image and model data stores. Returns True on a cache hit (the image
    was in the store already). ``already_published(region)``: the ledger already records this
    release's model data there, so the copy is skipped."""
    from modelops import localcloud

    if not plan.environment.is_local:
        raise InputError(LOCAL_NEEDS_LOCAL_CLOUD.format(env=plan.environment.name, cloud=plan.environment.cloud),
                         hint=LOCAL_NEEDS_LOCAL_CLOUD_HINT)
    store = runtime.local_cloud_dir
    ctx = plan.context
    hit = localcloud.has_image(store, ctx.digest)
    with tempfile.TemporaryDirectory(prefix="modelops-build-") as tmp:
        # The image's files as they sit in the context (the first region's; only FROM differs).
        folder = ctx.write(Path(tmp) / "context", plan.regions[0], plan.labels)
        code_dir = folder / "code"
        code_dir.mkdir(exist_ok=True)
        if "serving.properties" in ctx.files and not (code_dir / "serving.properties").exists():
            shutil.copyfile(folder / "serving.properties", code_dir / "serving.properties")
        if not hit:
            runtime.progress.step(f"building image {image_tag(ctx.digest)} (installing requirements)")
        localcloud.add_image(store, digest=ctx.digest, image_uris=list(plan.image_uris.values()), code_dir=code_dir,
                             requirements=folder / "requirements.txt" if ctx.has_requirements else None,
                             contract=ctx.contract, environment=dict(ctx.environment), progress=runtime.progress)
    if plan.model_data is not None:
        regions = [r for r in plan.regions if not (hit and already_published(r))]
        if regions:
            plan.check_model_data()
        for region in regions:
            with byte_progress(runtime.progress, f"{region}: storing the model data", plan.model_data.stat().st_size,
                               counted=False):
                localcloud.put_model_data(store, plan.model_data_urls[region], plan.model_data)
    return hit


# -- docker ----------------------------------------------------------------------------------------


def _which(name: str, runtime: Runtime) -> str | None:
    return shutil.which(name, path=runtime.environ.get("PATH"))


def run_docker(args: Sequence[str], runtime: Runtime, *, stdin: str | None = None,
               on_line: Callable[[str], None] | None = None, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``docker ARGS`` (the one place modelops runs docker); returns (exit code, last lines)."""
    exe = _which("docker", runtime)
    if exe is None:
        raise EnvironmentFailedError(NO_DOCKER.format(reason="the docker command is not installed"), hint=NO_DOCKER_HINT)
    proc = subprocess.Popen([exe, *args], cwd=cwd, env=dict(runtime.environ), text=True,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-4:], line]
        if on_line is not None and line:
            on_line(line)
    return proc.wait(), " / ".join(t for t in tail if t)


def check_docker(runtime: Runtime) -> None:
    """:class:`EnvironmentFailedError` naming the codebuild builder when no Docker engine answers."""
    code, detail = run_docker(["info", "--format", "{{.ServerVersion}}"], runtime)
    if code != 0:
        reason = detail.splitlines()[-1] if detail else f"docker info exited {code}"
        raise EnvironmentFailedError(NO_DOCKER.format(reason=reason[:200]), hint=NO_DOCKER_HINT)


def ensure_repository(ecr: Any, name: str, *, kms_key: str | None, model: str) -> None:
    """The ECR repository ``name``: created when missing, scanned on push, immutable tags, KMS."""
    try:
        ecr.describe_repositories(repositoryNames=[name])
        return
    except ecr.exceptions.RepositoryNotFoundException:
        pass
    encryption: dict[str, str] = {"encryptionType": "KMS"}
    if kms_key:
        encryption["kmsKey"] = kms_key
    # A parallel build may make it meanwhile.
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True},
                              encryptionConfiguration=encryption,
                              tags=[{"Key": "modelops:model", "Value": model}])


def image_exists(ecr: Any, name: str, tag: str) -> bool:
    try:
        found = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    return bool(found.get("imageDetails"))


def _in_ecr(ecr: Any, repo: str, plan: BuildPlan, region: str, runtime: Runtime) -> bool:
    """Make the region's repository ready; True (said as progress) when the image is in it already."""
    ensure_repository(ecr, repo, kms_key=plan.kms_key(region), model=plan.model.name)
    if image_exists(ecr, repo, plan.tag):
        runtime.progress.step(f"{region}: {plan.image_uris[region]} is in ECR already")
        return True
    return False


def _docker_login(ecr: Any, runtime: Runtime, registry_ids: Sequence[str] | None = None) -> None:
    """``docker login`` to ECR with a token from GetAuthorizationToken (password on stdin, never
    in the command line or the logs)."""
    kwargs = {"registryIds": list(registry_ids)} if registry_ids else {}
    for data in ecr.get_authorization_token(**kwargs)["authorizationData"]:
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        endpoint = data["proxyEndpoint"]
        code, detail = run_docker(["login", "--username", user, "--password-stdin", endpoint], runtime, stdin=password)
        if code != 0:
            raise EnvironmentFailedError(DOCKER_FAILED.format(what="login", image=endpoint, code=code, detail=detail[-200:]))


def build_docker(plan: BuildPlan, runtime: Runtime, clients: Clients) -> bool:
    """Build and push each region's image; True when every tag was in ECR already (cache hit)."""
    from modelops.clients import translate

    check_docker(runtime)
    repo = repository_name(plan.model.name)
    all_hit = True
    for region, uri in plan.image_uris.items():
        try:
            ecr = clients.client("ecr", region)
            if _in_ecr(ecr, repo, plan, region, runtime):
                continue
            all_hit = False
            _docker_login(ecr, runtime)
            base_account = plan.context.base_images[region].split(".", 1)[0]
            if base_account.isdigit() and base_account != plan.environment.account:
                _docker_login(ecr, runtime, [base_account])  # pull access to the DLC registry
        except Exception as exc:
            raise translate(exc, resource=f"{plan.environment.name}:{region}:ecr/{repo}") from exc
        folder = plan.context.write(plan.work_dir / region, region, plan.labels)
        task = f"build {region}"

        def show(line: str, task: str = task) -> None:
            runtime.progress.advance(task, 0, message=line[-120:])

        runtime.progress.start(task)
        code, detail = run_docker(["buildx", "build", "--platform", "linux/amd64", "--provenance=false",
                                   "--tag", uri, "--push", str(folder)], runtime, on_line=show)
        runtime.progress.finish(task)
        if code != 0:
            raise EnvironmentFailedError(DOCKER_FAILED.format(what="buildx build", image=uri, code=code,
                                                              detail=detail[-300:]))
    upload_model_data(plan, runtime, clients)
    return all_hit


def upload_model_data(plan: BuildPlan, runtime: Runtime, clients: Clients) -> None:
    """Put model.tar.gz at each region's model data URL (skipped when S3 holds it already)."""
    from modelops.clients import translate

    if plan.model_data is None:
        return
    plan.check_model_data()
    sha = sha256_file(plan.model_data)
    for region in plan.regions:
        bucket, _, key = plan.model_data_urls[region].removeprefix("s3://").partition("/")
        try:
            s3 = clients.client("s3", region)
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                if head.get("Metadata", {}).get("sha256") == sha:
                    continue
            except Exception as exc:
                if _code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                    raise
            extra: dict[str, Any] = {"Metadata": {"sha256": sha}}
            kms = plan.kms_key(region)
            if kms:
                extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms)
            with byte_progress(runtime.progress, f"{region}: uploading the model data",
                               plan.model_data.stat().st_size) as advance:
                s3.upload_file(str(plan.model_data), bucket, key, ExtraArgs=extra, Callback=advance)
            runtime.progress.step(f"{region}: model data at s3://{bucket}/{key}")
        except Exception as exc:
            raise translate(exc, resource=f"{plan.environment.name}:{region}:s3://{bucket}/{key}") from exc


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code")) if isinstance(response, dict) else None


# -- codebuild -------------------------------------------------------------------------------------


def buildspec(image: str, base_image: str, region: str) -> str:
    """The buildspec CodeBuild runs: log in to ECR (the target and the DLC registry), build, push."""
    registry = image.split("/", 1)[0]
    base_registry = base_image.split("/", 1)[0]
    return "\n".join([
        "version: 0.2",
        "phases:",
        "  pre_build:",
        "    commands:",
        f"      - aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {registry}",
        f"      - aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {base_registry}",
        "  build:",
        "    commands:",
        f"      - docker buildx build --platform linux/amd64 --provenance=false --tag {image} --push .",
        "",
    ])


def context_zip(folder: Path) -> bytes:
    """A deterministic zip of a context folder (sorted, fixed times), what CodeBuild unpacks."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def build_bucket(account: str, region: str) -> str:
    return f"modelops-build-{account}-{region}"


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except Exception as exc:
        if _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


def _ensure_project(cb: Any, plan: BuildPlan, source: str) -> None:
    found = cb.batch_get_projects(names=[CODEBUILD_PROJECT]).get("projects") or []
    if found:
        return
    cb.create_project(
        name=CODEBUILD_PROJECT,
        description="modelops: builds model images from rendered contexts",
        source={"type": "S3", "location": source},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": CODEBUILD_IMAGE, "computeType": "BUILD_GENERAL1_MEDIUM",
                     "privilegedMode": True},
        serviceRole=f"arn:aws:iam::{plan.environment.account}:role/modelops-codebuild",
        timeoutInMinutes=CODEBUILD_TIMEOUT_SECONDS // 60,
    )


def build_codebuild(plan: BuildPlan, runtime: Runtime, clients: Clients, *, poll_seconds: float = 5.0) -> bool:
    """Build each region's image in CodeBuild; True when every tag was in ECR already."""
    from modelops.clients import translate

    repo = repository_name(plan.model.name)
    all_hit = True
    for region, uri in plan.image_uris.items():
        resource = f"{plan.environment.name}:{region}:codebuild/{CODEBUILD_PROJECT}"
        try:
            ecr = clients.client("ecr", region)
            if _in_ecr(ecr, repo, plan, region, runtime):
                continue
            all_hit = False
            folder = plan.context.write(plan.work_dir / region, region, plan.labels)
            s3 = clients.client("s3", region)
            bucket = build_bucket(plan.environment.account, region)
            _ensure_bucket(s3, bucket, region)
            key = f"contexts/{plan.model.name}/{plan.tag}.zip"
            s3.put_object(Bucket=bucket, Key=key, Body=context_zip(folder))
            cb = clients.client("codebuild", region)
            _ensure_project(cb, plan, f"{bucket}/{key}")
            build = cb.start_build(projectName=CODEBUILD_PROJECT, sourceTypeOverride="S3",
                                   sourceLocationOverride=f"{bucket}/{key}",
                                   buildspecOverride=buildspec(uri, plan.context.base_images[region], region))["build"]
            runtime.progress.step(f"{region}: CodeBuild build {build['id']} started")
            _follow(cb, clients, region, build["id"], uri, runtime, poll_seconds)
        except Exception as exc:
            raise translate(exc, resource=resource) from exc
    upload_model_data(plan, runtime, clients)
    return all_hit


def _follow(cb: Any, clients: Clients, region: str, build_id: str, image: str, runtime: Runtime,
            poll_seconds: float) -> None:
    """Wait for a CodeBuild build, streaming its CloudWatch log lines as progress."""
    task = f"codebuild {region}"
    runtime.progress.start(task)
    token: str | None = None
    logs = None
    deadline = runtime.clock.monotonic() + CODEBUILD_TIMEOUT_SECONDS
    group = ""
    try:
        while True:
            build = cb.batch_get_builds(ids=[build_id])["builds"][0]
            log_info = build.get("logs") or {}
            group, stream = log_info.get("groupName", ""), log_info.get("streamName")
            if group and stream:
                logs = logs or clients.client("logs", region)
                token = _stream_logs(logs, group, stream, token, lambda line: runtime.progress.advance(
                    task, 0, message=line))
            status = build.get("buildStatus", "IN_PROGRESS")
            if status != "IN_PROGRESS":
                break
            if runtime.clock.monotonic() > deadline:
                raise EnvironmentFailedError(CODEBUILD_TIMEOUT.format(build_id=build_id, image=image,
                                                                      minutes=CODEBUILD_TIMEOUT_SECONDS // 60))
            runtime.clock.sleep(poll_seconds)
    finally:
        runtime.progress.finish(task)
    if status != "SUCCEEDED":
        phases = [p for p in build.get("phases") or [] if p.get("phaseStatus") not in (None, "SUCCEEDED")]
        detail = "; ".join(c.get("message", "") for p in phases for c in p.get("contexts") or []) or status
        raise EnvironmentFailedError(CODEBUILD_FAILED.format(build_id=build_id, image=image, status=status,
                                                             detail=detail[:300]),
                                     hint=CODEBUILD_FAILED_HINT.format(group=group or "/aws/codebuild/" + CODEBUILD_PROJECT))


def _stream_logs(logs: Any, group: str, stream: str, token: str | None, emit: Callable[[str], None]) -> str | None:
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    if token:
        kwargs["nextToken"] = token
    try:
        page = logs.get_log_events(**kwargs)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return token  # the stream appears once the build container starts
        raise
    for event in page.get("events") or []:
        emit(str(event.get("message", "")).rstrip())
    return page.get("nextForwardToken") or token


def run_builder(name: str, plan: BuildPlan, runtime: Runtime, clients: Clients,
                *, already_published: Callable[[str], bool]) -> bool:
    """Run the builder ``name``; returns whether it was a cache hit."""
    if name == "local":
        return build_local(plan, runtime, already_published=already_published)
    if name == "docker":
        return build_docker(plan, runtime, clients)
    if name == "codebuild":
        return build_codebuild(plan, runtime, clients)
    raise InputError(UNKNOWN_BUILDER.format(builder=name))


__all__ = [
    "BUILDERS", "BuildPlan", "build_codebuild", "build_docker", "build_local", "buildspec", "check_docker",
    "context_zip", "ensure_repository", "image_exists", "image_tag", "image_uri", "repository_name",
    "run_builder", "run_docker",
]
