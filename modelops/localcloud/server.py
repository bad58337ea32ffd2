"""The local cloud's HTTP server: one asyncio event loop on 127.0.0.1 serving three protocols.

Why asyncio and a parser of our own choosing: InvokeEndpoint is a proxy hop in front of the
container, and the bench (``bench/localcloud.py``) requires the hop to add under 1 ms at p50 and keep
70% of the container's direct throughput on 2 cores. Measured on these machines,
``http.server.ThreadingHTTPServer`` spends ~150 us per request parsing headers through
``email.parser`` and a thread per connection, and a proxy built on it plus ``http.client`` reaches
about half the direct throughput; an ``asyncio.Protocol`` fed by ``httptools`` (the binding of
llhttp, Node's HTTP parser, that uvicorn uses) parses a request in ~3 us and forwards it to pooled
keep-alive upstream connections (also ``asyncio.Protocol``), a few tens of microseconds per hop.
llhttp also does what a hand-rolled parser gets wrong under hostile input: chunked bodies, two
Content-Length headers (refused), Content-Length with Transfer-Encoding (refused), bad request lines
and header bytes. The hot path is callbacks end to end (no coroutine or timer per request), and the
loop is uvloop's where installed (~15% less CPU per hop than asyncio's selector loop). The control
plane and CloudWatch run in a small thread pool (they touch SQLite and take locks), so they never
stall the runtime path; the reconcile loop runs in its own thread.

Under bad input and slow clients (:class:`Limits`): every error of the HTTP layer is answered in the
protocol of the request (``protocol.wire_of``) with AWS's common errors (MalformedHttpRequestException,
RequestEntityTooLargeException, RequestTimeoutException, ServiceUnavailable); a request's head must
arrive within the header timeout, its body within the body timeout, and an idle keep-alive
connection is closed after the idle timeout; a body over its service's limit is refused when its
head arrives (and the rest discarded as it comes); the bytes of request bodies held at once and the
connections open at once are bounded (a connection over the budget stops being read until others
finish); and a client that half-closes its side after its request still gets every answer.
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
import sys
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httptools

from modelops.localcloud import lifecycle
from modelops.localcloud.protocol import (
    CLOUDWATCH_CBOR,
    CLOUDWATCH_JSON,
    MALFORMED,
    RUNTIME_PREFIX,
    TIMED_OUT,
    TOO_LARGE,
    UNAVAILABLE,
    Response,
    ServiceError,
    region_of,
    tcp_transport,
    wire_of,
)
from modelops.localcloud.timing import FAST, Timing

log = logging.getLogger("modelops.localcloud")

SERVER_LOCK_FILE = "server.lock"
ROUTES_PATH = "/_localcloud/routes"
ALREADY_SERVING = "another local cloud already serves the data dir {data_dir}"
DAMAGED_STATE = "cannot open {file}: {reason}; move that file away and the local cloud starts with it empty"
CANNOT_START = "cannot start: {reason}"

MAX_HEAD_BYTES = 64 * 1024
# What a request body may weigh, by service. The runtime's 6 MB is InvokeEndpoint's documented limit
# (answered with the service's own ValidationError); CloudWatch documents 1 MB for PutMetricData and
# the local cloud applies it to every CloudWatch request; the control plane's 6 MB is inferred (its
# largest requests are a few hundred KB).
RUNTIME_BODY_LIMIT = 6 * 1024 * 1024
CLOUDWATCH_BODY_LIMIT = 1024 * 1024
CONTROL_BODY_LIMIT = 6 * 1024 * 1024
MAX_QUEUED = 64  # requests read ahead of the one being answered (pipelining)
HEAD_FEED_LIMIT = 16 * MAX_HEAD_BYTES  # bytes fed while a head is unfinished (see data_received)
_RUNTIME = RUNTIME_PREFIX.encode()
LINGER_S = 2.0  # after an answer that closes the connection, what the client still sends is read and dropped

HEAD_TOO_LARGE = "The request line and headers exceed {limit} bytes."
BODY_TOO_LARGE = "The request body exceeds the {limit} bytes this service accepts."
BAD_HTTP = "The request is not valid HTTP/1.1: {reason}."
BAD_VERSION = "HTTP version {version} is not supported; send HTTP/1.1."
BAD_TRANSFER_ENCODING = "Transfer-Encoding {value!r} is not supported; send the body as is or chunked."
BAD_CONTENT_ENCODING = "Content-Encoding {value!r} is not supported; send the body as is or gzip-compressed."
NOT_GZIP = "The request body could not be decompressed as its Content-Encoding (gzip) says: {reason}."
INCOMPLETE = "The connection was half-closed before the request was complete."
HEAD_TIMEOUT = "The request line and headers did not arrive within {seconds:g} seconds."
BODY_TIMEOUT = "The request body did not arrive within {seconds:g} seconds."
OVERLOADED = "The local cloud serves {limit} connections at most; retry when one closes."

_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
            413: "Payload Too Large", 424: "Failed Dependency", 429: "Too Many Requests", 431: "Request Header Fields "
            "Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Limits:
    """How long a client may take and how much it may hold (``MODELOPS_LOCAL_*`` of the server)."""

    header_timeout: float = 20.0  # from a request's first byte to the end of its head
    body_timeout: float = 60.0  # from the end of its head to the end of its body
    idle_timeout: float = 75.0  # a keep-alive connection waiting for its next request
    max_connections: int = 1000
    max_buffered_bytes: int = 64 * 1024 * 1024  # request bodies held at once, over all connections

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Limits:
        def number(name: str, default: float) -> float:
            value = environ.get(f"MODELOPS_LOCAL_{name}")
            return float(value) if value else default

        return cls(header_timeout=number("HEADER_TIMEOUT", cls.header_timeout),
                   body_timeout=number("BODY_TIMEOUT", cls.body_timeout),
                   idle_timeout=number("IDLE_TIMEOUT", cls.idle_timeout),
                   max_connections=int(number("MAX_CONNECTIONS", cls.max_connections)),
                   max_buffered_bytes=int(number("MAX_BUFFERED_MB", cls.max_buffered_bytes / 2**20) * 2**20))


class Request:
    """A request read whole, or (``answer`` set) one the HTTP layer answers itself."""

    __slots__ = ("answer", "body", "close", "headers", "method", "path", "size")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, close: bool,
                 answer: Response | None = None, size: int = 0):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.close = close
        self.answer = answer
        self.size = size  # bytes of the body counted in the server's budget


class _Refusal(Exception):
    """Raised from a parser callback: answer this and close the connection."""

    def __init__(self, response: Response):
        super().__init__()
        self.response = response


class HttpConnection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive and pipelining, answers in order."""

    def __init__(self, app: LocalCloudServer):
        self.app = app
        self.limits = app.limits
        self.transport: asyncio.Transport | None = None
        self.queue: deque[Request] = deque()  # read, not yet answered (the first may be in progress)
        self.busy = False  # a request is being answered
        self.closed = False
        self.doomed = False  # a failure is queued: nothing more is read, the connection closes after it
        self.lingering = False  # the last answer is written: what still comes is dropped until it closes
        self.eof = False  # the client half-closed its side
        self.paused = False
        self.deadline = 0.0  # monotonic time the current wait ends (0: none)
        self.held = 0  # body bytes this connection holds in the server's budget
        self.task: asyncio.Future[None] | None = None  # the request being answered (kept alive by this ref)
        # The request being read: its state ("idle" between requests, "head", "body"), what came of it.
        self.reading = "idle"
        self.url = b""
        self.headers: dict[str, str] = {}
        # The hot path: llhttp hands the URL's pieces and the headers to C-level callables (no Python
        # frame per header); they are decoded once the head is whole. httptools reads these attributes
        # when the parser is made.
        self._url: list[bytes] = []
        self._raw: dict[bytes, bytes] = {}
        self.on_url = self._url.append
        self.on_header = self._raw.__setitem__
        self.parts: list[bytes] = []
        self.size = 0
        self.head_fed = 0  # bytes of the reads the head came in (an upper bound of its size)
        self.read_size = 0  # bytes of the read being parsed
        self.limit = CONTROL_BODY_LIMIT
        self.discarding = False  # its answer is decided already: its body is dropped as it comes
        self.method = ""
        self.current: Request | None = None
        self.parser = httptools.HttpRequestParser(self)  # after on_url and on_header exist

    # --- the transport's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tcp_transport(transport)
        if len(self.app.connections) >= self.limits.max_connections:
            status, headers, body = wire_of("", {}).error(
                ServiceError(UNAVAILABLE, OVERLOADED.format(limit=self.limits.max_connections), 503))
            head = "".join([f"HTTP/1.1 {status} {_REASONS[status]}\r\n", *[f"{n}: {v}\r\n" for n, v in headers],
                            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"])
            self.transport.write(head.encode("latin-1") + body)
            self._close()
            return
        self.app.connections.add(self)
        self.deadline = self.app.now + self.limits.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.app.connections.discard(self)
        self.app.release(self, self.held)
        self.held = 0

    def data_received(self, data: bytes) -> None:
        if self.doomed or self.lingering:
            return
        self.read_size = len(data)
        if self.reading == "head":
            # llhttp hands a header over once it is whole, and the head's size is checked once it is: a
            # head trickled in without end is bounded here, by the bytes fed while it is unfinished
            # (loosely: the read that completes a head may carry some of the body).
            self.head_fed += len(data)
            if self.head_fed > HEAD_FEED_LIMIT:
                self._fail(self._error(MALFORMED, HEAD_TOO_LARGE.format(limit=MAX_HEAD_BYTES), 431))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request before the upgrade is whole and queued; what follows is another protocol.
            if self.queue:
                self.queue[-1].close = True
            self.doomed = True
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if not isinstance(refusal, _Refusal):
                raise
            self._fail(refusal.response)
            return
        except httptools.HttpParserError as exc:
            reason = str(exc).rstrip(".") or "it could not be parsed"
            self._fail(self._error(MALFORMED, BAD_HTTP.format(reason=reason[:1].lower() + reason[1:]), 400))
            return
        if self.queue:
            if len(self.queue) > MAX_QUEUED:
                self.pause()
            self._next()

    def eof_received(self) -> bool:
        """The client shut its side: answer what it sent (an incomplete request with an error), then close."""
        self.eof = True
        if self.lingering:
            self._close()
        elif self.reading != "idle" and not self.discarding and not self.doomed:
            self.reading = "idle"
            self._drop_parts()
            self.queue.append(Request(self.method, self.url.decode("latin-1"), self.headers, b"", close=True,
                                      answer=self._error(MALFORMED, INCOMPLETE, 400)))
            self._next()
        else:
            self._next()
        return True  # keep the transport open to write the answers

    def pause(self) -> None:
        if self.transport is not None and not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    # --- the parser's callbacks (httptools)

    def on_message_begin(self) -> None:
        self.reading = "head"
        self._url.clear()
        self._raw.clear()
        self.url = b""
        self.headers = {}
        self.parts = []
        self.size = 0
        self.head_fed = self.read_size  # at most this much of the head is in the read that begins it
        self.discarding = False
        self.deadline = self.app.now + self.limits.header_timeout  # (the sweep's clock: deadlines are seconds)

    def on_headers_complete(self) -> None:
        parser = self.parser
        raw = self._raw
        self.url = url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        self.headers = headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw.items()}
        # A head read in pieces that are together smaller than the limit is within it: measured only otherwise.
        if self.head_fed > MAX_HEAD_BYTES and \
                len(url) + sum(map(len, raw)) + sum(map(len, raw.values())) + 4 * len(raw) > MAX_HEAD_BYTES:
            raise _Refusal(self._error(MALFORMED, HEAD_TOO_LARGE.format(limit=MAX_HEAD_BYTES), 431))
        self.method = parser.get_method().decode("latin-1")
        self.reading = "body"
        self.deadline = self.app.now + self.limits.body_timeout
        if parser.get_http_version() not in ("1.1", "1.0"):
            raise _Refusal(self._error(MALFORMED, BAD_VERSION.format(version=parser.get_http_version()), 400))
        encoding = headers.get("transfer-encoding")
        if encoding is not None and encoding.strip().lower() != "chunked":
            raise _Refusal(self._error(MALFORMED, BAD_TRANSFER_ENCODING.format(value=encoding), 400))
        self.limit = RUNTIME_BODY_LIMIT if url.startswith(_RUNTIME) else _body_limit(url.decode("latin-1"), headers)
        length = headers.get("content-length")
        if length is not None and int(length) > self.limit:
            self._refuse_body()
            return
        expect = headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and not self.busy and not self.queue \
                and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.discarding:
            return
        self.size += len(chunk)
        if self.size > self.limit:  # a chunked body grew past the limit
            self._drop_parts()
            self._refuse_body()
            return
        self.parts.append(chunk)
        self.held += len(chunk)
        app = self.app
        app.buffered += len(chunk)
        if app.buffered > self.limits.max_buffered_bytes:
            app.over_budget(self)

    def on_message_complete(self) -> None:
        self.reading = "idle"
        self.deadline = 0.0
        if self.discarding:
            return
        parts = self.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self.parts = []
        path = self.url.decode("latin-1")
        answer = None
        encoding = self.headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() != "identity" and not path.startswith(RUNTIME_PREFIX):
            body, answer = self._decompressed(body, encoding.strip().lower())
        request = Request(self.method, path, self.headers, body, not self.parser.should_keep_alive(), answer,
                          self.size)
        self.size = 0  # the request holds them now
        if self.busy or self.queue or answer is not None:
            self.queue.append(request)
        else:  # the hot path: nothing before it, answer it now
            self._dispatch(request)

    def _decompressed(self, body: bytes, encoding: str) -> tuple[bytes, Response | None]:
        """The body a compressed request carries (botocore gzips PutMetricData bodies over 10 KB, as the
        service's model asks), within the service's limit; or the error to answer instead."""
        if encoding not in ("gzip", "x-gzip"):
            return b"", self._error(MALFORMED, BAD_CONTENT_ENCODING.format(value=encoding), 400)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            plain = inflater.decompress(body, self.limit + 1)
            if len(plain) > self.limit:  # a bomb: it is not inflated further
                return b"", self._error(TOO_LARGE, BODY_TOO_LARGE.format(limit=self.limit), 413)
            if not inflater.eof:
                raise zlib.error("the compressed stream is incomplete")
        except zlib.error as exc:
            return b"", self._error(MALFORMED, NOT_GZIP.format(reason=exc), 400)
        return plain, None

    # --- answering, in order

    def _next(self) -> None:
        while not self.busy and not self.closed and self.queue:
            request = self.queue.popleft()
            if self.paused and len(self.queue) <= MAX_QUEUED and self.app.buffered <= self.limits.max_buffered_bytes:
                self.resume()
            if request.answer is not None:
                self.current = request
                self.busy = True
                self._respond(request.answer)
                continue
            self._dispatch(request)
        if not self.busy and not self.queue and not self.closed:
            if self.eof or self.doomed:
                self._close()
            elif self.reading == "idle":
                self.deadline = self.app.now + self.limits.idle_timeout

    def _dispatch(self, request: Request) -> None:
        self.busy = True
        self.current = request
        self.deadline = 0.0
        if request.method == "POST" and request.path.startswith(RUNTIME_PREFIX):
            # The hot path is callback-driven end to end (no task, no coroutine per request).
            self.app.runtime.invoke(request.path, request.headers, request.body, self._respond)
            return
        result = self.app.dispatch(request)
        if isinstance(result, tuple):
            self._respond(result)
        else:
            self.task = asyncio.ensure_future(self._finish(result))

    async def _finish(self, result: Awaitable[Response]) -> None:
        try:
            response = await result
        except Exception:  # the services answer their own errors; this is a bug of the server
            log.exception("request failed inside the local cloud")
            assert self.current is not None
            response = self._error("InternalFailure", "An internal error occurred.", 500, self.current)
        self._respond(response)

    def _respond(self, response: Response) -> None:
        request = self.current
        self.current = None
        self.busy = False
        if request is not None and request.size:
            self.held -= request.size
            app = self.app
            app.buffered -= request.size
            if app.waiting:
                app.release(self, 0)
        if self.transport is None or self.closed:
            return
        status, headers, body = response
        close = request is None or request.close or (self.doomed and not self.queue)
        head = "".join([f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n",
                        *[f"{name}: {value}\r\n" for name, value in headers],
                        f"Content-Length: {len(body)}\r\n",
                        "Connection: close\r\n\r\n" if close else "\r\n"])
        if request is not None and request.method == "HEAD":
            body = b""
        self.transport.write(head.encode("latin-1") + body)
        if close:
            self._linger()
            return
        self._next()

    # --- failures, timeouts, closing

    def _error(self, code: str, message: str, status: int, request: Request | None = None) -> Response:
        """An error of the HTTP layer in the protocol of the request (as far as it was read)."""
        path = request.path if request is not None else (self.url or b"".join(self._url)).decode("latin-1")
        headers = request.headers if request is not None else (self.headers or {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self._raw.items()})
        return wire_of(path, headers).error(ServiceError(code, message, status))

    def _refuse_body(self) -> None:
        """Answer a body over its limit now, in its turn, and drop the body as it arrives."""
        self.discarding = True
        if self.url.startswith(_RUNTIME) and self.method == "POST":
            from modelops.localcloud.runtime_api import MAX_PAYLOAD_BYTES, PAYLOAD_TOO_LARGE

            answer = self._error("ValidationError", PAYLOAD_TOO_LARGE.format(limit=MAX_PAYLOAD_BYTES), 400)
        else:
            answer = self._error(TOO_LARGE, BODY_TOO_LARGE.format(limit=self.limit), 413)
        self.queue.append(Request(self.method, self.url.decode("latin-1"), self.headers, b"", close=False,
                                  answer=answer))
        self._next()

    def _drop_parts(self) -> None:
        self.parts = []
        self.app.release(self, self.size)
        self.held -= self.size
        self.size = 0

    def _fail(self, response: Response) -> None:
        """Answer an error that ends the connection, after the requests already read."""
        self.reading = "idle"
        self.discarding = True
        self._drop_parts()
        self.queue.append(Request("", "", {}, b"", close=True, answer=response))
        self.doomed = True
        self._next()

    def check(self, now: float) -> None:
        """Called about once a second: end the wait that has lasted too long."""
        if not self.deadline or now < self.deadline or self.closed or self.busy:
            return
        if self.lingering:
            self._close()
        elif self.reading == "head":
            self._fail(self._error(TIMED_OUT, HEAD_TIMEOUT.format(seconds=self.limits.header_timeout), 408))
        elif self.reading == "body" and not self.discarding:
            self._fail(self._error(TIMED_OUT, BODY_TIMEOUT.format(seconds=self.limits.body_timeout), 408))
        else:
            self._close()  # an idle keep-alive connection, or one that would not finish a refused body

    def _linger(self) -> None:
        """Shut our side and read (dropping) what the client still sends for a moment, then close: a
        close with unread data would reset the connection and could lose the answer on its way."""
        self.lingering = True
        self.queue.clear()
        if self.transport is None or self.closed:
            return
        if self.eof or not self.transport.can_write_eof():
            self._close()
            return
        self.transport.write_eof()
        self.deadline = self.app.now + LINGER_S
        self.resume()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


def _body_limit(path: str, headers: Mapping[str, str]) -> int:
    """The body limit of a request that is not for the runtime (CloudWatch's, or the control plane's)."""
    return CLOUDWATCH_BODY_LIMIT if wire_of(path, headers) in (CLOUDWATCH_JSON, CLOUDWATCH_CBOR) else CONTROL_BODY_LIMIT


class LocalCloudServer:
    """The server: routes each request to the runtime, the control plane or CloudWatch."""

    def __init__(self, data_dir: Path, *, container_timeout: float, timing: Timing = FAST,
                 limits: Limits | None = None):
        from modelops.localcloud.cloudwatch import CloudWatch
        from modelops.localcloud.endpoints import Endpoints
        from modelops.localcloud.runtime_api import RuntimeApi
        from modelops.localcloud.sagemaker_api import SageMakerApi
        from modelops.localcloud.state import Store
        from modelops.localcloud.supervisor import Supervisor
        from modelops.runtime import SystemClock

        clock = SystemClock()  # one clock for both services and the reconcile loop
        self.data_dir = data_dir
        self.timing = timing
        self.limits = limits or Limits()
        self.store = Store(data_dir)
        self.cloudwatch = CloudWatch(data_dir, clock=clock)
        self.supervisor = Supervisor(data_dir, self.store)
        self.runtime = RuntimeApi(cloudwatch=self.cloudwatch, container_timeout=container_timeout)
        self.endpoints = Endpoints(data_dir, self.store, self.supervisor, self.cloudwatch, self.runtime,
                                   clock=clock, timing=timing)
        self.sagemaker = SageMakerApi(self.endpoints, clock)
        # The control plane and CloudWatch take locks and write SQLite: off the event loop.
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="control")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[HttpConnection] = set()
        self.buffered = 0  # request body bytes held, over all connections
        self.now = time.monotonic()  # the clock of deadlines, read by the sweep (deadlines are seconds long)
        self.waiting: set[HttpConnection] = set()  # connections paused until the budget has room

    # --- the budget of held body bytes

    def over_budget(self, conn: HttpConnection) -> None:
        """The bodies held went past the budget: ``conn`` waits until others finish."""
        self.waiting.add(conn)
        conn.pause()

    def release(self, conn: HttpConnection, size: int) -> None:
        self.buffered -= size
        if self.waiting and self.buffered <= self.limits.max_buffered_bytes:
            waiting, self.waiting = self.waiting, set()
            for other in waiting:
                other.resume()

    def _sweep(self) -> None:
        self.now = now = time.monotonic()
        for conn in list(self.connections):
            conn.check(now)
        assert self.loop is not None
        self.loop.call_later(_sweep_interval(self.limits), self._sweep)

    # --- routing

    def dispatch(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path
        headers = request.headers
        region = region_of(headers)
        target = headers.get("x-amz-target", "")
        if target.startswith("SageMaker."):
            return self._in_thread(self.sagemaker.handle, target[len("SageMaker."):], request.body, region)
        if self.cloudwatch.handles(path, headers):
            return self._in_thread(self.cloudwatch.handle, request.method, path, headers, request.body, region)
        wire = wire_of(path, headers)
        if path == lifecycle.HEALTH_PATH:
            document = {"pid": os.getpid(), "data_dir": str(self.data_dir), "timing": self.timing.to_dict()}
            return 200, [("Content-Type", "application/json")], json.dumps(document).encode()
        if path == ROUTES_PATH:  # what the runtime routes to (debugging, and the bench's direct baseline)
            from modelops.localcloud.runtime_api import routes_json

            return 200, [("Content-Type", "application/json")], routes_json(list(self.runtime.routes.values())).encode()
        if target:
            return wire.error(ServiceError("UnknownOperationException",
                                           f"The operation {target} is not supported by the local cloud."))
        return wire.error(ServiceError("UnknownOperationException", f"No operation at {request.method} {path}.", 404))

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
        self.loop.call_later(_sweep_interval(self.limits), self._sweep)
        # The hot path allocates a few short-lived, acyclic objects per request: collect the young
        # generation less often, and never rescan what start-up loaded (~5% of the hop's CPU).
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        lifecycle.write_record(self.data_dir, pid=os.getpid(), port=bound, timing=self.timing.to_dict())
        log.info("local cloud listening on http://127.0.0.1:%d (data dir %s, timing %s x %g)", bound, self.data_dir,
                 self.timing.profile, self.timing.scale)
        try:
            await stopping.wait()
        finally:
            log.info("local cloud stopping")
            server.close()
            self.endpoints.stop()
            self.supervisor.stop_all()
            with contextlib.suppress(Exception):
                self.cloudwatch.close()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.store.close()
            lifecycle.remove_record(self.data_dir, os.getpid())


def _sweep_interval(limits: Limits) -> float:
    return max(0.05, min(1.0, limits.header_timeout / 4, limits.body_timeout / 4, limits.idle_timeout / 4))


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop's event loop where it is installed (its libuv transports take ~15% off
    the proxy hop's CPU, see bench/localcloud), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(data_dir: Path, port: int, timing: Timing = FAST) -> int:
    """Run the server in the foreground (``python -m modelops.localcloud``) until SIGTERM."""
    from modelops.localcloud.state import DamagedStateError, StateUnavailable

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
        # Errors found while opening the state are one line in the log (the CLI quotes it), not a traceback.
        try:
            server = LocalCloudServer(data_dir, container_timeout=timeout, timing=timing,
                                      limits=Limits.from_environ(os.environ))
        except DamagedStateError as exc:
            log.error(DAMAGED_STATE.format(file=exc.path, reason=exc.reason))
            return 3
        except StateUnavailable as exc:
            log.error(CANNOT_START.format(reason=exc.message))
            return lifecycle.EXIT_DISK_FULL if exc.disk_full else 3
        _run(server.serve(port))
    except OSError as exc:
        log.error("cannot serve on 127.0.0.1:%s: %s", port, exc)
        return lifecycle.EXIT_PORT_IN_USE if exc.errno == errno.EADDRINUSE else 3
    finally:
        lock.close()
    return 0
