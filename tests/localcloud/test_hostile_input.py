"""The local cloud under hostile input and slow clients, over raw TCP against a real server.

The corpus (``fuzz_corpus.py``: broken HTTP framing, and well-framed requests that attack each
protocol's decoding and each operation's validation) must get no 5xx, no hang, and only AWS-shaped
errors, whether the client keeps its side open or half-closes it after sending; slow and idle
clients are timed out, and the memory they can make the server hold is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest

from modelops.localcloud import stop
from tests.localcloud import fuzz_corpus
from tests.localcloud.fuzz_corpus import (
    Case,
    cloudwatch_cbor,
    cloudwatch_json,
    corpus,
    invoke,
    judge,
    sagemaker,
    send,
)
from tests.localcloud_fixtures import ECHO_HANDLER, LocalCloud, start_local_cloud

pytestmark = pytest.mark.slow

QUICK = {"MODELOPS_LOCAL_HEADER_TIMEOUT": "2", "MODELOPS_LOCAL_BODY_TIMEOUT": "2", "MODELOPS_LOCAL_IDLE_TIMEOUT": "2"}


def _with_echo(cloud: LocalCloud) -> LocalCloud:
    cloud.create_endpoint(fuzz_corpus.ENDPOINT, cloud.add_test_image("echo", {"inference.py": ECHO_HANDLER}))
    return cloud


@pytest.fixture(scope="module")
def quick_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A local cloud whose header, body and idle timeouts are 2 s, with the corpus's echo endpoint."""
    cloud = start_local_cloud(tmp_path_factory.mktemp("hostile") / "data", env=QUICK)
    try:
        yield _with_echo(cloud)
    finally:
        stop(cloud.data_dir)


def _port(cloud: LocalCloud) -> int:
    return int(cloud.url.rsplit(":", 1)[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_every_input_of_the_corpus_gets_an_aws_shaped_answer_never_a_5xx_nor_a_hang(quick_cloud: LocalCloud) -> None:
    cases = corpus()
    results = fuzz_corpus.run(_port(quick_cloud), cases)

    failures = [f"{o.case.name}{' (half-closed)' if o.half_close else ''}: {'; '.join(p)}" for o, p in results if p]
    assert failures == [], "\n".join(failures[:40])
    assert len(results) == 2 * len(cases) and len(cases) > 800
    answered = [status for outcome, _ in results for status, _, _ in outcome.answers]
    assert max(answered) < 500 and answered.count(200) > 20  # valid requests among them were served
    # ... and the server still serves every protocol.
    sm = quick_cloud.client("sagemaker")
    assert fuzz_corpus.ENDPOINT in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    runtime = quick_cloud.client("sagemaker-runtime")
    assert runtime.invoke_endpoint(EndpointName=fuzz_corpus.ENDPOINT, Body=b'"still here"')["Body"].read() == \
        b'"still here"'
    assert quick_cloud.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize(("name", "raw"), [
    ("SageMaker (json 1.1)", sagemaker("ListModels", b"{}")),
    ("CloudWatch (json 1.0)", cloudwatch_json("DescribeAlarms", b"{}")),
    ("CloudWatch (rpc-v2-cbor)", cloudwatch_cbor("DescribeAlarms", cbor2.dumps({}))),
    ("the runtime", invoke(body=b'{"half": "closed"}')),
])
def test_a_client_that_half_closes_after_its_request_gets_its_answer(quick_cloud: LocalCloud, name: str,
                                                                     raw: bytes) -> None:
    # Routes answered off the event loop (the control plane, CloudWatch) used to get nothing: the
    # transport closed itself on the client's EOF before the worker thread answered.
    outcome = send(_port(quick_cloud), Case(name, raw * 2, answers=2), half_close=True)
    assert judge(outcome) == []
    assert [status for status, _, _ in outcome.answers] == [200, 200]


def test_conflicting_content_lengths_are_refused_in_the_protocol_of_the_request(quick_cloud: LocalCloud) -> None:
    # Accepted before, and the server then waited forever for the longer body.
    raw = sagemaker("ListModels", b"{}").replace(b"Content-Length: 2", b"Content-Length: 2\r\nContent-Length: 7")
    (status, headers, body), = send(_port(quick_cloud), Case("conflict", raw), half_close=False).answers
    assert (status, headers["x-amzn-errortype"], headers["content-type"]) == (
        400, "MalformedHttpRequestException", "application/x-amz-json-1.1")
    assert json.loads(body) == {"__type": "MalformedHttpRequestException",
                                "message": "The request is not valid HTTP/1.1: duplicate Content-Length."}
    raw = cloudwatch_cbor("DescribeAlarms", b"\xa0").replace(b"Content-Length: 1", b"Content-Length: 1\r\nContent-Length: 1")
    (status, headers, body), = send(_port(quick_cloud), Case("cbor", raw), half_close=True).answers
    assert (status, headers["x-amzn-query-error"]) == (400, "MalformedHttpRequestException;Sender")
    assert cbor2.loads(body)["__type"] == "com.amazonaws.cloudwatch#MalformedHttpRequestException"


def test_unfinished_heads_and_idle_connections_are_timed_out(quick_cloud: LocalCloud) -> None:
    # 300 connections with unfinished headers used to stay open (30 s and counting).
    port = _port(quick_cloud)
    partial = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for sock in partial:
            sock.sendall(b"POST / HTTP/1.1\r\nX-Amz-Target: SageMaker.ListModels\r\nContent-Le")
        for sock in [*partial, *idle]:
            sock.settimeout(30)  # a deadline for the test, far past the server's 2 s timeouts
        for sock in partial:
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 ") and b"x-amzn-ErrorType: RequestTimeoutException" in answer
        for sock in idle:
            assert sock.recv(4096) == b""  # closed without a word, as idle keep-alive connections are
    finally:
        for sock in [*partial, *idle]:
            sock.close()


def test_connections_past_the_limit_are_told_the_service_is_unavailable(tmp_path: Path) -> None:
    cloud = start_local_cloud(tmp_path / "data", env={"MODELOPS_LOCAL_MAX_CONNECTIONS": "20"})
    held = [socket.create_connection(("127.0.0.1", _port(cloud))) for _ in range(20)]
    try:
        time.sleep(0.5)  # the server accepts them (asynchronously) before the next one comes
        outcome = send(_port(cloud), Case("one too many", sagemaker("ListModels", b"{}")), half_close=False)
        (status, headers, body), = outcome.answers
        assert (status, headers["x-amzn-errortype"]) == (503, "ServiceUnavailable")
        assert json.loads(body)["message"] == "The local cloud serves 20 connections at most; retry when one closes."
        for sock in held[:5]:
            sock.close()
        time.sleep(0.5)
        assert [a[0] for a in send(_port(cloud), Case("room", sagemaker("ListModels", b"{}")),
                                   half_close=False).answers] == [200]
    finally:
        for sock in held:
            sock.close()
        stop(cloud.data_dir)


def _trickle(port: int, declared: int, size: int, sent: list[int]) -> socket.socket:
    """A client that declares ``declared`` body bytes and sends ``size`` of them, as fast as the server reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /endpoints/{fuzz_corpus.ENDPOINT}/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 f"application/json\r\nContent-Length: {declared}\r\n\r\n".encode())
    sock.settimeout(1.0)
    chunk = b"x" * 65536
    total = 0
    while total < size:
        try:
            total += sock.send(chunk[: size - total])
        except TimeoutError:  # the server stopped reading: its budget is full
            break
        except OSError:
            break
    sent.append(total)
    return sock


def test_slow_clients_cannot_make_the_server_hold_more_than_its_budget(tmp_path: Path) -> None:
    # Four unfinished 60 MB bodies grew the server by 240 MB; forty unfinished 5 MB ones by 200 MB.
    budget_mb = 16
    cloud = _with_echo(start_local_cloud(tmp_path / "data", env={
        "MODELOPS_LOCAL_MAX_BUFFERED_MB": str(budget_mb), "MODELOPS_LOCAL_BODY_TIMEOUT": "60"}))
    port = _port(cloud)
    socks: list[socket.socket] = []
    try:
        before = _rss_mb(cloud.pid)
        # Bodies over InvokeEndpoint's 6 MB are refused as soon as their head arrives: nothing is held.
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port))
            socks.append(sock)
            sock.sendall(f"POST /endpoints/{fuzz_corpus.ENDPOINT}/invocations HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {60 * 2**20}\r\n\r\n".encode() + b"x" * 2**20)
            sock.settimeout(30)
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
        # Bodies under it, forty at once, each left unfinished: the budget stops the reading.
        sent: list[int] = []
        threads = [threading.Thread(target=lambda: socks.append(_trickle(port, 6 * 2**20, 5 * 2**20, sent)))
                   for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        grown = _rss_mb(cloud.pid) - before
        print(f"slow clients: {sum(sent) / 2**20:.0f} MB sent into {len(sent)} unfinished bodies; "
              f"server RSS grew {grown:.1f} MB (budget {budget_mb} MB)")
        assert grown < 3 * budget_mb, (grown, sum(sent))
        # The server still answers meanwhile: control-plane requests hold no body budget ...
        assert cloud.client("sagemaker").list_endpoints()["Endpoints"]
        # ... and once the slow clients go, the budget is free for InvokeEndpoint again.
        for sock in socks:
            sock.close()
        deadline = time.monotonic() + 30
        runtime = cloud.client("sagemaker-runtime")
        while True:
            try:
                assert runtime.invoke_endpoint(EndpointName=fuzz_corpus.ENDPOINT, Body=b"1")["Body"].read() == b"1"
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        for sock in socks:
            sock.close()
        stop(cloud.data_dir)
