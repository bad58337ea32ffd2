"""The build context of a model, rendered deterministically, and its content digest.

A context holds, for every region the model deploys to::

    Dockerfile               FROM the region's DLC; labels; ENV; requirements; code
    code/...                 the handler code (the handler's source_dir, or its entry point alone)
    requirements.txt         the model's requirements (when it has some)
    serving.properties       DJL / LMI models: spec.container.serving as DJL reads it
    artifacts.manifest.json  sha256 and size of every artifact (see modelops.build.artifacts)

**The digest** is ``sha256:`` over a canonical tar (paths sorted, mtime 0, mode 0644, owner 0:0,
GNU format) of the region-independent content: every file above, with the Dockerfile in its
*canonical* form, where the ``FROM`` registry host (``<account>.dkr.ecr.<region>.amazonaws.com``, the
only per-region difference) is replaced by the fixed token ``dlc-registry.invalid`` and the release
labels (release, git commit, config digest: they are derived from the digest, or would make every
commit a new image) by ``-``. The DLC's identity (repository and tag, e.g.
``sagemaker-scikit-learn:1.2-1-cpu-py3``) stays in, so a different framework, version or processor
is a different digest. One digest therefore serves every region, and two clones of one commit give
the same digest on any machine.

Inference-toolkit models get ``SAGEMAKER_PROGRAM`` (the entry point inside ``/opt/ml/code``) and
``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/code``; DJL models get ``serving.properties`` plus the same
options as ``OPTION_*`` / ``SERVING_*`` environment variables (DJL reads either; the variables win
when SageMaker mounts model data over ``/opt/ml/model``) and ``OPTION_ENTRYPOINT`` naming their
handler, which DJL finds in the model dir: a DJL model's data archive also carries its ``.py`` code and
``serving.properties`` (:func:`model_data_extras`), while ``/opt/ml/code`` keeps the image's copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from modelops.build.artifacts import MANIFEST_FILE, Manifest, read_file
from modelops.config import ModelConfig, Workspace
from modelops.errors import InputError

CODE_DIR = "/opt/ml/code"
PLACEHOLDER_REGISTRY = "dlc-registry.invalid"
PLACEHOLDER_LABEL = "-"

NO_ENTRY_POINT = "{file}: spec.container.handler.entry_point is required for the {contract} contract"
MISSING_FILE = "{file} does not exist"
MISSING_FILE_HINT = "fix the path in model.yaml (paths are relative to the model folder)"

_SKIP_PARTS = frozenset({"__pycache__"})


@dataclass(frozen=True)
class ReleaseLabels:
    """Values of the image labels that identify the release (not part of the digest)."""

    release: str = PLACEHOLDER_LABEL
    commit: str = PLACEHOLDER_LABEL
    config_digest: str = PLACEHOLDER_LABEL


@dataclass(frozen=True)
class BuildContext:
    """A model's rendered build context (see the module docstring)."""

    model: str
    contract: str
    files: Mapping[str, bytes]  # region-independent files, context-relative posix path -> content
    base_images: Mapping[str, str]  # region -> the FROM image
    base_identity: str  # repository:tag of the DLC (or the explicit image)
    environment: Mapping[str, str]  # the image's ENV, in order
    has_requirements: bool
    digest: str = field(default="")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.base_images)

    def dockerfile(self, region: str, labels: ReleaseLabels) -> str:
        return render_dockerfile(self, self.base_images[region], labels)

    def canonical_dockerfile(self) -> str:
        return render_dockerfile(self, f"{PLACEHOLDER_REGISTRY}/{self.base_identity}", ReleaseLabels())

    def foreign_files(self, out: Path) -> tuple[str, ...]:
        """Files under ``out`` that :meth:`write` would not write there (sorted, context-relative): an
        image built from ``out`` would hold them too (``COPY code/`` takes whatever is in the folder)."""
        if not out.is_dir():
            return ()
        rendered = {*self.files, "Dockerfile"}
        found = (p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_symlink())
        return tuple(sorted(rel for rel in found if rel not in rendered))

    def write(self, out: Path, region: str, labels: ReleaseLabels) -> Path:
        """Write the context of ``region`` to ``out`` (created; existing files overwritten)."""
        out.mkdir(parents=True, exist_ok=True)
        for rel, content in {**self.files, "Dockerfile": self.dockerfile(region, labels).encode()}.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.chmod(path, 0o644)
        return out


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dockerfile(ctx: BuildContext, base_image: str, labels: ReleaseLabels) -> str:
    """The Dockerfile text. Pure: the same inputs give the same bytes."""
    label_pairs = [
        ("org.opencontainers.image.title", ctx.model),
        ("org.opencontainers.image.revision", labels.commit),
        ("org.opencontainers.image.base.name", base_image),
        ("modelops.model", ctx.model),
        ("modelops.release", labels.release),
        ("modelops.git-commit", labels.commit),
        ("modelops.config-digest", labels.config_digest),
        ("modelops.contract", ctx.contract),
    ]
    lines = [
        f"# Rendered by `modelops build` for {ctx.model}; do not edit (re-render with --context-only).",
        f"FROM {base_image}",
        "LABEL " + " \\\n      ".join(f"{k}={_quote(v)}" for k, v in label_pairs),
    ]
    if ctx.environment:
        lines.append("ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, v in ctx.environment.items()))
    if ctx.has_requirements:
        lines.append(f"COPY requirements.txt {CODE_DIR}/requirements.txt")
        lines.append(f"RUN pip install --no-cache-dir -r {CODE_DIR}/requirements.txt")
    if "serving.properties" in ctx.files:
        lines.append(f"COPY serving.properties {CODE_DIR}/serving.properties")
    if any(rel.startswith("code/") for rel in ctx.files):
        lines.append(f"COPY code/ {CODE_DIR}/")
    return "\n".join(lines) + "\n"


def canonical_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of ``files`` that depends on their paths and bytes only."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in sorted(files):
            data = files[rel]
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def context_digest(ctx: BuildContext) -> str:
    """``sha256:<hex>`` of the canonical tar of the region-independent content."""
    content = {**ctx.files, "Dockerfile": ctx.canonical_dockerfile().encode()}
    return "sha256:" + hashlib.sha256(canonical_tar(content)).hexdigest()


def _code_files(model: ModelConfig, ws: Workspace) -> dict[str, bytes]:
    handler = model.container.handler
    where = model.file
    if handler.entry_point is None:
        if handler.contract != "djl-python":
            raise InputError(NO_ENTRY_POINT.format(file=where, contract=handler.contract))
        return {}
    out: dict[str, bytes] = {}
    if handler.source_dir:
        base = model.path_in_repo(handler.source_dir).rstrip("/")
        for repo_rel in ws.walk(base):
            rel = repo_rel[len(base) + 1:]
            if _SKIP_PARTS.intersection(rel.split("/")) or rel.endswith(".pyc"):
                continue
            out[f"code/{rel}"] = read_file(ws, repo_rel)
    entry = model.path_in_repo(handler.entry_point)
    if not ws.is_file(entry):
        raise InputError(MISSING_FILE.format(file=entry), hint=MISSING_FILE_HINT)
    out.setdefault(f"code/{_program(model)}", read_file(ws, entry))
    return out


def _program(model: ModelConfig) -> str:
    """The entry point's path inside the code folder."""
    handler = model.container.handler
    assert handler.entry_point is not None
    if handler.source_dir:
        rel = posixpath.relpath(posixpath.normpath(handler.entry_point), posixpath.normpath(handler.source_dir))
        if not rel.startswith(".."):
            return rel
    return posixpath.basename(handler.entry_point)


def _environment(model: ModelConfig) -> dict[str, str]:
    c = model.container
    env: dict[str, str] = {}
    if c.handler.contract == "inference-toolkit":
        env["SAGEMAKER_PROGRAM"] = _program(model)
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = CODE_DIR
    else:
        env.update(c.serving.environment())
        if c.handler.entry_point is not None:
            # DJL resolves the entry point in the model dir; model data carries a copy of the code.
            env["OPTION_ENTRYPOINT"] = _program(model)
    for key, value in c.env.items():
        env[key] = str(value)
    return env


def serving_properties(model: ModelConfig) -> bytes:
    """``serving.properties`` of a DJL model: its serving options (and its handler file)."""
    props = dict(model.container.serving.properties())
    props.setdefault("engine", "Python")
    if model.container.handler.entry_point is not None:
        props["option.entryPoint"] = _program(model)
    return "".join(f"{k}={v}\n" for k, v in props.items()).encode()


def model_data_extras(ctx: BuildContext) -> dict[str, bytes]:
    """Files a DJL model's data archive carries besides its artifacts: DJL loads ``serving.properties``
    and the handler from the model dir (``/opt/ml/model``, where SageMaker extracts model data), so
    they travel there too (requirements stay in the image: DJL would pip-install them at start-up)."""
    return _extras(ctx.contract, ctx.files)


def model_data_code_names(model: ModelConfig, ws: Workspace) -> frozenset[str]:
    """The names :func:`model_data_extras` gives a model's code files in its model data archive,
    without rendering the rest of the context (validate checks them against the artifacts')."""
    if model.container.handler.contract != "djl-python":
        return frozenset()
    files = {**_code_files(model, ws), "serving.properties": b""}
    return frozenset(_extras(model.container.handler.contract, files))


def _extras(contract: str, files: Mapping[str, bytes]) -> dict[str, bytes]:
    if contract != "djl-python":
        return {}
    extras = {rel[len("code/"):]: data for rel, data in files.items()
              if rel.startswith("code/") and rel.endswith(".py")}
    if "serving.properties" in files:
        extras["serving.properties"] = files["serving.properties"]
    return extras if any(name.endswith(".py") for name in extras) else {}


def render(model: ModelConfig, ws: Workspace, *, base_images: Mapping[str, str], base_identity: str,
           manifest: Manifest) -> BuildContext:
    """Render the context of ``model`` (read from ``ws``) for the regions of ``base_images``."""
    files = _code_files(model, ws)
    req = model.container.requirements
    if req:
        req_rel = model.path_in_repo(req)
        if not ws.is_file(req_rel):
            raise InputError(MISSING_FILE.format(file=req_rel), hint=MISSING_FILE_HINT)
        files["requirements.txt"] = read_file(ws, req_rel)
    if model.container.handler.contract == "djl-python":
        files["serving.properties"] = serving_properties(model)
    files[MANIFEST_FILE] = manifest.to_bytes()
    ctx = BuildContext(
        model=model.name,
        contract=model.container.handler.contract,
        files=MappingProxyType(dict(sorted(files.items()))),
        base_images=MappingProxyType(dict(base_images)),
        base_identity=base_identity,
        environment=MappingProxyType(_environment(model)),
        has_requirements=bool(req),
    )
    return BuildContext(**{**ctx.__dict__, "digest": context_digest(ctx)})
