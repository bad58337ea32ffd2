"""The model data store: s3-like URLs, content-addressed archives, safe read-only extraction."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from modelops.errors import InputError
from modelops.localcloud import objects
from modelops.localcloud.objects import ModelDataNotFoundError, model_data_dir, put_model_data

URL = "s3://modelops-local-artifacts/iris/abc/model.tar.gz"


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o666
    return info, data


def _link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def test_model_data_is_extracted_once_read_only_and_shared_by_content(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = _archive(tmp_path / "model.tar.gz", [
        _file("model.joblib", b"weights"), _file("code/inference.py", b"x = 1\n"), _link("latest", "model.joblib"),
    ])

    assert put_model_data(data, URL, archive) == URL
    assert put_model_data(data, URL, archive) == URL  # idempotent
    other_url = "s3://another-bucket/copy/model.tar.gz"
    put_model_data(data, other_url, archive)
    folder = model_data_dir(data, URL)

    assert (folder / "model.joblib").read_bytes() == b"weights"
    assert (folder / "latest").resolve() == (folder / "model.joblib").resolve()
    assert model_data_dir(data, URL) == folder == model_data_dir(data, other_url)
    assert len(list((data / "objects" / "blobs").iterdir())) == 1
    for path in (folder, folder / "code", folder / "model.joblib", folder / "code" / "inference.py"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path  # no write bit for anyone


def test_putting_a_key_again_serves_the_new_bytes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    put_model_data(data, URL, _archive(tmp_path / "v1.tar.gz", [_file("v", b"1")]))
    first = model_data_dir(data, URL)

    put_model_data(data, URL, _archive(tmp_path / "v2.tar.gz", [_file("v", b"2")]))

    assert (model_data_dir(data, URL) / "v").read_bytes() == b"2"
    assert (first / "v").read_bytes() == b"1"  # a container still using the old folder is not disturbed


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("../escape.txt", b"x"), "escapes the folder"),
        (_file("/etc/cron.d/evil", b"x"), "escapes the folder"),
        (_file("a/../../escape.txt", b"x"), "escapes the folder"),
        (_link("passwd", "/etc/passwd"), "links out to '/etc/passwd'"),
        (_link("a/up", "../../outside"), "links out to '../../outside'"),
        (_link("hard", "../outside", hard=True), "links out to '../outside'"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink-absolute", "symlink-up", "hardlink-up"],
)
def test_archives_that_escape_their_folder_are_refused_at_put(tmp_path: Path, member, reason: str) -> None:
    data = tmp_path / "data"
    archive = _archive(tmp_path / "evil.tar.gz", [_file("ok.txt", b"fine"), member])

    with pytest.raises(InputError) as caught:
        put_model_data(data, URL, archive)

    assert caught.value.message == objects.UNSAFE_MEMBER.format(archive=archive, member=member[0].name, reason=reason)
    assert not objects.has_model_data(data, URL)
    assert not (tmp_path / "escape.txt").exists()


def test_device_files_and_oversized_archives_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    with pytest.raises(InputError, match="is a device or fifo"):
        put_model_data(tmp_path / "data", URL, _archive(tmp_path / "dev.tar.gz", [(device, None)]))

    monkeypatch.setattr(objects, "MAX_EXTRACTED_BYTES", 10)
    big = _archive(tmp_path / "big.tar.gz", [_file("weights", b"x" * 11)])
    with pytest.raises(InputError) as caught:
        put_model_data(tmp_path / "data", URL, big)
    assert caught.value.message == objects.TOO_LARGE.format(archive=big, limit=10, members=objects.MAX_MEMBERS)


def test_bad_urls_archives_and_unknown_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = _archive(tmp_path / "model.tar.gz", [_file("a", b"1")])
    for url in ("https://bucket/model.tar.gz", "s3://bucket/model.zip", "s3://B/model.tar.gz"):
        with pytest.raises(InputError) as caught:
            put_model_data(data, url, good)
        assert caught.value.message == objects.BAD_URL.format(url=url)

    not_tar = tmp_path / "plain.tar.gz"
    not_tar.write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="not a gzip-compressed tar archive"):
        put_model_data(data, URL, not_tar)

    with pytest.raises(ModelDataNotFoundError) as missing:
        model_data_dir(data, "s3://bucket/never-put.tar.gz")
    assert missing.value.message == objects.UNKNOWN_URL.format(url="s3://bucket/never-put.tar.gz")
