"""Security rules: images, secrets in environment values, artifacts, and what each environment
requires (KMS, VPC, network isolation, a scoped execution role, allowed instance types, signatures).

Messages never include a secret's value."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

from modelops.config import catalog
from modelops.config.effective import security_for
from modelops.config.findings import Finding
from modelops.config.model import ModelConfig
from modelops.config.yamlsource import SourceMap
from modelops.policy.context import CheckContext, reads
from modelops.policy.jsoncache import JsonCache
from modelops.sizes import human_size

IMAGE_REGISTRY = "image registry '{registry}' is not an AWS Deep Learning Container registry"
IMAGE_REGISTRY_HINT = "use framework + framework_version, or a DLC image (<dlc account>.dkr.ecr.<region>.amazonaws.com)"
IMAGE_UNPINNED = "image '{image}' is not pinned: {why}"
IMAGE_UNPINNED_HINT = "use a version tag (not latest) or a digest (@sha256:...)"
IMAGE_DIGEST = "image '{image}' is pinned by tag only; a tag can be moved"
SECRET = "{name} looks like {kind}; secrets do not belong in environment variables (value not shown)"
SECRET_HINT = "store it in AWS Secrets Manager and pass its ARN, or let the execution role grant access"
ARTIFACT_SHA = "artifact '{path}' has sha256 {actual}, not the pinned {expected}"
ARTIFACT_SHA_HINT = "re-generate the artifact, or pin the new content if the change is intended"
ARTIFACT_SIZE = ("the artifact files of {model} total {size}, more than the policy's {limit} MB: every build hashes "
                 "and packs them and every region stores a copy")
ARTIFACT_SIZE_HINT = ("keep large weights in s3 (spec.artifacts[].uri, fetched by the serving stack), or raise "
                      "artifact_max_size_mb in pipelines/policy.yaml")
ARTIFACT_MISSING = "artifact '{path}' does not exist in {folder} and has no generated_by script"
ARTIFACT_LOCATION = "artifact '{uri}' is outside the allowed locations"
INSTANCE_TYPE = "instance type {type} is not allowed in {environment}"
KMS = "no KMS key in {environment} ({regions}); {environment} requires one"
KMS_HINT = "set spec.security.kms_key, or security.kms_key of the environment in pipelines/environments.yaml"
VPC = "no VPC config in {environment} ({regions}); {environment} requires one"
VPC_HINT = "set spec.security.vpc, or security.vpc.<region> of the environment in pipelines/environments.yaml"
ISOLATION = "network isolation is off in {environment}; {environment} requires it"
ISOLATION_HINT = "set spec.security.network_isolation: true (the container then has no outbound network)"
ROLE_MISSING = "no execution role in {environment}; {environment} requires a scoped one"
ROLE_MISSING_HINT = "set spec.security.execution_role to a role made for this model"
ROLE_ACCOUNT = "execution role is in account {role_account}, not {environment}'s account {account}"
ROLE_BROAD = "execution role '{role}' is not scoped to this model ({why})"
ROLE_BROAD_HINT = "use a role with only the permissions this model needs (its artifacts, its KMS key, its logs)"

_IMAGE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9{}-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[A-Za-z0-9_.{}-]{1,128}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

_SECRET_VALUES = [
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"), "an AWS access key id"),
    (re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY"), "a private key"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"), "a GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), "an API secret key"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a JSON web token"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]
_SECRET_WORDS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "credential",
                 "credentials", "auth")
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("client", "secret")}


def _secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret: DB_PASSWORD, HF_TOKEN, DBPASSWORD, API_KEY;
    not TOKENIZERS_PARALLELISM or PASSTHROUGH_MODE (whole words only)."""
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if p]
    if any(p in _SECRET_WORDS or p.endswith(("password", "passwd", "secret", "token", "apikey")) for p in parts):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(parts))


_REFERENCE = re.compile(r"^(?:arn:aws[a-z-]*:(?:secretsmanager|ssm|kms):|\{\{resolve:|ssm:|secretsmanager:)")
_BROAD_ROLE = re.compile(r"(?i)(admin|fullaccess|poweruser|\*|^AmazonSageMaker-ExecutionRole-)")


def secret_kind(name: str, value: str) -> str | None:
    """What secret ``value`` (of environment variable ``name``) looks like, or None."""
    for pattern, kind in _SECRET_VALUES:
        if pattern.search(value):
            return kind
    # A literal for a secret-named variable is a password or token, whatever its shape. Booleans
    # and numbers ("AUTH_ENABLED=true", "TOKEN_LIMIT=512") are settings, not secrets.
    is_setting = value.strip().lower() in ("", "true", "false", "yes", "no", "on", "off", "none") or value.isdigit()
    if _secret_name(name) and not is_setting and not _REFERENCE.match(value):
        return "a password or token"
    return None


def check_secrets(ctx: CheckContext) -> Iterator[Finding | None]:
    for model in ctx.models:
        for name, value in model.container.env.items():
            kind = secret_kind(name, value)
            if kind:
                yield ctx.at(model, "security.secret-in-env", ("spec", "container", "env", name),
                             SECRET.format(name=f"spec.container.env.{name}", kind=kind), SECRET_HINT)


def secrets_in_document(ctx: CheckContext, file: str, model: str | None, document: Any,
                        source: SourceMap) -> Iterator[Finding | None]:
    """The secret scan on a raw document, for configs that failed their schema (no typed model):
    a secret must be reported whatever else is wrong."""
    try:
        env = document["spec"]["container"]["env"]
    except (KeyError, TypeError, IndexError):
        return
    if not isinstance(env, dict):
        return
    for name, value in env.items():
        kind = secret_kind(str(name), value) if isinstance(value, str) else None
        if kind:
            yield ctx.in_file(file, source, "security.secret-in-env", ("spec", "container", "env", name),
                              SECRET.format(name=f"spec.container.env.{name}", kind=kind), SECRET_HINT, model=model)


@reads(("spec", "container", "image"))
def check_image(ctx: CheckContext) -> Iterator[Finding | None]:
    accounts = catalog.dlc_accounts()
    for model in ctx.models:
        image = model.container.image
        if image is None:
            continue
        at = ("spec", "container", "image")
        match = _IMAGE.match(image)
        if match is None or match["account"] not in accounts:
            registry = image.split("/", 1)[0] if "/" in image else "docker.io"
            yield ctx.at(model, "security.image-registry", at, IMAGE_REGISTRY.format(registry=registry),
                         IMAGE_REGISTRY_HINT)
        tag = match["tag"] if match else (image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None)
        digest = match["digest"] if match else ("@sha256:" in image or None)
        if not digest and (tag is None or tag == "latest"):
            why = "its tag is latest" if tag == "latest" else "it has no tag"
            yield ctx.at(model, "security.image-unpinned", at, IMAGE_UNPINNED.format(image=image, why=why),
                         IMAGE_UNPINNED_HINT)
        elif not digest:
            yield ctx.at(model, "security.image-digest", at, IMAGE_DIGEST.format(image=image),
                         "append @sha256:<digest> to pin the exact image")


def _location_pattern(prefix: str) -> re.Pattern[str]:
    parts = re.split(r"(\{account\}|\{region\}|\{environment\})", prefix)
    regex = "".join("[a-z0-9-]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile("^" + regex)


@reads(("spec", "artifacts"))
def check_artifacts(ctx: CheckContext) -> Iterator[Finding | None]:
    ws = ctx.workspace
    # sha256 of artifact files by file identity (stat data or git blob id): large artifacts are
    # hashed once.
    cache = JsonCache(ctx.runtime.data_dir / "cache" / "artifact-sha256.json")
    patterns = [_location_pattern(p) for p in ctx.policy.artifact_locations]
    for model in ctx.models:
        sizes: dict[int, int] = {}  # artifact index -> bytes, for the files that exist
        for i, artifact in enumerate(model.artifacts):
            if artifact.uri is not None:
                if not any(p.match(artifact.uri) for p in patterns):
                    allowed = ", ".join(ctx.policy.artifact_locations) or "none (policy.yaml artifact_locations)"
                    yield ctx.at(model, "security.artifact-location", ("spec", "artifacts", i, "uri"),
                                 ARTIFACT_LOCATION.format(uri=artifact.uri), f"allowed: {allowed}")
                continue
            assert artifact.path is not None
            if ws.escape_reason(model.folder, artifact.path):
                continue  # reported by the path checks
            rel = model.path_in_repo(os.path.normpath(artifact.path).replace(os.sep, "/"))
            identity = ws.identity(rel)
            if identity is None or not ws.is_file(rel):
                if artifact.generated_by is None:
                    yield ctx.at(model, "security.artifact-missing", ("spec", "artifacts", i, "path"),
                                 ARTIFACT_MISSING.format(path=artifact.path, folder=model.folder),
                                 "commit the artifact, or name the script that makes it in generated_by")
                continue
            sizes[i] = ws.size(rel)
            actual = cache.get(identity)
            if actual is None:
                actual = ws.sha256(rel)
                cache.put(identity, actual)
            if actual != artifact.sha256:
                yield ctx.at(model, "security.artifact-sha256", ("spec", "artifacts", i, "sha256"),
                             ARTIFACT_SHA.format(path=artifact.path, actual=actual, expected=artifact.sha256),
                             ARTIFACT_SHA_HINT)
        limit = ctx.policy.artifact_max_size_mb
        if sum(sizes.values()) > limit * 1_000_000:
            largest = max(sizes, key=lambda i: sizes[i])
            yield ctx.at(model, "capacity.artifact-size", ("spec", "artifacts", largest, "path"),
                         ARTIFACT_SIZE.format(model=model.name, size=human_size(sum(sizes.values())), limit=f"{limit:g}"),
                         ARTIFACT_SIZE_HINT)
    cache.save()


def _where(model: ModelConfig, env: str, *names: str) -> tuple[str | int, ...]:
    """The most specific place in the model config that sets ``spec...names`` for ``env``."""
    for path in (("spec", "environments", env, *names), ("spec", *names)):
        if model.source.has(path):
            return path
    parent: tuple[str | int, ...] = ("spec", *names[:-1])
    return parent if model.source.has(parent) else ("spec",)


@reads(("spec", "clouds"), ("spec", "resources", "instance_type"), ("spec", "security"),
       ("spec", "environments", "*", "resources", "instance_type"), ("spec", "environments", "*", "security"))
def check_environments(ctx: CheckContext) -> Iterator[Finding | None]:
    """Per environment the model deploys to: allowed instance type, KMS, VPC, network isolation,
    execution role (signed artifacts: ``modelops.build.checks``, as deploy verifies them)."""
    policy = ctx.policy
    for model in ctx.models:
        for env in ctx.deploy_targets(model):
            res = model.resources_for(env.name)
            if not policy.allows_instance_type(env.name, res.instance_type) and ctx.enforced_in(
                    "security.instance-type", env.name):
                yield ctx.at(model, "security.instance-type", _where(model, env.name, "resources", "instance_type"),
                             INSTANCE_TYPE.format(type=res.instance_type, environment=env.name),
                             f"allowed in {env.name}: {', '.join(policy.instance_types.get(env.name, ()))}")
            per_region = {region: security_for(model, env, region) for region in env.regions}
            no_kms = [r for r, s in per_region.items() if not s.kms_key]
            if no_kms and ctx.enforced_in("security.kms-required", env.name):
                yield ctx.at(model, "security.kms-required", _where(model, env.name, "security"),
                             KMS.format(environment=env.name, regions=", ".join(no_kms)), KMS_HINT)
            no_vpc = [r for r, s in per_region.items() if s.vpc is None]
            if no_vpc and ctx.enforced_in("security.vpc-required", env.name):
                yield ctx.at(model, "security.vpc-required", _where(model, env.name, "security"),
                             VPC.format(environment=env.name, regions=", ".join(no_vpc)), VPC_HINT)
            any_region = next(iter(per_region.values()))
            if any_region.network_isolation is not True and ctx.enforced_in("security.network-isolation", env.name):
                yield ctx.at(model, "security.network-isolation",
                             _where(model, env.name, "security", "network_isolation"),
                             ISOLATION.format(environment=env.name), ISOLATION_HINT)
            if ctx.enforced_in("security.execution-role", env.name):
                yield from _check_role(ctx, model, env.name, env.account, any_region.execution_role)


def _check_role(ctx: CheckContext, model: ModelConfig, env: str, account: str,
                role: str | None) -> Iterator[Finding | None]:
    def at() -> tuple[str | int, ...]:  # looked up only for a finding: most models have none
        return _where(model, env, "security", "execution_role")

    if not role:
        yield ctx.at(model, "security.execution-role", at(), ROLE_MISSING.format(environment=env), ROLE_MISSING_HINT)
        return
    role_account = role.split(":")[4] if role.count(":") >= 5 else ""
    if role_account != account:
        yield ctx.at(model, "security.execution-role", at(),
                     ROLE_ACCOUNT.format(role_account=role_account, environment=env, account=account),
                     "use {account} in the role ARN so it follows the environment")
    name = role.rsplit("/", 1)[-1]
    broad = _BROAD_ROLE.search(name)
    if broad:
        yield ctx.at(model, "security.execution-role", at(),
                     ROLE_BROAD.format(role=name, why=f"its name has '{broad.group(1)}'"), ROLE_BROAD_HINT)
