"""The local cloud's HTTP server: one asyncio event loop on 127.0.0.1 serving three protocols.

Why asyncio with a hand-rolled HTTP/1.1 parser: InvokeEndpoint is a proxy hop in
front of the container, and the bench (``bench/localcloud.py``) requires the hop to add under 1 ms
at p50 and keep 70% of the container's direct throughput on 2 cores. Measured on these machines,
``http.server.ThreadingHTTPServer`` spends ~150 us per request parsing headers through
``email.parser`` and a thread per connection, and a proxy built on it plus ``http.client`` reaches
about half the direct throughput; an ``asyncio.Protocol`` that splits the header block itself and
forwards to pooled keep-alive upstream connections (also ``asyncio.Protocol``) costs a few tens of
microseconds per hop. The hot path is callbacks end to end (no coroutine or timer per request), and
the loop is uvloop's where installed (~15% less CPU per hop than asyncio's selector loop). The control
plane and CloudWatch run in a small thread pool (they touch SQLite and take locks), so they never
stall the runtime path; the reconcile loop runs in its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelops.localcloud import lifecycle
from modelops.localcloud.protocol import Response, ServiceError, json_error, region_of, tcp_transport

log = logging.getLogger("modelops.localcloud")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # bodies over the 6 MB InvokeEndpoint limit are read, then refused
SERVER_LOCK_FILE = "server.lock"
ROUTES_PATH = "/_localcloud/routes"
ALREADY_SERVING = "another local cloud already serves the data dir {data_dir}"
DAMAGED_STATE = "cannot open {file}: {reason}; move that file away and the local cloud starts with it empty"

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 424: "Failed Dependency",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class Request:
    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class HttpConnection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, requests answered in order."""

    def __init__(self, app: LocalCloudServer):
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: tuple[str, str, dict[str, str], int, bool] | None = None  # parsed head awaiting its body
        self.busy = False
        self.keep_alive = True
        self.processing = False
        self.closed = False
        self.task: asyncio.Future[None] | None = None  # the request being answered (kept alive by this ref)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tcp_transport(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        if self.processing:  # a response written synchronously from inside the loop below
            return
        self.processing = True
        try:
            self._process_buffer()
        finally:
            self.processing = False

    def _process_buffer(self) -> None:
        while not self.busy and not self.closed:
            if self.pending is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEADER_BYTES:
                        self._fail(431, "Request header fields too large")
                    return
                head = bytes(self.buffer[:end]).decode("latin-1")
                del self.buffer[: end + 4]
                try:
                    self.pending = self._parse_head(head)
                except ValueError:
                    self._fail(400, "Malformed request")
                    return
                if self.pending[2].get("expect", "").lower() == "100-continue" and self.transport:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            method, path, headers, length, keep_alive = self.pending
            if len(self.buffer) < length:
                return
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.pending = None
            self.busy = True
            self.keep_alive = keep_alive
            if method == "POST" and path.startswith("/endpoints/"):
                # The hot path is callback-driven end to end (no task, no coroutine per request).
                self.app.runtime.invoke(path, headers, body, self._answer)
                continue
            result = self.app.dispatch(Request(method, path, headers, body))
            if isinstance(result, tuple):
                self._respond(result, keep_alive)
            else:
                self.task = asyncio.ensure_future(self._finish(result, keep_alive))

    def _answer(self, response: Response) -> None:
        self._respond(response, self.keep_alive)

    @staticmethod
    def _parse_head(head: str) -> tuple[str, str, dict[str, str], int, bool]:
        lines = head.split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported")
        length = int(headers.get("content-length", "0") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValueError("bad content-length")
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return method, path, headers, length, keep_alive

    async def _finish(self, result: Awaitable[Response], keep_alive: bool) -> None:
        try:
            response = await result
        except ServiceError as err:
            response = json_error(err, "application/json")
        except Exception:
            log.exception("request failed inside the local cloud")
            response = json_error(ServiceError("InternalFailure", "An internal error occurred.", 500),
                                  "application/json")
        self._respond(response, keep_alive)

    def _respond(self, response: Response, keep_alive: bool) -> None:
        status, headers, body = response
        if self.transport is None or self.closed:
            return
        head = "".join([f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n",
                        *[f"{name}: {value}\r\n" for name, value in headers],
                        f"Content-Length: {len(body)}\r\n",
                        "\r\n" if keep_alive else "Connection: close\r\n\r\n"])
        self.transport.write(head.encode("latin-1") + body)
        self.busy = False
        if not keep_alive:
            self.transport.close()
            self.closed = True
            return
        if self.buffer:
            self._process()

    def _fail(self, status: int, message: str) -> None:
        if self.transport is not None:
            body = json.dumps({"message": message}).encode()
            self.transport.write(f"HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            self.transport.close()
        self.closed = True


class LocalCloudServer:
    """The server: routes each request to the runtime, the control plane or CloudWatch."""

    def __init__(self, data_dir: Path, *, container_timeout: float):
        from modelops.localcloud.cloudwatch import CloudWatch
        from modelops.localcloud.endpoints import Endpoints
        from modelops.localcloud.runtime_api import RuntimeApi
        from modelops.localcloud.sagemaker_api import SageMakerApi
        from modelops.localcloud.state import Store
        from modelops.localcloud.supervisor import Supervisor

        self.data_dir = data_dir
        self.store = Store(data_dir)
        self.cloudwatch = CloudWatch(data_dir)
        self.supervisor = Supervisor(data_dir, self.store)
        self.runtime = RuntimeApi(cloudwatch=self.cloudwatch, container_timeout=container_timeout)
        self.endpoints = Endpoints(data_dir, self.store, self.supervisor, self.cloudwatch, self.runtime)
        self.sagemaker = SageMakerApi(self.endpoints)
        # The control plane and CloudWatch take locks and write SQLite: off the event loop.
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="control")
        self.loop: asyncio.AbstractEventLoop | None = None

    def dispatch(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        headers = request.headers
        region = region_of(headers)
        target = headers.get("x-amz-target", "")
        if target.startswith("SageMaker."):
            return self._in_thread(self.sagemaker.handle, target[len("SageMaker."):], request.body, region)
        if self.cloudwatch.handles(path, headers):
            return self._in_thread(self.cloudwatch.handle, request.method, path, headers, request.body, region)
        if path == lifecycle.HEALTH_PATH:
            body = json.dumps({"pid": os.getpid(), "data_dir": str(self.data_dir)}).encode()
            return 200, [("Content-Type", "application/json")], body
        if path == ROUTES_PATH:  # what the runtime routes to (debugging, and the bench's direct baseline)
            from modelops.localcloud.runtime_api import routes_json

            return 200, [("Content-Type", "application/json")], routes_json(list(self.runtime.routes.values())).encode()
        if target:
            return json_error(ServiceError("UnknownOperationException",
                                           f"The operation {target} is not supported by the local cloud."))
        return json_error(ServiceError("UnknownOperationException",
                                       f"No operation at {request.method} {path}.", 404), "application/json")

    def _in_thread(self, fn: Any, *args: Any) -> Awaitable[Response]:
        assert self.loop is not None
        return self.loop.run_in_executor(self.executor, fn, *args)

    async def serve(self, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.runtime.attach(self.loop)
        server = await self.loop.create_server(lambda: HttpConnection(self), host="127.0.0.1", port=port,
                                               backlog=1024, reuse_address=True)
        bound = server.sockets[0].getsockname()[1]
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stopping.set)
        self.endpoints.start()
        # The hot path allocates a few short-lived, acyclic objects per request: collect the young
        # generation less often, and never rescan what start-up loaded (~5% of the hop's CPU).
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        lifecycle.write_record(self.data_dir, pid=os.getpid(), port=bound)
        log.info("local cloud listening on http://127.0.0.1:%d (data dir %s)", bound, self.data_dir)
        try:
            await stopping.wait()
        finally:
            log.info("local cloud stopping")
            server.close()
            self.endpoints.stop()
            self.supervisor.stop_all()
            with contextlib.suppress(Exception):
                self.cloudwatch.flush()
                self.cloudwatch.close()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.store.close()
            lifecycle.remove_record(self.data_dir, os.getpid())


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop's event loop where it is installed (its libuv transports take ~15% off
    the proxy hop's CPU, see bench/localcloud), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _damaged_file(data_dir: Path) -> Path | str:
    """The state file SQLite cannot read (the data dir when neither can be told)."""
    for name in ("state.sqlite", "cloudwatch.sqlite"):
        path = data_dir / name
        try:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA schema_version")
        except sqlite3.DatabaseError:
            return path
    return f"the state in {data_dir}"


def main(data_dir: Path, port: int) -> int:
    """Run the server in the foreground (``python -m modelops.localcloud``) until SIGTERM."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = data_dir.expanduser().absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / SERVER_LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.error(ALREADY_SERVING.format(data_dir=data_dir))
        return 3
    timeout = float(os.environ.get("MODELOPS_LOCAL_CONTAINER_TIMEOUT", "60") or 60)
    try:
        try:
            server = LocalCloudServer(data_dir, container_timeout=timeout)
        except sqlite3.DatabaseError as exc:  # one line in the log (the CLI quotes it), not a traceback
            log.error(DAMAGED_STATE.format(file=_damaged_file(data_dir), reason=exc))
            return 3
        _run(server.serve(port))
    except OSError as exc:
        log.error("cannot serve on 127.0.0.1:%s: %s", port, exc)
        return lifecycle.EXIT_PORT_IN_USE if exc.errno == errno.EADDRINUSE else 3
    finally:
        lock.close()
    return 0
