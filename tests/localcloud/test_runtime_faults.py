"""The runtime's forwarding under container faults, against real TCP "containers" that misbehave on cue.

The end-to-end tests reach a well-behaved container only; what a broken one does to the hop (a pooled
connection closed while idle, a connection dropped mid-request, a garbled answer, no answer) is driven
here on the runtime's own event loop, asyncio's and uvloop's (the server's where installed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from modelops.localcloud.protocol import Response
from modelops.localcloud.runtime_api import MODEL_TIMEOUT, Route, RouteEntry, RuntimeApi

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run  # type: ignore[no-any-return]
    return asyncio.run


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

# What the fake container does with the n-th request (0-based) on the c-th connection (0-based).
Behaviour = Callable[[int, int, asyncio.StreamWriter], Awaitable[None]]


class Metrics:
    def __init__(self) -> None:
        self.statuses: list[int] = []

    def record(self, region: str, endpoint: str, variant: str, *, status_code: int, **_: object) -> None:
        self.statuses.append(status_code)


async def _read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return False
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return True


async def _invoke(behaviour: Behaviour, calls: int, *, timeout: float = 5.0) -> tuple[list[Response], Metrics, int]:
    """Serve ``behaviour`` on a free port, send ``calls`` InvokeEndpoints one after another."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        conn, connections = connections, connections + 1
        n = 0
        try:
            while await _read_request(reader):
                await behaviour(conn, n, writer)
                if writer.is_closing():
                    return
                n += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    metrics = Metrics()
    api = RuntimeApi(cloudwatch=metrics, container_timeout=timeout)
    api.attach(asyncio.get_running_loop())
    api.publish({("us-east-1", "e"): Route("e", "us-east-1", (RouteEntry("AllTraffic", 1.0, (port,)),))})
    answers = []
    for _ in range(calls):
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        api.invoke("/endpoints/e/invocations", {"content-type": "application/json"}, b"{}", future.set_result)
        answers.append(await asyncio.wait_for(future, 10))
    server.close()
    return answers, metrics, connections


def _error(response: Response) -> tuple[int, str, int]:
    status, _, body = response
    doc = json.loads(body)
    return status, doc["__type"], doc["OriginalStatusCode"]


def test_a_pooled_connection_the_container_closed_is_retried_once_on_a_fresh_one(run: Run) -> None:
    async def close_on_second_request(conn: int, n: int, writer: asyncio.StreamWriter) -> None:
        if n == 0:
            writer.write(OK)
        else:  # what a container's idle timeout looks like from here: the reused connection just ends
            writer.close()

    answers, metrics, connections = run(_invoke(close_on_second_request, 3))
    assert [a[0] for a in answers] == [200, 200, 200]
    assert all(("x-Amzn-Invoked-Production-Variant", "AllTraffic") in a[1] for a in answers)
    assert metrics.statuses == [200, 200, 200]
    assert connections == 3


def test_a_fresh_connection_dropped_mid_request_is_a_model_error_not_retried(run: Run) -> None:
    async def drop(conn: int, n: int, writer: asyncio.StreamWriter) -> None:
        writer.close()

    answers, metrics, connections = run(_invoke(drop, 1))
    assert _error(answers[0]) == (424, "ModelError", 502)
    assert (metrics.statuses, connections) == ([502], 1)


def test_a_garbled_answer_is_a_model_error(run: Run) -> None:
    async def garble(conn: int, n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 OK-ish\r\nContent-Length: two\r\n\r\n{}")

    answers, metrics, _ = run(_invoke(garble, 1))
    assert metrics.statuses == [502]
    assert _error(answers[0]) == (424, "ModelError", 502)


def test_a_container_that_never_answers_times_out_and_the_next_call_gets_a_new_connection(run: Run) -> None:
    async def hang_first(conn: int, n: int, writer: asyncio.StreamWriter) -> None:
        if conn == 0:
            await asyncio.sleep(30)
        writer.write(OK)

    answers, metrics, connections = run(_invoke(hang_first, 2, timeout=0.3))
    assert _error(answers[0]) == (424, "ModelError", 504)
    assert json.loads(answers[0][2])["message"] == MODEL_TIMEOUT
    assert answers[1][0] == 200
    assert (metrics.statuses, connections) == ([504, 200], 2)
