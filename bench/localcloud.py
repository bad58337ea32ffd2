"""InvokeEndpoint through the local cloud vs. the same container's ``/invocations`` directly.

Same model, same container instance, same run, same raw keep-alive HTTP client for both paths (so the
client's own cost cancels out):

* latency: requests one at a time, direct and proxied interleaved in blocks; p50 overhead is the
  difference of the medians (goal: under 1 ms);
* throughput: CLIENTS processes, each with one keep-alive connection, for SECONDS each way; the
  ratio proxied/direct (goal: at least 70%).

Run: ``.venv/bin/python -m bench.localcloud [--requests N] [--seconds S] [--clients C]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

ECHO = '''
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return prediction
'''
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
# A SigV4-shaped header: the local cloud reads the region from it and accepts any key.
AUTH = ("AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0")


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


def _worker(port: int, path: str, seconds: float, start_at: float, queue: multiprocessing.Queue[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    _one(conn, path)  # connect before the clock starts
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        _one(conn, path)
        done += 1
    queue.put(done)


def _throughput(port: int, path: str, clients: int, seconds: float) -> float:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    start_at = time.time() + 0.5
    procs = [multiprocessing.Process(target=_worker, args=(port, path, seconds, start_at, queue)) for _ in range(clients)]
    for proc in procs:
        proc.start()
    total = sum(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.localcloud", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per path (latency)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per path (throughput)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes (throughput)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating direct/proxied throughput rounds")
    args = parser.parse_args(argv)

    import boto3

    from modelops.localcloud import add_image, ensure_running, stop

    with tempfile.TemporaryDirectory(prefix="bench-localcloud-") as tmp:
        data_dir = Path(tmp) / "cloud"
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "inference.py").write_text(ECHO)
        uri = "000000000000.dkr.ecr.us-east-1.amazonaws.com/bench-echo:1"
        add_image(data_dir, digest="sha256:" + "b" * 64, image_uris=[uri], code_dir=code, requirements=None,
                  contract="inference-toolkit", environment={"SAGEMAKER_PROGRAM": "inference.py"})
        info = ensure_running(data_dir)
        try:
            sm = boto3.client("sagemaker", endpoint_url=info.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
            sm.create_model(ModelName="bench", PrimaryContainer={"Image": uri},
                            ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
            sm.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "bench", "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1}])
            sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
            sm.get_waiter("endpoint_in_service").wait(EndpointName="bench", WaiterConfig={"Delay": 1})
            conn = http.client.HTTPConnection("127.0.0.1", info.port)
            conn.request("GET", "/_localcloud/routes")
            routes = json.loads(conn.getresponse().read())
            container_port = routes[0]["entries"][0]["ports"][0]
            direct = (container_port, "/invocations")
            proxied = (info.port, "/endpoints/bench/invocations")

            _latencies(*direct, 200)  # warm both paths
            _latencies(*proxied, 200)
            lat_direct: list[float] = []
            lat_proxied: list[float] = []
            block = 250
            for _ in range(max(1, args.requests // block)):
                lat_direct += _latencies(*direct, block)
                lat_proxied += _latencies(*proxied, block)
            # Alternating short rounds: other load on the machine hits both paths alike.
            rounds = []
            for _ in range(args.rounds):
                d = _throughput(*direct, args.clients, args.seconds / args.rounds)
                p = _throughput(*proxied, args.clients, args.seconds / args.rounds)
                rounds.append((d, p))
                print(f"  round: direct {d:.0f} req/s, through the local cloud {p:.0f} req/s ({p / d:.0%})")
            rps_direct = statistics.median(d for d, _ in rounds)
            rps_proxied = statistics.median(p for _, p in rounds)
        finally:
            stop(data_dir)

    p50_d, p50_p = statistics.median(lat_direct) * 1e3, statistics.median(lat_proxied) * 1e3
    p99_d, p99_p = _p(lat_direct, 0.99) * 1e3, _p(lat_proxied, 0.99) * 1e3
    overhead = p50_p - p50_d
    ratio = statistics.median(p / d for d, p in rounds)
    print(f"latency p50: direct {p50_d:.3f} ms, through the local cloud {p50_p:.3f} ms -> overhead {overhead:.3f} ms "
          f"(goal < 1 ms){'' if overhead < 1 else '  MISSED'}")
    print(f"latency p99: direct {p99_d:.3f} ms, through the local cloud {p99_p:.3f} ms")
    print(f"throughput ({args.clients} clients): direct {rps_direct:.0f} req/s, through the local cloud "
          f"{rps_proxied:.0f} req/s -> ratio {ratio:.0%} (goal >= 70%){'' if ratio >= 0.7 else '  MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
