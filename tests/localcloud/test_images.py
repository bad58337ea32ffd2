"""The image store: idempotent, atomic builds of venvs layered on modelops' own environment."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from modelops.errors import InputError
from modelops.localcloud import images
from modelops.localcloud.images import add_image, container_command, get_image, has_image, resolve_image

DIGEST = "sha256:" + "1" * 64
US = "000000000000.dkr.ecr.us-east-1.amazonaws.com/iris:abc"
EU = "000000000000.dkr.ecr.eu-west-1.amazonaws.com/iris:abc"
ENV = {"SAGEMAKER_PROGRAM": "inference.py"}


class RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def step(self, message: str) -> None:
        self.events.append(("step", message))

    def start(self, task: str, total: float | None = None) -> None:
        self.events.append(("start", task))

    def advance(self, task: str, amount: float = 1.0, *, message: str | None = None) -> None:
        self.events.append(("advance", message or ""))

    def finish(self, task: str) -> None:
        self.events.append(("finish", task))


def _code(tmp: Path, text: str = "def model_fn(model_dir):\n    return None\n") -> Path:
    code = tmp / "code"
    code.mkdir(exist_ok=True)
    (code / "inference.py").write_text(text)
    return code


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A tiny pure-python wheel written by hand (no build backend, no network)."""
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_name = f"{name}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(text.encode())}")
    lines.append(f"{record_name},,")
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(record_name, "\n".join(lines) + "\n")
    return wheel


def _venv_python(image: images.LocalImage, code: str) -> str:
    proc = subprocess.run([str(image.python), "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_second_add_of_a_digest_is_a_cache_hit_that_only_adds_uris(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = add_image(data, digest=DIGEST, image_uris=[US], code_dir=_code(tmp_path), requirements=None,
                      contract="inference-toolkit", environment=ENV)
    manifest_before = json.loads((first.path / "manifest.json").read_text())
    other_code = tmp_path / "other"
    other_code.mkdir()
    (other_code / "inference.py").write_text("CHANGED = True\n")

    second = add_image(data, digest=DIGEST, image_uris=[US, EU], code_dir=other_code, requirements=None,
                       contract="inference-toolkit", environment=ENV)

    assert second.path == first.path
    assert second.image_uris == (US, EU)
    assert "CHANGED" not in (second.code_dir / "inference.py").read_text()  # not rebuilt
    assert json.loads((second.path / "manifest.json").read_text())["created"] == manifest_before["created"]
    assert resolve_image(data, US) == resolve_image(data, EU) == second
    assert resolve_image(data, f"000000000000.dkr.ecr.us-east-1.amazonaws.com/iris@{DIGEST}") == second
    assert resolve_image(data, "000000000000.dkr.ecr.us-east-1.amazonaws.com/iris:unknown") is None
    assert resolve_image(data, "docker.io/library/python:3.11") is None
    assert has_image(data, DIGEST) and not has_image(data, "sha256:" + "2" * 64)
    assert sorted(p.name for p in (data / "images").iterdir() if not p.name.startswith(".")) == [
        "sha256-" + "1" * 64, "tags"]


def test_pushing_a_tag_again_moves_it_to_the_new_digest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code = _code(tmp_path)
    add_image(data, digest=DIGEST, image_uris=[US], code_dir=code, requirements=None,
              contract="inference-toolkit", environment=ENV)
    newer = add_image(data, digest="sha256:" + "2" * 64, image_uris=[US], code_dir=code, requirements=None,
                      contract="djl-python", environment={})

    resolved = resolve_image(data, US)

    assert resolved is not None and resolved.digest == newer.digest and resolved.contract == "djl-python"
    assert get_image(data, DIGEST) is not None  # the old image stays, as in ECR


def test_venv_is_layered_on_modelops_environment_and_installs_only_what_is_missing(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _wheel(wheels, "mo_tinypkg", "1.0")
    requirements = tmp_path / "requirements.txt"
    # pyyaml is in modelops' environment: satisfied by the base layer, nothing installed for it.
    requirements.write_text(f"--no-index\n--find-links {wheels}\npyyaml>=6\nmo_tinypkg==1.0\n")
    progress = RecordingProgress()

    image = add_image(tmp_path / "data", digest=DIGEST, image_uris=[US], code_dir=_code(tmp_path),
                      requirements=requirements, contract="inference-toolkit", environment=ENV, progress=progress)

    site_packages = next((image.path / "venv" / "lib").glob("python3.*/site-packages"))
    installed = sorted(p.name for p in site_packages.iterdir() if p.name != "__pycache__")
    assert installed == ["mo_tinypkg", "mo_tinypkg-1.0.dist-info", "zz_modelops_base_layer.pth"]
    yaml_file = _venv_python(image, "import yaml; print(yaml.__file__)")
    assert yaml_file.startswith(str(Path(sys.prefix)))  # from the base layer, i.e. modelops' env
    tiny_file = _venv_python(image, "import mo_tinypkg; print(mo_tinypkg.__file__)")
    assert tiny_file.startswith(str(image.path))
    # The venv's own packages come before the base layer's on sys.path.
    order = json.loads(_venv_python(image, "import sys, json; print(json.dumps(sys.path))"))
    assert order.index(str(site_packages)) < order.index(str(Path(yaml_file).parent.parent))
    with pytest.raises(ImportError):
        __import__("mo_tinypkg")  # modelops' own environment is untouched
    assert ("start", images._INSTALL_TASK) in progress.events
    assert any(kind == "advance" and message.startswith("Successfully installed") for kind, message in progress.events)
    assert progress.events[-1] == ("finish", images._INSTALL_TASK)


def test_a_requirement_that_cannot_install_is_an_input_error_and_leaves_no_image(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-index\nmo-no-such-package-here==9.9\n")
    data = tmp_path / "data"

    with pytest.raises(InputError) as caught:
        add_image(data, digest=DIGEST, image_uris=[US], code_dir=_code(tmp_path), requirements=requirements,
                  contract="inference-toolkit", environment=ENV)

    assert caught.value.message.startswith(f"{requirements}: pip could not install the image's requirements: ")
    assert "mo-no-such-package-here" in caught.value.message
    assert caught.value.hint is not None and "pip's output ends with" in caught.value.hint
    assert not has_image(data, DIGEST)
    assert resolve_image(data, US) is None
    assert [p.name for p in (data / "images").iterdir() if p.name.startswith((".build", "sha256"))] == []


def test_a_crashed_build_leftover_is_swept_and_concurrent_builds_build_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    leftover = data / "images" / (".build-sha256-" + "1" * 64 + "-crashed")
    leftover.mkdir(parents=True)
    (leftover / "half-written").write_text("")
    code = _code(tmp_path)
    results: list[images.LocalImage] = []
    errors: list[BaseException] = []

    def build(uri: str) -> None:
        try:
            results.append(add_image(data, digest=DIGEST, image_uris=[uri], code_dir=code, requirements=None,
                                     contract="inference-toolkit", environment=ENV))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(uri,)) for uri in (US, EU, US)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert {image.path for image in results} == {data / "images" / ("sha256-" + "1" * 64)}
    assert not leftover.exists()
    assert not list((data / "images").glob(".build-*"))
    final = get_image(data, DIGEST)
    assert final is not None and set(final.image_uris) == {US, EU}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digest": "latest"}, images.BAD_DIGEST.format(digest="latest")),
        ({"contract": "torchserve"}, images.BAD_CONTRACT.format(contract="torchserve")),
        ({"image_uris": ["python:3.11"]}, images.BAD_IMAGE_URI.format(uri="python:3.11")),
    ],
)
def test_bad_arguments_are_input_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"digest": DIGEST, "image_uris": [US], "code_dir": _code(tmp_path), "requirements": None,
                 "contract": "inference-toolkit", "environment": ENV, **kwargs}
    with pytest.raises(InputError) as caught:
        add_image(tmp_path / "data", **arguments)
    assert caught.value.message == message


def test_container_command_runs_the_serving_stack_with_the_contract_environment(tmp_path: Path) -> None:
    image = add_image(tmp_path / "data", digest=DIGEST, image_uris=[US], code_dir=_code(tmp_path),
                      requirements=None, contract="inference-toolkit", environment=ENV)

    argv, env = container_command(image, model_dir=tmp_path / "model", port=8123)

    assert argv == [str(image.python), str(image.path / "serving" / "serve.py"), "serve"]
    assert env["SAGEMAKER_BIND_TO_PORT"] == "8123"
    assert env["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert env["MODELOPS_CONTRACT"] == "inference-toolkit"
    assert (image.path / "serving" / "djl_python" / "__init__.py").is_file()
