"""Build's refusals that depend on the config, as validate findings: what build and deploy would
refuse, reported by validate (and so by ``ci pr`` and deploy's policy gate) before anything builds.

Each check calls the function build or deploy refuses with, so the two cannot disagree:

- ``security.artifact-signature``: :func:`~modelops.build.artifacts.check_signature` (what deploy's
  ``verify_artifacts`` runs): ``artifacts.sig`` where an environment the model deploys to requires
  signed artifacts, the repository's public key wherever a signature exists, and the signature
  itself (verified with model-signing when every artifact file is at hand; answers cached by the
  signature, the key and the artifacts' pins);
- ``build.model-data``: a DJL model's code files and artifacts may not share a name in the model
  data archive (:func:`~modelops.build.artifacts.clashing_names`);
- hadolint over the rendered Dockerfile (``modelops.build.lint``).

Importing this module registers them (the CLI imports it when a command runs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from modelops.build import artifacts
from modelops.build import lint as _lint  # noqa: F401 - registers hadolint's checker too
from modelops.build.context import model_data_code_names
from modelops.config.findings import Finding, Severity
from modelops.config.model import ModelConfig
from modelops.errors import ModelopsError
from modelops.policy import CheckContext, register_checker
from modelops.policy.context import reads
from modelops.policy.jsoncache import JsonCache
from modelops.policy.rules import Rule, register_rule

MODEL_DATA_RULE = "build.model-data"
register_rule(Rule(MODEL_DATA_RULE, Severity.error, "a DJL model's code file and an artifact share a name"))


def _where(model: ModelConfig) -> tuple[str | int, ...]:
    return ("spec", "artifacts") if model.source.has(("spec", "artifacts")) else ("metadata", "name")


@reads(("spec", "artifacts"), ("spec", "clouds"))
def check_signatures(ctx: CheckContext) -> Iterator[Finding | None]:
    """The artifact signature, as deploy checks it in each environment the model deploys to."""
    ws = ctx.workspace
    cache = JsonCache(ctx.runtime.data_dir / "cache" / "signatures.json", namespace="signatures 1")
    for model in ctx.models:
        if not model.artifacts:
            continue  # deploy verifies signatures of models with artifacts only
        required_by = next((e.name for e in ctx.deploy_targets(model)
                            if e.name in ctx.policy.signed_artifacts_required_in), None)
        signature = model.path_in_repo(artifacts.SIGNATURE_FILE)
        if not ws.is_file(signature) and required_by is None:
            continue
        key = _cache_key(ctx, model, signature, required_by)
        answer = cache.get(key) if key is not None else None
        if answer is None:
            answer = _signature_problem(ctx, model, required_by)
            if answer is not None and key is not None:
                cache.put(key, answer)
        if answer:
            yield ctx.at(model, "security.artifact-signature", _where(model), answer[0], answer[1])
    cache.save()


def _cache_key(ctx: CheckContext, model: ModelConfig, signature: str, required_by: str | None) -> str | None:
    """What the answer depends on: the signature, the public key and the artifacts (their pins and
    file identities); None when a file cannot be identified (not cached then)."""
    ws = ctx.workspace
    parts = [model.name, required_by or "", artifacts.PUBLIC_KEY_FILE]
    for rel in (signature, artifacts.PUBLIC_KEY_FILE):
        parts.append(ws.identity(rel) or "absent")
    for a in model.artifacts:
        identity = ws.identity(model.path_in_repo(a.path)) if a.path else a.uri
        if identity is None:
            return None
        parts += [a.sha256, identity]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _signature_problem(ctx: CheckContext, model: ModelConfig, required_by: str | None) -> list[str] | None:
    """[message, hint] of what deploy would refuse; [] when it would not; None when it cannot be told
    here (an artifact only its generator makes: deploy checks it after the build)."""
    import tempfile
    from pathlib import Path

    ws = ctx.workspace
    signed = ws.is_file(model.path_in_repo(artifacts.SIGNATURE_FILE))
    manifest = artifacts.Manifest(model.name, (), ())  # enough to say a required signature is missing
    if signed:
        if any(a.path and not ws.is_file(model.path_in_repo(a.path)) for a in model.artifacts):
            return None
        try:
            with tempfile.TemporaryDirectory(prefix="modelops-validate-") as tmp:
                manifest = artifacts.manifest_of(model, ws, cache_dir=Path(tmp))
        except ModelopsError:
            return None  # an artifact that does not match its pin: security.artifact-sha256 says so
    try:
        artifacts.check_signature(model, ws, manifest, required_by=required_by)
    except ModelopsError as err:
        return [err.message, err.hint or ""]
    return []


@reads(("spec", "artifacts"), ("spec", "container", "handler"))
def check_model_data(ctx: CheckContext) -> Iterator[Finding | None]:
    """A DJL model's data archive holds its code files beside its artifacts: no name twice."""
    for model in ctx.models:
        paths = [a.path for a in model.artifacts if a.path]
        if not paths or model.container.handler.contract != "djl-python":
            continue
        try:
            code = model_data_code_names(model, ctx.workspace)
        except ModelopsError:
            continue  # a missing code file: check_paths reports it
        clash = artifacts.clashing_names(paths, code)
        if clash:
            yield ctx.at(model, MODEL_DATA_RULE, _where(model), artifacts.MODEL_DATA_CLASH.format(names=", ".join(clash)),
                         artifacts.MODEL_DATA_CLASH_HINT)


def register() -> None:
    """Add build's checkers to every validate run (idempotent)."""
    register_checker(check_signatures, scope="model")
    register_checker(check_model_data, scope="model")


register()

__all__ = ["check_model_data", "check_signatures", "register"]
