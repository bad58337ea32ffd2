"""The local cloud's object store for model data: the S3 that ``ModelDataUrl`` points into.

Layout under ``<data_dir>/objects/``::

    blobs/sha256-<hex>       the archives, by content
    keys/<hash of url>.json  s3://bucket/key -> blob digest (putting a key again moves it, as in S3)
    models/sha256-<hex>/     an archive extracted once, read-only, shared by every container using it

Archives are checked when they are put (a gzip tar whose members stay inside the folder, no links
out, no devices, bounded size), so the builder learns of a bad archive at build time and the
runtime's extraction cannot surprise anyone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from modelops.errors import InputError
from modelops.localcloud._fs import file_lock, read_json, write_json_atomic

S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]{1,1024})$")

# Bounds against archive bombs. A SageMaker model artifact may be tens of GB; this is a laptop.
MAX_EXTRACTED_BYTES = 32 * 1024**3
MAX_MEMBERS = 200_000

BAD_URL = "model data URL {url!r} is not an s3://bucket/key.tar.gz URL"
NO_ARCHIVE = "{archive}: the model data archive does not exist"
BAD_ARCHIVE = "{archive}: not a gzip-compressed tar archive ({reason})"
UNSAFE_MEMBER = "{archive}: member {member!r} {reason}; model data must stay inside its folder"
TOO_LARGE = "{archive}: extracts to more than {limit} bytes or {members} members"
UNKNOWN_URL = "Could not find model data at {url}: no object at that key in the local cloud's object store"


class ModelDataNotFoundError(InputError):
    """``model_data_dir`` for a URL nothing was put at (the endpoint fails, as for a missing S3 key)."""


def put_model_data(data_dir: Path, url: str, archive: Path) -> str:
    """Store ``archive`` (a ``.tar.gz``) at ``url`` (``s3://bucket/key.tar.gz``); returns ``url``.

    Content-addressed and idempotent: the same bytes are stored once however often they are put.
    Raises InputError for a bad URL or an archive that is not a safe gzip tar.
    """
    match = S3_URL.match(url)
    if match is None or not match.group("key").endswith((".tar.gz", ".tgz")):
        raise InputError(BAD_URL.format(url=url))
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(NO_ARCHIVE.format(archive=archive))
    digest = _sha256(archive)
    root = _root(data_dir)
    blob = root / "blobs" / f"sha256-{digest}"
    if not blob.is_file():
        check_archive(archive)
        blob.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=blob.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(archive, tmp)
            os.replace(tmp, blob)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    key_file = _key_path(root, url)
    if read_json(key_file) != {"url": url, "digest": digest}:
        write_json_atomic(key_file, {"url": url, "digest": digest})
    return url


def has_model_data(data_dir: Path, url: str) -> bool:
    """True when something was put at ``url``."""
    return read_json(_key_path(_root(data_dir), url)) is not None


def model_data_dir(data_dir: Path, url: str) -> Path:
    """The folder ``url``'s archive is extracted into: extracted on first use, then read-only.

    Every container of every endpoint using the same bytes shares the folder (it is read-only, as
    ``/opt/ml/model`` is on SageMaker). Raises ModelDataNotFoundError for an unknown URL.
    """
    root = _root(data_dir)
    entry = read_json(_key_path(root, url))
    if entry is None:
        raise ModelDataNotFoundError(UNKNOWN_URL.format(url=url))
    digest = entry["digest"]
    target = root / "models" / f"sha256-{digest}"
    if target.is_dir():
        return target
    with file_lock(root / ".locks" / f"extract-{digest}.lock"):
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in target.parent.glob(f".extract-{digest}-*"):
            _make_writable(leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".extract-{digest}-"))
        try:
            _extract(root / "blobs" / f"sha256-{digest}", work)
            _make_read_only(work)
            # Same-parent rename: allowed although the folder itself is read-only now.
            os.rename(work, target)
        except BaseException:
            _make_writable(work)
            shutil.rmtree(work, ignore_errors=True)
            raise
    return target


def check_archive(archive: Path) -> None:
    """Raise InputError unless ``archive`` is a gzip tar that extracts safely within the bounds."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            _check_members(archive, tar.getmembers())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(BAD_ARCHIVE.format(archive=archive, reason=exc)) from exc


def _check_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    if len(members) > MAX_MEMBERS or sum(m.size for m in members if m.isreg()) > MAX_EXTRACTED_BYTES:
        raise InputError(TOO_LARGE.format(archive=archive, limit=MAX_EXTRACTED_BYTES, members=MAX_MEMBERS))
    for member in members:
        name = member.name
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts:
            raise InputError(UNSAFE_MEMBER.format(archive=archive, member=name, reason="escapes the folder"))
        if member.isdev() or member.isfifo():
            raise InputError(UNSAFE_MEMBER.format(archive=archive, member=name, reason="is a device or fifo"))
        if member.issym() or member.islnk():
            base = Path(name).parent if member.issym() else Path(".")
            target = os.path.normpath(base / member.linkname)
            if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise InputError(
                    UNSAFE_MEMBER.format(archive=archive, member=name, reason=f"links out to {member.linkname!r}")
                )


def _extract(blob: Path, into: Path) -> None:
    with tarfile.open(blob, "r:gz") as tar:
        members = tar.getmembers()
        _check_members(blob, members)
        if hasattr(tarfile, "data_filter"):
            # The "data" filter is the second line of defence: it refuses the same escapes again and
            # drops owner and special mode bits.
            tar.extractall(into, members=members, filter="data")
            return
        # Pythons before 3.11.4 (Debian 12's 3.11.2) have no extraction filters: the checks above
        # refuse the escapes, and here, as "data" would, owners are not restored and special bits go.
        for member in members:
            member.mode &= 0o755
            member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
        tar.extractall(into, members=members)


def _make_read_only(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222 | 0o444)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(folder, 0o555)


def _make_writable(folder: Path) -> None:
    if not folder.exists():
        return
    os.chmod(folder, 0o755)
    for dirpath, dirnames, _ in os.walk(folder):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def _root(data_dir: Path) -> Path:
    root = Path(data_dir) / "objects"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _key_path(root: Path, url: str) -> Path:
    return root / "keys" / (hashlib.sha256(url.encode()).hexdigest()[:40] + ".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prune_model_data(data_dir: Path, keep_urls: set[str], *, older_than: float,
                     dry_run: bool = False) -> list[tuple[str, int]]:
    """Delete the model data put before ``older_than`` that no URL in ``keep_urls`` points at: its
    keys, then each archive no key points at any more with its extracted folder; returns (url, bytes
    freed) per key removed (an archive's bytes counted with the first of its keys removed)."""
    from modelops.sizes import tree_size

    root = _root(data_dir)
    keys = {path: entry for path in sorted((root / "keys").glob("*.json")) if (entry := read_json(path))}
    keep = {path for path, e in keys.items() if e.get("url") in keep_urls or path.stat().st_mtime > older_than}
    kept_digests = {e["digest"] for path, e in keys.items() if path in keep}
    removed: list[tuple[str, int]] = []
    freed: set[str] = set()
    for path, entry in keys.items():
        if path in keep:
            continue
        digest = entry["digest"]
        size = 0
        if digest not in kept_digests and digest not in freed:
            freed.add(digest)
            blob, extracted = root / "blobs" / f"sha256-{digest}", root / "models" / f"sha256-{digest}"
            size = (blob.stat().st_size if blob.is_file() else 0) + (tree_size(extracted) if extracted.is_dir() else 0)
            if not dry_run:
                with file_lock(root / ".locks" / f"extract-{digest}.lock"):
                    blob.unlink(missing_ok=True)
                    _make_writable(extracted)
                    shutil.rmtree(extracted, ignore_errors=True)
        if not dry_run:
            path.unlink(missing_ok=True)
        removed.append((entry["url"], size))
    return removed
