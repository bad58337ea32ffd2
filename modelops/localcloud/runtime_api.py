"""The runtime API (rest-json): ``POST /endpoints/{EndpointName}/invocations``, the hot path.

The reconcile loop publishes a routing table (endpoint -> weighted entries of healthy instance
ports) by swapping one dict; a request picks an entry by weight (the blue/green split included),
an instance round-robin, and forwards over a pooled keep-alive connection. Nothing here writes
SQLite or starts a thread; metrics go to CloudWatch's in-memory buffer.

InService means the endpoint answers: when none of the instances a request may go to is healthy but
one is starting (the local cloud restarted, or a crashed instance is being replaced), the request
waits for it, up to the container timeout, instead of failing with ModelNotReadyException.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from modelops.localcloud.lifecycle import LOCAL_ACCOUNT
from modelops.localcloud.protocol import (
    RUNTIME_JSON,
    Response,
    ServiceError,
    header_errors,
    region_of,
    request_id,
    tcp_transport,
)

log = logging.getLogger("modelops.localcloud")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # 6 MB, InvokeEndpoint's limit
_PASS_HEADERS = (("content-type", "Content-Type"), ("accept", "Accept"),
                 ("x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"),
                 ("x-amzn-sagemaker-inference-id", "X-Amzn-SageMaker-Inference-Id"))

ENDPOINT_NOT_FOUND = "Endpoint {name} of account {account} not found."
PAYLOAD_TOO_LARGE = "Request payload size exceeded the maximum allowed {limit} bytes."
VARIANT_NOT_FOUND = "Variant {variant} not found for endpoint {name}."
NOT_READY = "Endpoint {name} is not ready: no instance of {what} is healthy yet."
# The service says "client error" for a container's 4xx and "server error" for its 5xx (the form seen in
# answers of the real InvokeEndpoint, e.g. 'Received client error (400) from primary with message ...').
MODEL_ERROR = ("Received {side} error ({status}) from primary with message \"{message}\". See {log_url} in "
               "account {account} for more information.")
MODEL_TIMEOUT = ("Your invocation timed out while waiting for a response from container primary. Review the latency "
                 "metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")


@dataclass(frozen=True)
class RouteEntry:
    """A share of an endpoint's traffic: one variant's fleet (blue or green) and its healthy ports."""

    variant: str
    weight: float
    ports: tuple[int, ...]
    starting: bool = False  # an instance of it is starting: a request may wait for it


@dataclass(frozen=True)
class Route:
    name: str
    region: str
    entries: tuple[RouteEntry, ...]

    def pick(self, target_variant: str | None) -> RouteEntry | None:
        entries = self.entries
        if target_variant is not None:
            entries = tuple(e for e in entries if e.variant == target_variant)
        live = [e for e in entries if e.ports]
        if not live:
            return None
        weighted = [e for e in live if e.weight > 0]
        if not weighted:  # TargetVariant may name a variant with weight 0
            return random.choice(live)
        if len(weighted) == 1:
            return weighted[0]
        cumulative = list(itertools.accumulate(e.weight for e in weighted))
        return weighted[min(bisect.bisect_right(cumulative, random.random() * cumulative[-1]), len(weighted) - 1)]


class _Starting(Exception):
    """No healthy instance to route to, but one is starting: the request waits."""


@dataclass
class _Held:
    """An InvokeEndpoint waiting for an instance to start, until its deadline."""

    path: str
    headers: dict[str, str]
    body: bytes
    done: Callable[[Response], None]
    started: float
    deadline: float


class _Call:
    """One InvokeEndpoint in flight: what to forward, where, and whom to answer."""

    __slots__ = ("api", "attempt", "deadline", "done", "entry", "model_started", "pending", "port", "request", "route",
                 "started", "upstream")

    def __init__(self, api: RuntimeApi, route: Route, entry: RouteEntry, port: int, request: bytes,
                 done: Callable[[Response], None], started: float):
        self.api = api
        self.route = route
        self.entry = entry
        self.port = port
        self.request = request
        self.done = done
        self.started = started
        self.model_started = 0.0
        self.deadline = 0.0
        self.attempt = 0
        self.pending = True  # until answered, by the container or by the timeout
        self.upstream: _Upstream | None = None


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to a container, one request at a time, callback-driven."""

    def __init__(self, pool: UpstreamPool, port: int):
        self.pool = pool
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.call: _Call | None = None
        self.head: tuple[int, dict[str, str], int] | None = None
        self.closed = False
        self.used = False
        self.reused = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tcp_transport(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        call, self.call = self.call, None
        if call is None:
            return
        if self.head is not None and self.head[2] < 0:  # a body delimited by the connection closing
            status, headers, _ = self.head
            call.api._complete(call, status, headers, bytes(self.buffer))
        else:
            call.api._upstream_failed(call, self.reused and self.head is None and not self.buffer)

    def send(self, call: _Call) -> None:
        assert self.transport is not None
        # A connection that served before and breaks before answering is retried once (it was idle-closed).
        self.reused = self.used
        self.call = call
        call.upstream = self
        self.head = None
        self.buffer.clear()
        self.used = True
        self.transport.write(call.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            version, code = [*lines[0].split(" ", 2), ""][:2]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            connection = headers.get("connection", "").lower()
            self.keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            try:
                status = int(code)
                if status in (204, 304):  # no body whatever the headers say
                    length = 0
                else:
                    length = int(headers["content-length"]) if "content-length" in headers else -1
            except ValueError:
                self._garbled()
                return
            if length < 0:  # delimited by the container closing the connection
                self.keep_alive = False
            self.head = (status, headers, length)
        status, headers, length = self.head
        if length >= 0 and len(self.buffer) >= length and self.call is not None:
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
            call, self.call = self.call, None
            self.pool.release(self)
            call.api._complete(call, status, headers, body)

    def _garbled(self) -> None:
        call = self.call
        self.close()
        if call is not None:
            call.api._unreachable(call, ValueError("the container answered with a malformed HTTP response"))

    def close(self) -> None:
        self.closed = True
        self.call = None
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Idle keep-alive connections per container port."""

    def __init__(self) -> None:
        self.idle: dict[int, list[_Upstream]] = {}

    def take(self, port: int) -> _Upstream | None:
        idle = self.idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def connect(self, port: int) -> _Upstream:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _Upstream(self, port), "127.0.0.1", port)
        return protocol

    def release(self, conn: _Upstream) -> None:
        if conn.closed or not conn.keep_alive:
            conn.close()
            return
        self.idle.setdefault(conn.port, []).append(conn)

    def drop_ports(self, live: set[int]) -> None:
        for port in [p for p in self.idle if p not in live]:
            for conn in self.idle.pop(port):
                conn.close()


class RuntimeApi:
    """InvokeEndpoint: routing, forwarding, the real error shapes, metrics."""

    def __init__(self, *, cloudwatch: Any, container_timeout: float):
        self.cloudwatch = cloudwatch
        self.timeout = container_timeout
        self.routes: dict[tuple[str, str], Route] = {}
        self.pool = UpstreamPool()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._counter = itertools.count()
        self._connecting: set[asyncio.Task[None]] = set()
        # Calls in flight, checked against their deadlines by one periodic sweep: a timer handle per
        # request (create, push, cancel) costs more than the rest of the routing.
        self._inflight: dict[_Call, None] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_interval = min(1.0, max(0.01, container_timeout / 20))
        self._held: list[_Held] = []  # requests waiting for an instance that is starting
        header_errors("sagemaker-runtime", "InvokeEndpoint", {})  # loads botocore's model now, not on a request

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, routes: dict[tuple[str, str], Route]) -> None:
        """Swap in a new routing table (called from the reconcile thread; one assignment is atomic)."""
        self.routes = routes
        if self.loop is not None:
            live = {p for route in routes.values() for e in route.entries for p in e.ports}
            self.loop.call_soon_threadsafe(self.pool.drop_ports, live)
            if self._held:
                self.loop.call_soon_threadsafe(self._retry_held)

    def invoke(self, path: str, headers: dict[str, str], body: bytes, done: Callable[[Response], None],
               held: _Held | None = None) -> None:
        """Answer ``POST /endpoints/{name}/invocations`` through ``done`` (called exactly once)."""
        started = time.perf_counter() if held is None else held.started
        try:
            route, entry = self._route(path, headers, body)
        except _Starting:
            if held is None:
                held = _Held(path, headers, body, done, started, started + self.timeout)
            self._held.append(held)
            self._arm_sweeper()
            return
        except ServiceError as err:
            done(_error(err))
            return
        except Exception:  # a bug here must still answer in the service's shape, not reset the connection
            log.exception("InvokeEndpoint failed inside the local cloud")
            done(_error(ServiceError("InternalFailure", "An internal error occurred.", 500)))
            return
        port = entry.ports[next(self._counter) % len(entry.ports)] if len(entry.ports) > 1 else entry.ports[0]
        head = ["POST /invocations HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        head += [f"{wire}: {headers[key]}" for key, wire in _PASS_HEADERS if key in headers]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        call = _Call(self, route, entry, port, request, done, started)
        call.model_started = now = time.perf_counter()
        call.deadline = now + self.timeout
        self._inflight[call] = None
        self._arm_sweeper()
        self._send(call)

    def _arm_sweeper(self) -> None:
        if self._sweeper is None:
            assert self.loop is not None
            self._sweeper = self.loop.call_later(self._sweep_interval, self._sweep)

    def _retry_held(self) -> None:
        """The routes changed: the requests waiting for an instance try again (in their order)."""
        held, self._held = self._held, []
        for request in held:
            self.invoke(request.path, request.headers, request.body, request.done, request)

    def _sweep(self) -> None:
        """Time out the calls past their deadline (so a timeout fires up to one sweep interval late), and
        the requests that waited for an instance for as long."""
        now = time.perf_counter()
        for call in [c for c in self._inflight if c.deadline <= now]:
            self._timed_out(call)
        expired = [h for h in self._held if h.deadline <= now]
        if expired:
            self._held = [h for h in self._held if h.deadline > now]
            for request in expired:
                request.done(_error(ServiceError("ModelNotReadyException", NOT_READY.format(
                    name=unquote(request.path.split("/")[2]), what="any variant"), 429)))
        self._sweeper = None
        if (self._inflight or self._held) and self.loop is not None:
            self._sweeper = self.loop.call_later(self._sweep_interval, self._sweep)

    def _route(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Route, RouteEntry]:
        parts = path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[3] != "invocations":
            raise ServiceError("UnknownOperationException", f"No operation at POST {path}.", 404)
        name = unquote(parts[2])
        # The parameters in headers are checked against botocore's model first (CustomAttributes and
        # ContentType at most 1024 ASCII characters, InferenceId 1-64 printable ones, ...), as the service does.
        invalid = header_errors("sagemaker-runtime", "InvokeEndpoint", headers)
        if invalid is not None:
            raise ServiceError("ValidationError", invalid)
        route = self.routes.get((region_of(headers), name.lower()))
        if route is None:
            invalid = header_errors("sagemaker-runtime", "InvokeEndpoint", {}, {"endpointname": name})
            raise ServiceError("ValidationError", invalid or ENDPOINT_NOT_FOUND.format(name=name, account=LOCAL_ACCOUNT))
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ServiceError("ValidationError", PAYLOAD_TOO_LARGE.format(limit=MAX_PAYLOAD_BYTES))
        target = headers.get("x-amzn-sagemaker-target-variant")
        if target is not None and not any(e.variant == target for e in route.entries):
            raise ServiceError("ValidationError", VARIANT_NOT_FOUND.format(variant=target, name=route.name))
        entry = route.pick(target)
        if entry is None:
            if any(e.starting for e in route.entries if target is None or e.variant == target):
                raise _Starting()
            raise ServiceError("ModelNotReadyException",
                               NOT_READY.format(name=route.name, what=target or "any variant"), 429)
        return route, entry

    def _send(self, call: _Call) -> None:
        conn = self.pool.take(call.port)
        if conn is not None:
            conn.send(call)
            return
        task = asyncio.ensure_future(self._connect_and_send(call))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, call: _Call) -> None:
        try:
            conn = await self.pool.connect(call.port)
        except OSError as exc:
            self._unreachable(call, exc)
            return
        if call.pending:
            conn.send(call)
        else:
            self.pool.release(conn)

    def _upstream_failed(self, call: _Call, retry: bool) -> None:
        if retry and call.attempt == 0:
            call.attempt = 1
            self._send(call)
            return
        self._unreachable(call, ConnectionResetError("the container closed the connection"))

    def _unreachable(self, call: _Call, exc: Exception) -> None:
        if not self._finish(call):
            return
        self._record(call, 502)
        call.done(_error(ServiceError(
            "ModelError", f"The container of variant {call.entry.variant} is unreachable: {exc}.", 424,
            extra={"OriginalStatusCode": 502, "LogStreamArn": self._log_arn(call.route)})))

    def _timed_out(self, call: _Call) -> None:
        if not self._finish(call):
            return
        if call.upstream is not None:
            call.upstream.close()
        self._record(call, 504)
        call.done(_error(ServiceError("ModelError", MODEL_TIMEOUT, 424, extra={
            "OriginalStatusCode": 504, "LogStreamArn": self._log_arn(call.route)})))

    def _finish(self, call: _Call) -> bool:
        """Mark the call answered; False when it already was (by the timeout)."""
        if not call.pending:
            return False
        call.pending = False
        del self._inflight[call]
        return True

    def _complete(self, call: _Call, status: int, headers: dict[str, str], body: bytes) -> None:
        if not self._finish(call):
            return
        self._record(call, status)
        if status >= 400:
            message = body.decode("utf-8", errors="replace")
            call.done(_error(ServiceError("ModelError", MODEL_ERROR.format(
                side="client" if status < 500 else "server", status=status, message=message, account=LOCAL_ACCOUNT,
                log_url=f"/aws/sagemaker/Endpoints/{call.route.name}"), 424,
                extra={"OriginalStatusCode": status, "OriginalMessage": message,
                       "LogStreamArn": self._log_arn(call.route)})))
            return
        out = [("Content-Type", headers.get("content-type", "application/octet-stream")),
               ("x-Amzn-Invoked-Production-Variant", call.entry.variant), ("x-amzn-RequestId", request_id())]
        if "x-amzn-sagemaker-custom-attributes" in headers:
            out.append(("X-Amzn-SageMaker-Custom-Attributes", headers["x-amzn-sagemaker-custom-attributes"]))
        call.done((200, out, body))

    def _record(self, call: _Call, status: int) -> None:
        now = time.perf_counter()
        model_us = int((now - call.model_started) * 1e6)
        total_us = int((now - call.started) * 1e6)
        with contextlib.suppress(Exception):  # metrics never fail a request
            self.cloudwatch.record(call.route.region, call.route.name, call.entry.variant, status_code=status,
                                   model_latency_us=model_us, overhead_latency_us=max(0, total_us - model_us))

    @staticmethod
    def _log_arn(route: Route) -> str:
        return f"arn:aws:logs:{route.region}:{LOCAL_ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{route.name}"


def _error(err: ServiceError) -> Response:
    return RUNTIME_JSON.error(err)


def routes_json(routes: Sequence[Route]) -> str:
    """Debug view of the routing table."""
    return json.dumps([{"name": r.name, "region": r.region,
                        "entries": [e.__dict__ for e in r.entries]} for r in routes])
