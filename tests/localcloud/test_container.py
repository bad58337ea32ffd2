"""The serving stack inside a local image, run for real: both handler contracts over HTTP/1.1."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.localcloud.images import LocalImage, add_image, container_command

# Inference toolkit, all four functions: echoes the JSON it gets, with the model dir it was loaded from.
ECHO = '''
import json, os

def model_fn(model_dir):
    return {"model_dir": model_dir, "weights": open(os.path.join(model_dir, "weights.txt")).read()}

def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError("echo only takes JSON, got " + content_type)
    return json.loads(body)

def predict_fn(data, model):
    if data == "fail":
        raise RuntimeError("asked to fail")
    return {"echo": data, "weights": model["weights"], "model_dir": model["model_dir"]}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''

# Inference toolkit with only model_fn: the toolkit's default decoders, predict() and encoders.
DEFAULTS = '''
class Doubler:
    def predict(self, data):
        return [[2 * float(x) for x in row] for row in data]

def model_fn(model_dir):
    return Doubler()
'''

FAILING = '''
def model_fn(model_dir):
    return None

def predict_fn(data, model):
    raise RuntimeError("model exploded on purpose")
'''

CRASHING = '''
def model_fn(model_dir):
    raise RuntimeError("cannot load the weights: checksum mismatch on purpose")
'''

DJL = '''
from djl_python import Input, Output

calls = []

def handle(inputs: Input):
    calls.append(inputs.is_empty())
    if inputs.is_empty():
        return None  # initialization, as DJL's first call
    props = inputs.get_properties()
    data = inputs.get_as_json()
    if data == "error":
        return Output().set_code(422).set_message("bad input").add_as_json({"error": "bad input"})
    if data == "raise":
        raise ValueError("handler raised on purpose")
    out = Output().add_as_json({"djl": data, "init_calls": calls.count(True), "model_dir": props["model_dir"],
                                 "content_type": inputs.content_type})
    out.add_property("X-Amzn-SageMaker-Custom-Attributes", "seen")
    return out
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _image(data_dir: Path, tmp: Path, name: str, files: dict[str, str], contract: str, env: dict[str, str]) -> LocalImage:
    code = tmp / f"code-{name}"
    code.mkdir()
    for rel, text in files.items():
        (code / rel).write_text(text)
    digest = "sha256:" + name.encode().hex().ljust(64, "0")
    uri = f"000000000000.dkr.ecr.us-east-1.amazonaws.com/{name}:1"
    return add_image(data_dir, digest=digest, image_uris=[uri], code_dir=code, requirements=None,
                     contract=contract, environment=env)


class Container:
    def __init__(self, image: LocalImage, model_dir: Path, log: Path):
        self.port = _free_port()
        argv, env = container_command(image, model_dir=model_dir, port=self.port)
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"container exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                status, _, _ = self.request("GET", "/ping")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("container never answered /ping")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def invoke(self, body: bytes, content_type: str = "application/json", accept: str = "application/json"):
        return self.request("POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Container]]:
    tmp = tmp_path_factory.mktemp("containers")
    data_dir = tmp / "data"
    model_dir = tmp / "model"
    model_dir.mkdir()
    (model_dir / "weights.txt").write_text("w-42")
    toolkit = {"SAGEMAKER_PROGRAM": "inference.py"}
    images = {
        "echo": _image(data_dir, tmp, "echo", {"inference.py": ECHO}, "inference-toolkit", toolkit),
        "defaults": _image(data_dir, tmp, "defaults", {"inference.py": DEFAULTS}, "inference-toolkit", toolkit),
        "failing": _image(data_dir, tmp, "failing", {"inference.py": FAILING}, "inference-toolkit", toolkit),
        "djl": _image(data_dir, tmp, "djl", {"model.py": DJL}, "djl-python", {}),
    }
    running = {name: Container(image, model_dir, tmp / f"{name}.log") for name, image in images.items()}
    try:
        for container in running.values():
            container.wait_ready()
        yield running
    finally:
        for container in running.values():
            container.stop()


def test_ping_and_toolkit_echo_with_model_dir(containers: dict[str, Container]) -> None:
    echo = containers["echo"]
    status, _, body = echo.request("GET", "/ping")
    assert status == 200

    status, headers, body = echo.invoke(b'{"x": [1, 2]}')

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["echo"] == {"x": [1, 2]}
    assert answer["weights"] == "w-42"  # model_fn read the model dir it was given
    assert answer["model_dir"].endswith("model")


def test_keep_alive_serves_many_requests_on_one_connection(containers: dict[str, Container]) -> None:
    conn = containers["echo"].connection()
    try:
        conn.request("GET", "/ping")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        for i in range(5):
            conn.request("POST", "/invocations", body=json.dumps(i).encode(), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert json.loads(response.read())["echo"] == i
            assert conn.sock is sock  # the same TCP connection, not a reconnect
    finally:
        conn.close()


def test_handler_exceptions_answer_500_with_the_message_and_log_the_traceback(containers: dict[str, Container]) -> None:
    status, _, body = containers["echo"].invoke(b'"fail"')
    assert status == 500
    assert body == b"RuntimeError: asked to fail"

    status, _, body = containers["echo"].invoke(b"1,2", content_type="text/csv")
    assert status == 500
    assert b"echo only takes JSON, got text/csv" in body

    status, _, body = containers["failing"].invoke(b"[[1]]")
    assert status == 500
    assert b"model exploded on purpose" in body
    deadline = time.monotonic() + 5
    while b"Traceback" not in containers["failing"].log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "model exploded on purpose" in containers["failing"].log.read_text()


def test_toolkit_defaults_decode_json_and_csv_and_encode_the_accept_type(containers: dict[str, Container]) -> None:
    defaults = containers["defaults"]

    status, _, body = defaults.invoke(b"[[1, 2], [3, 4]]")
    assert status == 200 and json.loads(body) == [[2.0, 4.0], [6.0, 8.0]]

    status, headers, body = defaults.invoke(b"1,2\n3,4\n", content_type="text/csv", accept="text/csv")
    assert status == 200 and headers["Content-Type"] == "text/csv"
    assert body == b"2.0,4.0\n6.0,8.0\n"

    status, headers, body = defaults.invoke(b"[[1]]", accept="*/*")  # the default accept is JSON
    assert status == 200 and headers["Content-Type"] == "application/json"

    status, _, body = defaults.invoke(b"\x00\x01", content_type="application/x-image")
    assert status == 415 and b"application/x-image" in body

    status, _, body = defaults.invoke(b"[[1]]", accept="application/x-parquet")
    assert status == 406


def test_djl_handle_gets_an_init_call_then_requests_with_properties(containers: dict[str, Container]) -> None:
    djl = containers["djl"]

    status, headers, body = djl.invoke(b'{"q": 1}')

    assert status == 200
    answer = json.loads(body)
    assert answer["djl"] == {"q": 1}
    assert answer["init_calls"] == 1  # exactly one empty Input, before the first request
    assert answer["model_dir"].endswith("model")
    assert answer["content_type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "seen"  # Output properties are headers


def test_djl_error_codes_and_exceptions(containers: dict[str, Container]) -> None:
    status, _, body = containers["djl"].invoke(b'"error"')
    assert status == 422 and json.loads(body) == {"error": "bad input"}

    status, _, body = containers["djl"].invoke(b'"raise"')
    assert status == 500 and body == b"ValueError: handler raised on purpose"


def test_unknown_paths_answer_404(containers: dict[str, Container]) -> None:
    status, _, _ = containers["echo"].request("GET", "/nope")
    assert status == 404


def test_a_model_that_cannot_load_exits_with_its_error_on_stderr(tmp_path: Path) -> None:
    image = _image(tmp_path / "data", tmp_path, "crashing", {"inference.py": CRASHING}, "inference-toolkit",
                   {"SAGEMAKER_PROGRAM": "inference.py"})
    argv, env = container_command(image, model_dir=tmp_path, port=_free_port())

    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line == "model failed to load: RuntimeError: cannot load the weights: checksum mismatch on purpose"


def test_a_missing_entry_point_fails_start_up(tmp_path: Path) -> None:
    image = _image(tmp_path / "data", tmp_path, "noentry", {"other.py": ""}, "inference-toolkit",
                   {"SAGEMAKER_PROGRAM": "inference.py"})
    argv, env = container_command(image, model_dir=tmp_path, port=_free_port())

    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 1
    assert "SAGEMAKER_PROGRAM 'inference.py' not found" in proc.stderr
