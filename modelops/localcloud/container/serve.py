"""The model server inside a local image: ``python serve.py serve``, as the platform runs ``<image> serve``.

Stdlib only, so it runs in any image venv. It implements the SageMaker container contract
(``GET /ping``, ``POST /invocations`` on ``SAGEMAKER_BIND_TO_PORT``, model files in ``SM_MODEL_DIR``)
for the two handler contracts modelops builds (``MODELOPS_CONTRACT``):

* ``inference-toolkit``: the SageMaker inference toolkit's ``model_fn(model_dir)``,
  ``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``
  (or ``transform_fn(model, body, content_type, accept)``) in the file ``SAGEMAKER_PROGRAM`` names,
  with the toolkit's defaults for JSON, CSV and NPY where one is omitted.
* ``djl-python``: DJL Serving's Python engine, ``handle(inputs)`` in ``model.py`` (or
  ``OPTION_ENTRYPOINT``), first called with an empty ``Input`` to initialize, as DJL does.

The model is loaded before the port is bound: the platform's ping fails (connection refused) until
the model is ready, and a model that cannot load ends the process with its traceback on stderr,
which the local cloud quotes as the endpoint's FailureReason.

HTTP/1.1 with keep-alive (the local cloud keeps pooled connections to each container); each
response goes out in one write with TCP_NODELAY, so small answers do not wait on Nagle's algorithm.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import signal
import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
_REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 406: "Not Acceptable", 411: "Length Required",
    415: "Unsupported Media Type", 500: "Internal Server Error", 503: "Service Unavailable",
}  # fmt: skip


class HandlerError(Exception):
    """An error with the HTTP status the container answers (the toolkit's BaseInferenceToolkitError)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


Response = tuple[int, bytes, str, dict[str, str]]  # status, body, content type, extra headers


# --- the inference toolkit ------------------------------------------------------------------------


class ToolkitModel:
    """The SageMaker inference toolkit's handler chain over the user's module."""

    def __init__(self, code_dir: Path, model_dir: Path, environ: dict[str, str]):
        self.model_dir = model_dir
        self.default_accept = environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)
        program = environ.get("SAGEMAKER_PROGRAM")
        self.module: ModuleType | None = None
        if program:
            path = _find_entry_point(program, [code_dir, model_dir / "code"])
            if path is None:
                raise RuntimeError(f"SAGEMAKER_PROGRAM {program!r} not found in {code_dir} or {model_dir / 'code'}")
            self.module = _import_file(path)
        model_fn = self._user("model_fn")
        if model_fn is None:
            raise RuntimeError("Please provide a model_fn implementation (SAGEMAKER_PROGRAM names none).")
        self.model = model_fn(str(model_dir))

    def _user(self, name: str) -> Any:
        return getattr(self.module, name, None) if self.module is not None else None

    def invoke(self, body: bytes, content_type: str, accept: str) -> Response:
        if not accept or accept == "*/*":
            accept = self.default_accept
        transform_fn = self._user("transform_fn")
        if transform_fn is not None:
            result = transform_fn(self.model, body, content_type, accept)
        else:
            input_fn = self._user("input_fn") or default_input_fn
            predict_fn = self._user("predict_fn") or default_predict_fn
            output_fn = self._user("output_fn") or default_output_fn
            result = output_fn(predict_fn(input_fn(body, content_type), self.model), accept)
        response_type = accept
        if isinstance(result, tuple):  # output_fn may answer (body, content type), as in the toolkit
            result, response_type = result
        return 200, _to_bytes(result), response_type, {}


def default_input_fn(body: bytes, content_type: str) -> Any:
    """The toolkit's decoder: JSON, CSV and NPY to a numpy array (to lists when numpy is missing)."""
    kind = (content_type or JSON).split(";")[0].strip().lower()
    np = _numpy()
    if kind == JSON:
        data = json.loads(body)
        return np.array(data) if np is not None else data
    if kind == CSV:
        text = body.decode("utf-8")
        if np is not None:
            return np.genfromtxt(io.StringIO(text), delimiter=",", dtype=float)
        return [[float(cell) for cell in row] for row in csv.reader(io.StringIO(text)) if row]
    if kind == NPY and np is not None:
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise HandlerError(415, f"Content type {content_type} is not supported by this framework.")


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)`` (scikit-learn, XGBoost), else ``model(data)`` (a torch module)."""
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise HandlerError(500, "Please provide a predict_fn implementation: the model has no predict().")


def default_output_fn(prediction: Any, accept: str) -> bytes:
    """The toolkit's encoder: JSON, CSV or NPY."""
    kind = accept.split(";")[0].strip().lower()
    if hasattr(prediction, "tolist") and kind != NPY:
        prediction = prediction.tolist()
    if kind == JSON:
        return json.dumps(prediction).encode("utf-8")
    if kind == CSV:
        rows = prediction if isinstance(prediction, list) else [prediction]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow(row if isinstance(row, list | tuple) else [row])
        return out.getvalue().encode("utf-8")
    np = _numpy()
    if kind == NPY and np is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue()
    raise HandlerError(406, f"Accept type {accept} is not supported by this framework.")


# --- DJL Serving's Python engine ------------------------------------------------------------------


class DjlModel:
    """DJL's Python engine: ``handle(inputs)``, initialized with an empty Input."""

    def __init__(self, code_dir: Path, model_dir: Path, environ: dict[str, str]):
        from djl_python import Input

        self.model_dir = model_dir
        self.settings = _djl_settings(model_dir, environ)
        entry = self.settings.get("entryPoint") or "model.py"
        path = _find_entry_point(entry, [code_dir, model_dir])
        if path is None:
            raise RuntimeError(f"DJL entry point {entry!r} not found in {code_dir} or {model_dir}")
        module = _import_file(path)
        handle = getattr(module, "handle", None)
        if handle is None:
            raise RuntimeError(f"{path.name} defines no handle(inputs) function")
        self.handle: Any = handle
        self.handle(Input(self._properties({}), None))

    def _properties(self, headers: dict[str, str]) -> dict[str, str]:
        return {**self.settings, **headers, "model_dir": str(self.model_dir)}

    def invoke(self, body: bytes, headers: dict[str, str]) -> Response:
        from djl_python import Input

        output = self.handle(Input(self._properties(headers), body))
        if output is None:
            raise HandlerError(500, "handle() returned no Output for a request")
        properties = dict(output.properties)
        content_type = next((v for k, v in properties.items() if k.lower() == "content-type"), None)
        extra = {k: v for k, v in properties.items() if k.lower() not in ("content-type", "content-length")}
        data = output.body()
        if output.code >= 400 and not data:
            data = json.dumps({"code": output.code, "message": output.message}).encode("utf-8")
            content_type = content_type or JSON
        return output.code, data, content_type or "application/octet-stream", extra


def _djl_settings(model_dir: Path, environ: dict[str, str]) -> dict[str, str]:
    """serving.properties ``option.x=y`` and ``OPTION_X`` variables, as DJL hands them to the model."""
    settings: dict[str, str] = {}
    properties = model_dir / "serving.properties"
    if properties.is_file():
        for line in properties.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                settings[key.removeprefix("option.")] = value
    for name, value in environ.items():
        if name.startswith("OPTION_"):
            parts = name.removeprefix("OPTION_").lower().split("_")
            settings[parts[0] + "".join(p.title() for p in parts[1:])] = value  # OPTION_ENTRYPOINT -> entrypoint
            settings[name.removeprefix("OPTION_").lower()] = value
    if "entrypoint" in settings and "entryPoint" not in settings:
        settings["entryPoint"] = settings["entrypoint"]
    return settings


# --- shared helpers -------------------------------------------------------------------------------


def _find_entry_point(name: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate
        if not name.endswith(".py") and (folder / f"{name}.py").is_file():
            return folder / f"{name}.py"
    return None


def _import_file(path: Path) -> ModuleType:
    """Import the user's entry point as a top-level module, its folder on sys.path for its own imports."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _to_bytes(result: Any) -> bytes:
    if isinstance(result, bytes):
        return result
    if isinstance(result, bytearray | memoryview):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    if hasattr(result, "tolist"):
        result = result.tolist()
    return json.dumps(result).encode("utf-8")


# --- HTTP -----------------------------------------------------------------------------------------


class ContainerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "modelops-container"
    model: ToolkitModel | DjlModel  # set on the class by serve()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: the local cloud records invocations itself

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/ping":
            self._send(200, b'{"status": "Healthy"}\n', JSON, {})
        else:
            self._send(404, b'{"message": "not found"}\n', JSON, {})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path == "/ping":
            self._send(200, b'{"status": "Healthy"}\n', JSON, {})
            return
        try:
            body = self._read_body()
        except HandlerError as exc:
            self.close_connection = True
            self._send(exc.status, str(exc).encode(), "text/plain", {})
            return
        if path != "/invocations":
            self._send(404, b'{"message": "not found"}\n', JSON, {})
            return
        try:
            if isinstance(self.model, DjlModel):
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, data, content_type, extra = self.model.invoke(body, headers)
            else:
                status, data, content_type, extra = self.model.invoke(
                    body, self.headers.get("Content-Type", JSON), self.headers.get("Accept", "")
                )
        except HandlerError as exc:
            print(f"invocation failed ({exc.status}): {exc}", file=sys.stderr, flush=True)
            status, data, content_type, extra = exc.status, str(exc).encode("utf-8"), "text/plain", {}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            message = f"{type(exc).__name__}: {exc}"
            status, data, content_type, extra = 500, message.encode("utf-8"), "text/plain", {}
        self._send(status, data, content_type, extra)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            raise HandlerError(411, "Content-Length required")
        return self.rfile.read(int(length))

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in extra.items())
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def serve(environ: dict[str, str]) -> int:
    port = int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    host = environ.get("MODELOPS_BIND_HOST", "127.0.0.1")
    model_dir = Path(environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    code_dir = Path(environ.get("MODELOPS_CODE_DIR", str(model_dir / "code")))
    contract = environ.get("MODELOPS_CONTRACT", "inference-toolkit")
    try:
        model: ToolkitModel | DjlModel
        if contract == "djl-python":
            model = DjlModel(code_dir, model_dir, environ)
        else:
            model = ToolkitModel(code_dir, model_dir, environ)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"model failed to load: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    ContainerHandler.model = model
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer((host, port), ContainerHandler)
    server.daemon_threads = True

    def _stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    print(f"serving {contract} model from {model_dir} on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str]) -> int:
    if argv[1:2] != ["serve"]:
        print("usage: serve.py serve", file=sys.stderr)
        return 2
    return serve(dict(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
