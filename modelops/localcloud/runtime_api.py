"""The runtime API (rest-json): ``POST /endpoints/{EndpointName}/invocations``, the hot path.

The reconcile loop publishes a routing table (endpoint -> weighted entries of healthy instance
ports) by swapping one dict; a request picks an entry by weight (the blue/green split included),
an instance round-robin, and forwards over a pooled keep-alive connection. Nothing here writes
SQLite or starts a thread; metrics go to CloudWatch's in-memory buffer.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from modelops.localcloud.lifecycle import LOCAL_ACCOUNT
from modelops.localcloud.protocol import Response, ServiceError, request_id

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # 6 MB, InvokeEndpoint's limit
_PASS_HEADERS = (("content-type", "Content-Type"), ("accept", "Accept"),
                 ("x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"),
                 ("x-amzn-sagemaker-inference-id", "X-Amzn-SageMaker-Inference-Id"))

ENDPOINT_NOT_FOUND = "Endpoint {name} of account {account} not found."
PAYLOAD_TOO_LARGE = "Request payload size exceeded the maximum allowed {limit} bytes."
VARIANT_NOT_FOUND = "Variant {variant} not found for endpoint {name}."
NOT_READY = "Endpoint {name} is not ready: no instance of {what} is healthy yet."
MODEL_ERROR = ("Received server error ({status}) from primary with message \"{message}\". See {log_url} in "
               "account {account} for more information.")
MODEL_TIMEOUT = "Your invocation timed out while waiting for a response from container primary."


@dataclass(frozen=True)
class RouteEntry:
    """A share of an endpoint's traffic: one variant's fleet (blue or green) and its healthy ports."""

    variant: str
    weight: float
    ports: tuple[int, ...]


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


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to a container: one request at a time."""

    def __init__(self, pool: UpstreamPool, port: int):
        self.pool = pool
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.future: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.head: tuple[int, dict[str, str], int] | None = None
        self.closed = False
        self.used = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        future = self.future
        if future is not None and not future.done():
            if self.head is not None and self.head[2] < 0:  # body delimited by the connection closing
                status, headers, _ = self.head
                future.set_result((status, headers, bytes(self.buffer)))
            else:
                future.set_exception(ConnectionResetError("the container closed the connection"))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, dict[str, str], bytes]]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.future = loop.create_future()
        self.head = None
        self.buffer.clear()
        self.used = True
        self.transport.write(data)
        return self.future

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
            length = int(headers["content-length"]) if "content-length" in headers else -1
            if length < 0:
                self.keep_alive = False
            self.head = (int(code), headers, length)
        status, headers, length = self.head
        if length >= 0 and len(self.buffer) >= length and self.future is not None and not self.future.done():
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.future.set_result((status, headers, body))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Idle keep-alive connections per container port."""

    def __init__(self) -> None:
        self.idle: dict[int, list[_Upstream]] = {}

    async def acquire(self, port: int) -> _Upstream:
        idle = self.idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _Upstream(self, port), "127.0.0.1", port)
        sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, routes: dict[tuple[str, str], Route]) -> None:
        """Swap in a new routing table (called from the reconcile thread; one assignment is atomic)."""
        self.routes = routes
        if self.loop is not None:
            live = {p for route in routes.values() for e in route.entries for p in e.ports}
            self.loop.call_soon_threadsafe(self.pool.drop_ports, live)

    async def invoke(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        from modelops.localcloud.protocol import region_of

        started = time.perf_counter()
        parts = path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[3] != "invocations":
            raise ServiceError("UnknownOperationException", f"No operation at POST {path}.", 404)
        name = unquote(parts[2])
        region = region_of(headers)
        route = self.routes.get((region, name.lower()))
        if route is None:
            raise ServiceError("ValidationError", ENDPOINT_NOT_FOUND.format(name=name, account=LOCAL_ACCOUNT))
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ServiceError("ValidationError", PAYLOAD_TOO_LARGE.format(limit=MAX_PAYLOAD_BYTES))
        target = headers.get("x-amzn-sagemaker-target-variant")
        if target is not None and not any(e.variant == target for e in route.entries):
            raise ServiceError("ValidationError", VARIANT_NOT_FOUND.format(variant=target, name=route.name))
        entry = route.pick(target)
        if entry is None:
            raise ServiceError("ModelNotReadyException",
                               NOT_READY.format(name=route.name, what=target or "any variant"), 429)
        port = entry.ports[next(self._counter) % len(entry.ports)] if len(entry.ports) > 1 else entry.ports[0]
        head = ["POST /invocations HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        head += [f"{wire}: {headers[key]}" for key, wire in _PASS_HEADERS if key in headers]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        model_started = time.perf_counter()
        try:
            status, up_headers, up_body = await self._forward(port, request)
        except TimeoutError:
            self._record(route, entry.variant, 504, model_started, started)
            raise ServiceError("ModelError", MODEL_TIMEOUT, 424,
                               extra={"OriginalStatusCode": 504, "LogStreamArn": self._log_arn(route)}) from None
        except OSError as exc:
            self._record(route, entry.variant, 502, model_started, started)
            raise ServiceError("ModelError", f"The container of variant {entry.variant} is unreachable: {exc}.",
                               424, extra={"OriginalStatusCode": 502,
                                           "LogStreamArn": self._log_arn(route)}) from None
        self._record(route, entry.variant, status, model_started, started)
        if status >= 400:
            message = up_body.decode("utf-8", errors="replace")
            raise ServiceError("ModelError", MODEL_ERROR.format(
                status=status, message=message, account=LOCAL_ACCOUNT,
                log_url=f"/aws/sagemaker/Endpoints/{route.name}"), 424,
                extra={"OriginalStatusCode": status, "OriginalMessage": message,
                       "LogStreamArn": self._log_arn(route)})
        out = [("Content-Type", up_headers.get("content-type", "application/octet-stream")),
               ("x-Amzn-Invoked-Production-Variant", entry.variant), ("x-amzn-RequestId", request_id())]
        if "x-amzn-sagemaker-custom-attributes" in up_headers:
            out.append(("X-Amzn-SageMaker-Custom-Attributes", up_headers["x-amzn-sagemaker-custom-attributes"]))
        return 200, out, up_body

    async def _forward(self, port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            conn = await self.pool.acquire(port)
            reused = conn.used
            try:
                result = await asyncio.wait_for(conn.send(request), self.timeout)
            except TimeoutError:
                conn.close()
                raise
            except ConnectionError:
                conn.close()
                # A pooled connection the container closed while idle: retry once on a fresh one.
                if reused and attempt == 0:
                    continue
                raise
            self.pool.release(conn)
            return result
        raise ConnectionResetError("unreachable")

    def _record(self, route: Route, variant: str, status: int, model_started: float, started: float) -> None:
        now = time.perf_counter()
        model_us = int((now - model_started) * 1e6)
        total_us = int((now - started) * 1e6)
        with contextlib.suppress(Exception):  # metrics never fail a request
            self.cloudwatch.record(route.region, route.name, variant, status_code=status,
                                   model_latency_us=model_us, overhead_latency_us=max(0, total_us - model_us))

    @staticmethod
    def _log_arn(route: Route) -> str:
        return (f"arn:aws:logs:{route.region}:{LOCAL_ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{route.name}")


def routes_json(routes: Sequence[Route]) -> str:
    """Debug view of the routing table."""
    return json.dumps([{"name": r.name, "region": r.region,
                        "entries": [e.__dict__ for e in r.entries]} for r in routes])
