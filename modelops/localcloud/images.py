"""The local cloud's image store: what ECR plus a container registry's image layers are on AWS.

An image is a content-addressed folder ``<data_dir>/images/<digest>/``::

    manifest.json   digest, image URIs, contract, the image's ENV (written last: an image without
                    one is not an image)
    code/           the handler code as it sits in the image (``SAGEMAKER_PROGRAM``'s file, or
                    DJL's ``model.py``)
    serving/        the serving stack for the contract (``modelops/localcloud/container``, copied
                    so an image keeps the server it was built with)
    venv/           a virtual environment with the model's requirements

Image URIs are ECR-shaped (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``) and map to
digests through small files in ``images/tags/``; one digest may carry one URI per region, and
pushing a tag again moves it to the new digest, as in ECR.

Builds are atomic and idempotent: an image is built in a temp folder next to its final place and
renamed into place (a crash leaves only a ``.build-*`` folder, swept by the next build of that
digest); a digest already present returns at once; a per-digest file lock makes concurrent builds
of one digest wait for each other instead of both building.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import EnvironmentFailedError, InputError
from modelops.localcloud._fs import file_lock, read_json, write_json_atomic
from modelops.runtime import Progress
from modelops.sizes import tree_size

CONTRACTS = ("inference-toolkit", "djl-python")

ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]{0,255})"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)
DIGEST = re.compile(r"^[a-z0-9]+:[A-Za-z0-9]{6,128}$")

BAD_DIGEST = "image digest {digest!r} is not of the form 'sha256:<hex>'"
BAD_CONTRACT = "image contract {contract!r} is not one of: " + ", ".join(CONTRACTS)
BAD_IMAGE_URI = "image URI {uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)"
NO_CODE_DIR = "{code_dir}: the image's code folder does not exist"
NO_REQUIREMENTS = "{requirements}: the image's requirements file does not exist"
REQUIREMENTS_FAILED = "{requirements}: pip could not install the image's requirements: {reason}"
REQUIREMENTS_FAILED_HINT = "check the requirement names and versions; pip's output ends with:\n{tail}"
VENV_FAILED = "could not create the image's virtual environment: {reason}"

# pip's words for a requirement the user got wrong (as opposed to the network or the machine failing).
_USER_PIP_ERRORS = (
    "No matching distribution found",
    "Could not find a version",
    "ResolutionImpossible",
    "Invalid requirement",
    "conflicting dependencies",
    "does not exist",
)
# What a container keeps from the local cloud's own environment (the rest comes from the image).
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")
_PIP_TAIL_LINES = 12
_INSTALL_TASK = "installing image requirements"


@dataclass(frozen=True)
class LocalImage:
    """An image in the store. ``environment`` is the image's ENV (e.g. ``SAGEMAKER_PROGRAM``)."""

    digest: str
    path: Path
    image_uris: tuple[str, ...]
    contract: str
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def python(self) -> Path:
        """The image venv's interpreter."""
        return self.path / "venv" / "bin" / "python"

    @property
    def code_dir(self) -> Path:
        return self.path / "code"


def add_image(
    data_dir: Path,
    *,
    digest: str,
    image_uris: Sequence[str],
    code_dir: Path,
    requirements: Path | None,
    contract: str,
    environment: Mapping[str, str],
    progress: Progress | None = None,
) -> LocalImage:
    """Put an image in the store (idempotent by ``digest``) and point ``image_uris`` at it.

    A digest already in the store is not built again: the call only records URIs it did not carry
    yet and returns in milliseconds. Otherwise the image is built (code copied, venv created, the
    requirements installed with pip, reporting through ``progress``) and renamed into place.

    Raises InputError for a bad digest, contract, URI, code folder, or requirements pip cannot
    resolve; EnvironmentFailedError when the venv or pip fail for other reasons. No half image is
    left behind either way.
    """
    _check_arguments(digest, image_uris, code_dir, requirements, contract)
    root = _images_root(data_dir)
    final = root / _dir_name(digest)
    image = _load(final)
    if image is not None and set(image_uris) <= set(image.image_uris) and _tags_point_at(root, image_uris, digest):
        return image  # the cache hit: a few small file reads
    with file_lock(root / ".locks" / f"{_dir_name(digest)}.lock"):
        image = _load(final)
        if image is None:
            image = _build(root, final, digest, code_dir, requirements, contract, environment, progress)
        missing = [uri for uri in image_uris if uri not in image.image_uris]
        if missing:
            manifest = dict(read_json(final / "manifest.json") or {})
            manifest["image_uris"] = [*image.image_uris, *missing]
            write_json_atomic(final / "manifest.json", manifest)
            image = _load(final)
            assert image is not None
        for uri in image_uris:
            _tag(root, uri, digest)
    return image


def has_image(data_dir: Path, digest: str) -> bool:
    """True when the store holds a complete image for ``digest``."""
    if not DIGEST.match(digest):
        return False
    return (_images_root(data_dir) / _dir_name(digest) / "manifest.json").is_file()


def get_image(data_dir: Path, digest: str) -> LocalImage | None:
    """The image for ``digest``, or None when the store has none."""
    if not DIGEST.match(digest):
        return None
    return _load(_images_root(data_dir) / _dir_name(digest))


def resolve_image(data_dir: Path, image_uri: str) -> LocalImage | None:
    """The image an ECR-shaped URI names (by tag, or ``@sha256:`` digest), or None when unknown.

    CreateModel's ``PrimaryContainer.Image`` goes through here; None should fail the endpoint as
    AWS does for an image it cannot pull.
    """
    match = ECR_URI.match(image_uri)
    if match is None:
        return None
    if match.group("digest"):
        return get_image(data_dir, match.group("digest"))
    tag = read_json(_tag_path(_images_root(data_dir), image_uri))
    if not tag or tag.get("uri") != image_uri:
        return None
    return get_image(data_dir, tag["digest"])


def container_command(image: LocalImage, *, model_dir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """argv and the complete environment to start ONE container instance of ``image``.

    Like the platform, it starts the serving stack with the argument ``serve``; the container listens
    on 127.0.0.1:``port`` (``SAGEMAKER_BIND_TO_PORT``) and finds the model at ``model_dir``
    (``SM_MODEL_DIR``). The environment is the image's ENV over a few basics (PATH, HOME, locale)
    of the local cloud's own; pass it whole as ``env=`` to ``subprocess.Popen``.
    """
    argv = [str(image.python), str(image.path / "serving" / "serve.py"), "serve"]
    env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
    env.update(dict(image.environment))
    env.update(
        {
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SM_MODEL_DIR": str(model_dir),
            "MODELOPS_CONTRACT": image.contract,
            "MODELOPS_CODE_DIR": str(image.code_dir),
            "PYTHONUNBUFFERED": "1",  # the log is read while the container runs
            "PYTHONDONTWRITEBYTECODE": "1",  # an image is not written to once built
        }
    )
    return argv, env


# --- building -------------------------------------------------------------------------------------


def _build(
    root: Path,
    final: Path,
    digest: str,
    code_dir: Path,
    requirements: Path | None,
    contract: str,
    environment: Mapping[str, str],
    progress: Progress | None,
) -> LocalImage:
    # Called under the digest's lock: any .build-* folder of this digest is a crashed build's.
    for leftover in root.glob(f".build-{_dir_name(digest)}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".build-{_dir_name(digest)}-"))
    try:
        shutil.copytree(code_dir, work / "code", ignore=shutil.ignore_patterns("__pycache__", ".git"))
        stack = Path(__file__).parent / "container"
        shutil.copytree(
            stack,
            work / "serving",
            # serving/ is a script folder, not a package: only the top __init__ stays behind.
            ignore=lambda folder, names: [
                n for n in names if n == "__pycache__" or (Path(folder) == stack and n == "__init__.py")
            ],
        )
        _create_layered_venv(work / "venv")
        if requirements is not None and _has_requirements(requirements):
            _pip_install(work / "venv", requirements, progress)
        write_json_atomic(
            work / "manifest.json",
            {
                "digest": digest,
                "image_uris": [],
                "contract": contract,
                "environment": dict(environment),
                "created": time.time(),
            },
        )
        _relocate_scripts(work / "venv", final / "venv")
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    image = _load(final)
    assert image is not None
    return image


def _create_layered_venv(venv: Path) -> None:
    """A venv layered on the environment modelops runs in, as a DLC's framework layer sits under the model's.

    Installing torch or scikit-learn into a fresh venv per image would take minutes and gigabytes. So
    the venv is made without pip, and a ``.pth`` file appends modelops' own site-packages *after*
    the venv's: the frameworks already installed there are the base layer, and pip then installs
    only what the model needs beyond them (a requirement already satisfied below is a no-op; one
    pinned to another version is installed in the venv and shadows the base's).
    """
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        reason = getattr(exc, "stderr", None) or str(exc)
        raise EnvironmentFailedError(VENV_FAILED.format(reason=str(reason).strip()[-300:])) from exc
    base_dirs = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    site_packages = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    # "zz" sorts it after any .pth pip installs into the venv; addsitedir also runs the base
    # layer's own .pth files (editable installs, namespace packages).
    lines = [f"import site; site.addsitedir({base!r})" for base in base_dirs]
    (site_packages / "zz_modelops_base_layer.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _has_requirements(requirements: Path) -> bool:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return True
    return False


def _pip_install(venv: Path, requirements: Path, progress: Progress | None) -> None:
    argv = [
        sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
        "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-r", str(requirements),
    ]  # fmt: skip
    tail: deque[str] = deque(maxlen=_PIP_TAIL_LINES)
    if progress is not None:
        progress.start(_INSTALL_TASK)
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=requirements.parent,  # relative paths in the file (-e ./pkg, --find-links) mean its folder
        )
    except OSError as exc:
        raise EnvironmentFailedError(
            REQUIREMENTS_FAILED.format(requirements=requirements, reason=str(exc))
        ) from exc
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip()
            if not line:
                continue
            tail.append(line)
            if progress is not None and line.startswith(("Collecting", "Installing", "Successfully", "Requirement")):
                progress.advance(_INSTALL_TASK, 0, message=line[:100])
        status = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if progress is not None:
            progress.finish(_INSTALL_TASK)
    if status != 0:
        output = "\n".join(tail)
        errors = [line for line in tail if line.startswith("ERROR")]
        reason = errors[0].removeprefix("ERROR: ") if errors else f"pip exited with status {status}"
        kind = InputError if any(word in output for word in _USER_PIP_ERRORS) else EnvironmentFailedError
        raise kind(
            REQUIREMENTS_FAILED.format(requirements=requirements, reason=reason),
            hint=REQUIREMENTS_FAILED_HINT.format(tail=output),
        )


def _relocate_scripts(venv: Path, final_venv: Path) -> None:
    """Point the venv's scripts (shebangs of installed console scripts, activate) at its final place."""
    old, new = str(venv).encode(), str(final_venv).encode()
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old in data:
            script.write_bytes(data.replace(old, new))


# --- the store's files ----------------------------------------------------------------------------


def _check_arguments(
    digest: str, image_uris: Sequence[str], code_dir: Path, requirements: Path | None, contract: str
) -> None:
    if not DIGEST.match(digest):
        raise InputError(BAD_DIGEST.format(digest=digest))
    if contract not in CONTRACTS:
        raise InputError(BAD_CONTRACT.format(contract=contract))
    for uri in image_uris:
        if not ECR_URI.match(uri):
            raise InputError(BAD_IMAGE_URI.format(uri=uri))
    if not code_dir.is_dir():
        raise InputError(NO_CODE_DIR.format(code_dir=code_dir))
    if requirements is not None and not requirements.is_file():
        raise InputError(NO_REQUIREMENTS.format(requirements=requirements))


def _images_root(data_dir: Path) -> Path:
    root = Path(data_dir) / "images"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _dir_name(digest: str) -> str:
    return digest.replace(":", "-")


def _load(folder: Path) -> LocalImage | None:
    manifest = read_json(folder / "manifest.json")
    if manifest is None:
        return None
    return LocalImage(
        digest=manifest["digest"],
        path=folder,
        image_uris=tuple(manifest["image_uris"]),
        contract=manifest["contract"],
        environment=tuple(sorted(manifest["environment"].items())),
    )


def _tag_path(root: Path, uri: str) -> Path:
    return root / "tags" / (hashlib.sha256(uri.encode()).hexdigest()[:40] + ".json")


def _tag(root: Path, uri: str, digest: str) -> None:
    path = _tag_path(root, uri)
    current = read_json(path)
    if current != {"uri": uri, "digest": digest}:
        write_json_atomic(path, {"uri": uri, "digest": digest})


def _tags_point_at(root: Path, uris: Sequence[str], digest: str) -> bool:
    for uri in uris:
        with contextlib.suppress(OSError, ValueError):
            if read_json(_tag_path(root, uri)) == {"uri": uri, "digest": digest}:
                continue
        return False
    return True


def prune_images(data_dir: Path, keep_uris: set[str], *, older_than: float,
                 dry_run: bool = False) -> list[tuple[str, int]]:
    """Delete the images stored before ``older_than`` that no URI in ``keep_uris`` names (by tag or
    digest), with their tags; returns (digest, bytes freed) per image. The caller keeps the URIs of
    every model that exists, so no container can be running from a deleted image."""
    root = _images_root(data_dir)
    kept: set[str] = set()
    for uri in keep_uris:
        image = resolve_image(data_dir, uri)
        if image is not None:
            kept.add(image.digest)
    removed: list[tuple[str, int]] = []
    for folder in sorted(root.iterdir()):
        image = _load(folder) if folder.is_dir() and folder.name != "tags" else None
        if image is None or image.digest in kept or (folder / "manifest.json").stat().st_mtime > older_than:
            continue
        removed.append((image.digest, tree_size(folder)))
        if dry_run:
            continue
        with file_lock(root / ".locks" / f"{folder.name}.lock"):
            (folder / "manifest.json").unlink(missing_ok=True)  # first: a half-deleted folder is no image
            shutil.rmtree(folder, ignore_errors=True)
    gone = {digest for digest, _ in removed}
    tags = root / "tags"
    for tag_file in sorted(tags.glob("*.json")) if tags.is_dir() and not dry_run else ():
        entry = read_json(tag_file)
        if entry is not None and entry.get("digest") in gone:
            tag_file.unlink(missing_ok=True)
    return removed

