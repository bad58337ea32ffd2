"""InvokeEndpoint through the local cloud vs. the same container's ``/invocations`` directly.

Same model, same container instance, same run, same client and payload for both paths, warmed up
first, measured in alternating rounds so the load other programs put on the machine hits both alike:

* latency: one ``http.client`` keep-alive connection, requests one at a time, direct and proxied
  interleaved in blocks; p50 overhead is the difference of the medians (goal: under 1 ms);
* throughput: closed-loop load from one process holding N keep-alive connections (raw sockets and
  ``selectors``, the request bytes built once), at each concurrency of ``--clients``. A path's
  capacity is its best median over those concurrencies; the ratio is proxied capacity / direct
  capacity (goal: at least 70%). The client is deliberately light: on 2 cores a heavy client (one
  ``http.client`` process per connection costs more CPU per request than the container does)
  competes with the very processes being compared and mostly measures the scheduler;
* CPU per request of the local cloud process and of the container process (from ``/proc``, during
  the throughput rounds): the proxy hop's cost without the noise of a shared machine.

Every request sends the same SigV4-shaped ``Authorization`` (the local cloud reads the region from
it) and the same JSON body; every answer is checked (status 200, and the echo for the latency client).

Run: ``.venv/bin/python -m bench.localcloud [--requests N] [--rounds R] [--seconds S] [--clients 4,16]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import selectors
import socket
import statistics
import tempfile
import time
from pathlib import Path

ECHO = """
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return prediction
"""
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
# A SigV4-shaped header: the local cloud reads the region from it and accepts any key.
AUTH = (
    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0"
)


def _headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", "Authorization": AUTH}


def _one(conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("POST", path, BODY, _headers())
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or body != BODY:
        raise RuntimeError(f"{path}: HTTP {response.status} {body[:200]!r}")


def _latencies(port: int, path: str, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        _one(conn, path)
        out.append(time.perf_counter() - started)
    conn.close()
    return out


def _throughput(port: int, path: str, connections: int, seconds: float) -> float:
    """Requests per second from ``connections`` keep-alive connections, each one request at a time."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(BODY)}"]
    head += [f"{name}: {value}" for name, value in _headers().items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + BODY
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
        socks.append(sock)
    done = 0
    in_flight = len(socks)
    started = time.perf_counter()
    deadline = started + seconds
    for sock in socks:
        sock.send(request)
    while in_flight:
        for key, _ in selector.select(10.0):
            ready, buffer = key.fileobj, key.data
            assert isinstance(ready, socket.socket)
            chunk = ready.recv(65536)
            if not chunk:
                raise RuntimeError(f"{path}: the server closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                continue
            at = buffer.lower().find(b"content-length:", 0, end)
            length = int(buffer[at + 15 : buffer.find(b"\r\n", at)])
            if len(buffer) < end + 4 + length:
                continue
            if not buffer.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"{path}: {bytes(buffer[:200])!r}")
            del buffer[: end + 4 + length]
            done += 1
            if time.perf_counter() < deadline:
                ready.send(request)
            else:
                in_flight -= 1
    elapsed = time.perf_counter() - started
    for sock in socks:
        sock.close()
    return done / elapsed


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 where /proc is not there)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_of(pid: int) -> int | None:
    """The one child process of ``pid`` (the container of the bench's single instance), if /proc says."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children[0] if len(children) == 1 else None


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.localcloud", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per path (latency)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating direct/proxied throughput rounds")
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per path, concurrency and round")
    parser.add_argument("--clients", default="4,16", help="concurrent connections (throughput), comma-separated")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]

    import boto3

    from modelops.localcloud import add_image, ensure_running, stop

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="bench-localcloud-") as tmp:
        data_dir = Path(tmp) / "cloud"
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "inference.py").write_text(ECHO)
        uri = "000000000000.dkr.ecr.us-east-1.amazonaws.com/bench-echo:1"
        add_image(
            data_dir,
            digest="sha256:" + "b" * 64,
            image_uris=[uri],
            code_dir=code,
            requirements=None,
            contract="inference-toolkit",
            environment={"SAGEMAKER_PROGRAM": "inference.py"},
        )
        info = ensure_running(data_dir)
        try:
            sm = boto3.client(
                "sagemaker",
                endpoint_url=info.url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            sm.create_model(
                ModelName="bench",
                PrimaryContainer={"Image": uri},
                ExecutionRoleArn="arn:aws:iam::000000000000:role/bench",
            )
            sm.create_endpoint_config(
                EndpointConfigName="bench",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "bench",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                    }
                ],
            )
            sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="bench", WaiterConfig={"Delay": 1})
            conn = http.client.HTTPConnection("127.0.0.1", info.port)
            conn.request("GET", "/_localcloud/routes")
            routes = json.loads(conn.getresponse().read())
            conn.close()
            container_port = routes[0]["entries"][0]["ports"][0]
            container_pid = _child_of(info.pid)
            direct = (container_port, "/invocations")
            proxied = (info.port, "/endpoints/bench/invocations")

            _latencies(*direct, 300)  # warm both paths (pooled upstream connections, caches)
            _latencies(*proxied, 300)
            _throughput(*direct, max(levels), 0.5)
            _throughput(*proxied, max(levels), 0.5)
            lat_direct: list[float] = []
            lat_proxied: list[float] = []
            block = 250
            for _ in range(max(1, args.requests // block)):
                lat_direct += _latencies(*direct, block)
                lat_proxied += _latencies(*proxied, block)

            rps: dict[tuple[str, int], list[float]] = {}
            cpu_server = cpu_container = cpu_container_direct = 0.0
            proxied_requests = direct_requests = 0.0
            for _ in range(args.rounds):
                for level in levels:
                    container0 = _cpu_seconds(container_pid)
                    started = time.perf_counter()
                    rate = _throughput(*direct, level, args.seconds)
                    direct_requests += rate * (time.perf_counter() - started)
                    cpu_container_direct += _cpu_seconds(container_pid) - container0
                    rps.setdefault(("direct", level), []).append(rate)
                    server0, container0 = _cpu_seconds(info.pid), _cpu_seconds(container_pid)
                    started = time.perf_counter()
                    rate = _throughput(*proxied, level, args.seconds)
                    proxied_requests += rate * (time.perf_counter() - started)
                    cpu_server += _cpu_seconds(info.pid) - server0
                    cpu_container += _cpu_seconds(container_pid) - container0
                    rps.setdefault(("proxied", level), []).append(rate)
        finally:
            stop(data_dir)

    p50_d, p50_p = statistics.median(lat_direct) * 1e3, statistics.median(lat_proxied) * 1e3
    p99_d, p99_p = _p(lat_direct, 0.99) * 1e3, _p(lat_proxied, 0.99) * 1e3
    overhead = p50_p - p50_d
    print(f"latency, {len(lat_direct)} sequential requests per path:")
    print(
        f"  p50: direct {p50_d:.3f} ms, through the local cloud {p50_p:.3f} ms -> overhead {overhead:.3f} ms "
        f"(goal < 1 ms){'' if overhead < 1 else '  MISSED'}"
    )
    print(f"  p99: direct {p99_d:.3f} ms, through the local cloud {p99_p:.3f} ms")
    print(f"throughput, median of {args.rounds} alternating rounds of {args.seconds:g} s:")
    for level in levels:
        d, p = statistics.median(rps[("direct", level)]), statistics.median(rps[("proxied", level)])
        print(f"  {level:3d} connections: direct {d:6.0f} req/s, through the local cloud {p:6.0f} req/s ({p / d:.0%})")
    best_direct = max(statistics.median(rps[("direct", level)]) for level in levels)
    best_proxied = max(statistics.median(rps[("proxied", level)]) for level in levels)
    ratio = best_proxied / best_direct
    print(
        f"  capacity: direct {best_direct:.0f} req/s, through the local cloud {best_proxied:.0f} req/s -> ratio "
        f"{ratio:.0%} (goal >= 70%){'' if ratio >= 0.7 else '  MISSED'}"
    )
    if proxied_requests and direct_requests and container_pid is not None:
        print(
            f"CPU per request: through the local cloud: local cloud {cpu_server / proxied_requests * 1e6:.0f} us + "
            f"container {cpu_container / proxied_requests * 1e6:.0f} us; direct: container "
            f"{cpu_container_direct / direct_requests * 1e6:.0f} us"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
