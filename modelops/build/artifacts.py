"""Model artifacts: gathering them (running their generator when absent), the manifest (sha256 per
file), checking it at build and again before deploy, signing it with ``model-signing`` and packing the
model data archive (``model.tar.gz``).

Words:

- an **artifact file** is one ``spec.artifacts[].path`` of the model (model-folder-relative); artifacts
  given by ``uri`` (s3) are recorded in the manifest with their pinned sha256 and fetched by the
  serving stack, not by build;
- the **manifest** is the canonical JSON ``{"model", "files": [{"path", "sha256", "size"}], "uris":
  [{"uri", "sha256"}]}`` (sorted keys, sorted entries). Its sha256 is part of the build digest, so a
  changed artifact is a new release;
- the **signature** is a ``model-signing`` bundle (elliptic-curve key, no network) over the manifest,
  kept next to ``model.yaml`` as ``artifacts.sig`` and verified with the repository's public key
  ``pipelines/artifact-signing.pub`` before deploy. ``pipelines/policy.yaml``'s
  ``signed_artifacts.required_in`` lists the environments where a valid signature is required; a
  signature that is present but does not verify is refused everywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelops.config import ModelConfig, Workspace
from modelops.errors import EnvironmentFailedError, GateError, InputError
from modelops.runtime import Progress
from modelops.sizes import human_size

MANIFEST_FILE = "artifacts.manifest.json"
MODEL_DATA_CLASH = "model data: {names} is both an artifact and a code file"
MODEL_DATA_CLASH_HINT = "rename the artifact or the code file"
AT_REF = "at-ref"  # under the artifact cache: files copied out of git per commit
SIGNATURE_FILE = "artifacts.sig"
PUBLIC_KEY_FILE = "pipelines/artifact-signing.pub"

ARTIFACT_MISMATCH = "{file}: sha256 {actual} does not match the pinned {expected}; the artifact was changed"
ARTIFACT_MISMATCH_HINT = "restore the artifact, or re-pin it in model.yaml (a new release) if the change is intended"
ARTIFACT_MISSING = "{file}: artifact file is missing"
ARTIFACT_MISSING_HINT = "add the file, or set generated_by to the script that makes it"
GENERATOR_FAILED = "{file}: generating the artifacts with {script} failed (exit {code}): {detail}"
GENERATOR_HINT = "run the script by hand to see why; it must write the artifact paths model.yaml lists"
MODEL_DATA_MISMATCH = "{file}: model data archive {archive} holds content whose sha256 does not match the manifest"
MODEL_DATA_MISSING = "{file}: model data archive {archive} does not hold this artifact"
MODEL_DATA_UNEXPECTED = "{archive}: model data archive holds {member}, which this release did not pack"
MODEL_DATA_CODE_CHANGED = "{archive}: the code files in the model data archive ({names}) are not the ones build packed"
MODEL_DATA_UNREADABLE = "{archive}: model data archive cannot be read: {detail}"
MODEL_DATA_HINT = "the archive changed after build wrote it: delete it, build again, and find out what changed it"
SIGNATURE_REQUIRED = "{model}: {environment} requires signed artifacts, and {file} does not exist"
SIGNATURE_REQUIRED_HINT = "sign the manifest: modelops build {model} --sign-key KEY.pem, then commit {file}"
SIGNATURE_INVALID = "{file}: the artifact manifest signature does not verify with {key}: {detail}"
SIGNATURE_INVALID_HINT = "re-sign after changing artifacts (modelops build MODEL --sign-key KEY.pem)"
NO_PUBLIC_KEY = "{file} does not exist, so the signature {signature} cannot be verified"
NO_PUBLIC_KEY_HINT = "commit the public half of the signing key as {file}"
SIGN_KEY_UNREADABLE = "cannot sign with {key}: {detail}"


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # model-folder-relative
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The sha256 of every artifact of a model (see the module docstring)."""

    model: str
    files: tuple[ManifestEntry, ...]
    uris: tuple[tuple[str, str], ...] = ()

    def to_bytes(self) -> bytes:
        """Canonical JSON: the same artifacts give the same bytes on any machine."""
        doc = {
            "model": self.model,
            "files": [{"path": e.path, "sha256": e.sha256, "size": e.size} for e in sorted(self.files, key=lambda e: e.path)],
            "uris": [{"uri": u, "sha256": s} for u, s in sorted(self.uris)],
        }
        return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.to_bytes()).hexdigest()


@dataclass(frozen=True)
class GatheredArtifacts:
    """The artifact files of a model on local disk (``files``: model-folder-relative path -> file)."""

    manifest: Manifest
    files: Mapping[str, Path]


#: Artifacts smaller than this hash and pack in a blink: no progress bar for them.
PROGRESS_MIN_BYTES = 32 << 20

Advance = Callable[[int], None]


@contextmanager
def byte_progress(progress: Progress | None, task: str, total: int, *, counted: bool = True) -> Iterator[Advance | None]:
    """A progress bar of ``total`` bytes named ``task (size)`` while the block runs (``counted`` False: a
    spinner, for work that cannot report its bytes); None (no bar) when there is nowhere to show it or
    too little to wait for."""
    if progress is None or total < PROGRESS_MIN_BYTES:
        yield None
        return
    name = f"{task} ({human_size(total)})"
    progress.start(name, total=total if counted else None)
    try:
        yield lambda n: progress.advance(name, n)
    finally:
        progress.finish(name)


def sha256_file(path: Path, advance: Advance | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest()


class _CountingReader:
    """A file object that reports the bytes read through it (tar reads the members it packs)."""

    def __init__(self, raw: IO[bytes], advance: Advance):
        self._raw, self._advance = raw, advance

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._advance(len(data))
        return data


def read_file(ws: Workspace, repo_rel: str) -> bytes:
    """A file of any size from the working tree or a ref (``Workspace.read_bytes`` is for configs:
    it caps the size and reads the cap into memory)."""
    if ws.commit is None:
        return (ws.root / repo_rel).read_bytes()
    return ws.read_bytes(repo_rel, limit=1 << 40)


def _repo_file(model: ModelConfig, rel: str) -> str:
    return model.path_in_repo(rel)


def gather(model: ModelConfig, ws: Workspace, *, cache_dir: Path, progress: Progress | None = None) -> GatheredArtifacts:
    """Find every artifact file, generating missing ones, and check each against its pin.

    Files come from the working tree (or, at a ref, from git into ``cache_dir``); a missing file with
    ``generated_by`` is made by running that script in a copy of the model folder under
    ``cache_dir`` (never in the user's working tree), cached by the pins. :class:`GateError` naming
    the file when a sha256 does not match its pin."""
    files: dict[str, Path] = {}
    entries: list[ManifestEntry] = []
    missing: list[str] = []
    for artifact in model.artifacts:
        if artifact.path is None:
            continue
        local = _local_copy(model, ws, artifact.path, cache_dir)
        if local is None:
            missing.append(artifact.path)
            continue
        files[artifact.path] = local
    if missing:
        generated = _generate(model, ws, missing, cache_dir)
        files.update(generated)
    total = sum(files[a.path].stat().st_size for a in model.artifacts if a.path is not None)
    with byte_progress(progress, f"hashing the artifacts of {model.name}", total) as advance:
        for artifact in model.artifacts:
            if artifact.path is None:
                continue
            path = files[artifact.path]
            actual = sha256_file(path, advance)
            if actual != artifact.sha256:
                raise GateError(ARTIFACT_MISMATCH.format(file=_repo_file(model, artifact.path), actual=actual,
                                                         expected=artifact.sha256), hint=ARTIFACT_MISMATCH_HINT)
            entries.append(ManifestEntry(artifact.path, actual, path.stat().st_size))
    uris = tuple((a.uri, a.sha256) for a in model.artifacts if a.uri is not None)
    return GatheredArtifacts(Manifest(model.name, tuple(entries), uris), files)


def _local_copy(model: ModelConfig, ws: Workspace, rel: str, cache_dir: Path) -> Path | None:
    repo_rel = _repo_file(model, rel)
    if ws.commit is None:
        path = ws.root / repo_rel
        return path if path.is_file() else None
    if not ws.is_file(repo_rel):
        return None
    # At a ref: copy the blob out of git once, keyed by the commit.
    out = cache_dir / AT_REF / ws.commit / repo_rel
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_bytes(read_file(ws, repo_rel))
        os.replace(tmp, out)
    return out


def _generate(model: ModelConfig, ws: Workspace, missing: list[str], cache_dir: Path) -> dict[str, Path]:
    by_script: dict[str, list[str]] = {}
    for artifact in model.artifacts:
        if artifact.path in missing:
            if not artifact.generated_by:
                raise GateError(ARTIFACT_MISSING.format(file=_repo_file(model, artifact.path)),
                                hint=ARTIFACT_MISSING_HINT)
            by_script.setdefault(artifact.generated_by, []).append(artifact.path)
    pins = hashlib.sha256("\n".join(f"{a.path}={a.sha256}" for a in model.artifacts).encode()).hexdigest()[:16]
    out: dict[str, Path] = {}
    for script, paths in sorted(by_script.items()):
        stage = cache_dir / "generated" / f"{model.name}-{pins}"
        if not all((stage / p).is_file() for p in paths):
            _run_generator(model, ws, script, stage)
        for p in paths:
            if not (stage / p).is_file():
                raise GateError(GENERATOR_FAILED.format(file=_repo_file(model, p), script=script, code=0,
                                                        detail="the script did not write this file"),
                                hint=GENERATOR_HINT)
            out[p] = stage / p
    return out


def _run_generator(model: ModelConfig, ws: Workspace, script: str, stage: Path) -> None:
    """Run ``script`` in a fresh copy of the model folder (code and config, without artifacts)."""
    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=stage.parent if stage.parent.exists() else None))
    try:
        for repo_rel in ws.walk(model.folder):
            rel = repo_rel[len(model.folder) + 1:] if model.folder else repo_rel
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(read_file(ws, repo_rel))
        # The generator is trusted repository code, run with modelops' own interpreter (its
        # environment holds the examples' packages).
        proc = subprocess.run([sys.executable, str(tmp / script)], cwd=tmp, capture_output=True, text=True,
                              timeout=3600, check=False)
        if proc.returncode != 0:
            detail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:]) or "no output"
            raise GateError(GENERATOR_FAILED.format(file=model.path_in_repo(script), script=script,
                                                    code=proc.returncode, detail=detail), hint=GENERATOR_HINT)
        stage.parent.mkdir(parents=True, exist_ok=True)
        if stage.exists():
            shutil.rmtree(stage)
        os.replace(tmp, stage)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- model data --------------------------------------------------------------------------------------


def clashing_names(artifact_paths: Iterable[str], extras: Iterable[str]) -> list[str]:
    """Names the model data archive would hold twice: an artifact's and a code file's (DJL models
    carry their code there too); validate reports them, write_model_data refuses them."""
    return sorted(set(archive_names(artifact_paths).values()) & set(extras))


def archive_names(paths: Iterable[str]) -> dict[str, str]:
    """Name of each artifact inside model.tar.gz: relative to the artifacts' common folder
    (``artifacts/model.json`` -> ``model.json``), as the serving code reads them from /opt/ml/model."""
    paths = sorted(paths)
    if not paths:
        return {}
    common = os.path.commonpath([os.path.dirname(p) or "." for p in paths]) if len(paths) > 1 \
        else os.path.dirname(paths[0])
    common = "" if common in ("", ".") else common
    return {p: (p[len(common) + 1:] if common else p) for p in paths}


def _extras_hex(hashes: Mapping[str, bytes]) -> str:
    """The 16-hex tag of a set of code files (archive name -> raw sha256 of its content)."""
    digest = hashlib.sha256()
    for key in sorted(hashes):
        digest.update(f"{key}\n".encode() + hashes[key])
    return digest.hexdigest()[:16]


def model_data_name(gathered: GatheredArtifacts, extras: Mapping[str, bytes] | None = None) -> str:
    """The file name of a model data archive: ``<manifest hex>[-<extras hex>].tar.gz``, so the
    archives of one manifest are found by its digest, and the name pins the code files inside."""
    name = gathered.manifest.digest[len("sha256:"):]
    if extras:
        name += "-" + _extras_hex({key: hashlib.sha256(data).digest() for key, data in extras.items()})
    return name + ".tar.gz"


def write_model_data(gathered: GatheredArtifacts, out: Path, extras: Mapping[str, bytes] | None = None, *,
                     progress: Progress | None = None) -> Path:
    """A deterministic ``model.tar.gz`` of the artifact files and ``extras`` (archive name ->
    bytes): sorted, fixed times, modes and owners, gzip header without a timestamp. Written once;
    an existing archive is reused (and checked by :func:`verify_model_data`)."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    names = archive_names(gathered.files)
    clash = clashing_names(gathered.files, extras or {})
    if clash:
        raise InputError(MODEL_DATA_CLASH.format(names=", ".join(clash)), hint=MODEL_DATA_CLASH_HINT)
    members: list[tuple[str, Path | bytes]] = [(names[rel], gathered.files[rel]) for rel in names]
    members += list((extras or {}).items())
    total = sum(e.size for e in gathered.manifest.files)
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar, \
            byte_progress(progress, f"packing the model data of {gathered.manifest.model}", total) as advance:
        for name, source in sorted(members, key=lambda m: m[0]):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
            if isinstance(source, bytes):
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
                continue
            info.size = source.stat().st_size
            with open(source, "rb") as fh:
                tar.addfile(info, _CountingReader(fh, advance) if advance else fh)
    os.replace(tmp, out)
    return out


def verify_model_data(archive: Path, manifest: Manifest, *, model_folder: str = "",
                      extras: Mapping[str, bytes] | None = None, progress: Progress | None = None) -> None:
    """Check every member of ``archive`` against what build packs into it; :class:`GateError`
    naming the file.

    The references are trusted inputs only, never a record kept next to the archive (whoever can
    rewrite the archive can rewrite that too): each artifact's sha256 from ``manifest`` (the pins of
    model.yaml), and the code files: ``extras`` when given, else the tag in the archive's name
    (:func:`model_data_name`; build picks the archive by that name, so its content must match it).
    Exactly those members, each once, regular files only. One streaming pass (no seeking back),
    so the archive is decompressed once."""
    names = archive_names(e.path for e in manifest.files)
    expected = {names[e.path]: e for e in manifest.files}
    seen: set[str] = set()
    code: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar, byte_progress(
                progress, f"checking the model data of {manifest.model}", sum(e.size for e in manifest.files)) as advance:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is None or member.name in seen:
                    raise GateError(MODEL_DATA_UNEXPECTED.format(archive=archive, member=member.name),
                                    hint=MODEL_DATA_HINT)
                seen.add(member.name)
                digest = hashlib.sha256()
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):  # type: ignore[misc]
                    digest.update(chunk)
                    if advance is not None:
                        advance(len(chunk))
                entry = expected.get(member.name)
                if entry is None:
                    code[member.name] = digest.digest()
                elif digest.hexdigest() != entry.sha256:
                    raise GateError(MODEL_DATA_MISMATCH.format(file=_in_folder(model_folder, entry.path),
                                                               archive=archive), hint=MODEL_DATA_HINT)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise GateError(MODEL_DATA_UNREADABLE.format(archive=archive, detail=_one_line(exc)),
                        hint=MODEL_DATA_HINT) from exc
    for name, entry in sorted(expected.items()):
        if name not in seen:
            raise GateError(MODEL_DATA_MISSING.format(file=_in_folder(model_folder, entry.path), archive=archive),
                            hint=MODEL_DATA_HINT)
    if extras is not None:
        wanted = {key: hashlib.sha256(data).digest() for key, data in extras.items()}
        stray, ok = sorted(set(code) - set(wanted)), code == wanted
    else:
        _, _, tag = archive.name.removesuffix(".tar.gz").partition("-")
        stray, ok = (sorted(code) if not tag else []), (_extras_hex(code) == tag if code else not tag)
    if stray:
        raise GateError(MODEL_DATA_UNEXPECTED.format(archive=archive, member=stray[0]), hint=MODEL_DATA_HINT)
    if not ok:
        raise GateError(MODEL_DATA_CODE_CHANGED.format(archive=archive, names=", ".join(sorted(code)) or "none"),
                        hint=MODEL_DATA_HINT)


def _in_folder(model_folder: str, rel: str) -> str:
    return f"{model_folder}/{rel}".lstrip("/")


# -- signing -----------------------------------------------------------------------------------------


def sign_manifest(manifest: Manifest, private_key: Path, signature: Path) -> Path:
    """Sign the manifest with an elliptic-curve private key (PEM) using ``model-signing``; writes the
    bundle to ``signature``. Local only: no Sigstore, no network."""
    from model_signing import signing

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MANIFEST_FILE
        path.write_bytes(manifest.to_bytes())
        try:
            signing.Config().use_elliptic_key_signer(private_key=private_key).sign(path, signature)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(SIGN_KEY_UNREADABLE.format(key=private_key, detail=_one_line(exc))) from exc
    return signature


def verify_signature(manifest: Manifest, signature: Path, public_key: Path, *, label: str) -> None:
    """:class:`GateError` unless ``signature`` is a valid bundle over exactly this manifest."""
    from model_signing import verifying

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MANIFEST_FILE
        path.write_bytes(manifest.to_bytes())
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(path, signature)
        except Exception as exc:  # model-signing raises ValueError and assorted crypto errors
            detail = _one_line(exc)
            if "mismatch" in detail.lower():  # its own text carries raw digest bytes
                detail = "the artifacts differ from the ones that were signed"
            raise GateError(SIGNATURE_INVALID.format(file=label, key=public_key.name, detail=detail),
                            hint=SIGNATURE_INVALID_HINT) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def manifest_of(model: ModelConfig, ws: Workspace, *, cache_dir: Path | None = None) -> Manifest:
    """The manifest of the artifacts as they are now (checked against their pins)."""
    if cache_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return gather(model, ws, cache_dir=Path(tmp)).manifest
    return gather(model, ws, cache_dir=cache_dir).manifest


def check_signature(model: ModelConfig, ws: Workspace, manifest: Manifest, *, required_by: str | None,
                    public_key: Path | None = None) -> bool:
    """Verify ``artifacts.sig`` of the model when present (always), or when the environment
    ``required_by`` requires it (then it must exist). Returns True when a signature verified."""
    sig_rel = model.path_in_repo(SIGNATURE_FILE)
    if not ws.is_file(sig_rel):
        if required_by:
            raise GateError(SIGNATURE_REQUIRED.format(model=model.name, environment=required_by, file=sig_rel),
                            hint=SIGNATURE_REQUIRED_HINT.format(model=model.name, file=sig_rel))
        return False
    key = public_key or ws.root / PUBLIC_KEY_FILE
    if not key.is_file():
        raise GateError(NO_PUBLIC_KEY.format(file=PUBLIC_KEY_FILE if public_key is None else key, signature=sig_rel),
                        hint=NO_PUBLIC_KEY_HINT.format(file=PUBLIC_KEY_FILE))
    with tempfile.TemporaryDirectory() as tmp:
        sig = Path(tmp) / SIGNATURE_FILE
        sig.write_bytes(read_file(ws, sig_rel))
        verify_signature(manifest, sig, key, label=sig_rel)
    return True


def ensure_io_ok(path: Path) -> None:
    """EnvironmentFailedError when a build output folder cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFailedError(f"cannot write {path}: {exc.strerror or exc}") from exc


__all__ = [
    "GatheredArtifacts",
    "Manifest",
    "ManifestEntry",
    "archive_names",
    "byte_progress",
    "check_signature",
    "gather",
    "manifest_of",
    "sha256_file",
    "sign_manifest",
    "verify_model_data",
    "verify_signature",
    "write_model_data",
]
