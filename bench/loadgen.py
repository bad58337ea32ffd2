"""Benchmark: is modelops' load generator the bottleneck?

    .venv/bin/python -m bench.loadgen [--users 16] [--seconds 8]

Starts a local cloud in a temp dir with a trivial (echo) model behind an endpoint, then, in this
same run, drives that endpoint with the same number of concurrent clients for the same time:

- modelops' locust run (``modelops.verify.load.run_load``: child process, gevent users that sign
  with botocore's SigV4 and send with geventhttpclient) -- what ``modelops test`` uses;
- the same run with a boto3 ``sagemaker-runtime`` client per locust user (``client="boto3"``);
- a plain concurrent client: one thread per user, each with a keep-alive ``http.client``
  connection, signing every request with botocore's SigV4 (the baseline).

Prints requests per second of each and the ratio locust / plain. A ratio near (or above) 1 means
the endpoint, not the generator, limits the figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.localcloud import ECHO  # the same echo model (inference toolkit contract)

REGION = "us-east-1"
ENDPOINT = "bench-echo"
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'


def start_endpoint(data_dir: Path) -> str:
    """A local cloud with the echo model served at ENDPOINT; returns the cloud's URL."""
    import boto3

    from modelops.localcloud import add_image, ensure_running

    info = ensure_running(data_dir)
    code = data_dir.parent / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "inference.py").write_text(ECHO)
    uri = "000000000000.dkr.ecr.us-east-1.amazonaws.com/bench-echo:1"
    add_image(data_dir, digest="sha256:" + "ab" * 32, image_uris=[uri], code_dir=code, requirements=None,
              contract="inference-toolkit", environment={"SAGEMAKER_PROGRAM": "inference.py"})
    sm = boto3.session.Session().client("sagemaker", region_name=REGION, endpoint_url=info.url,
                                        aws_access_key_id="bench", aws_secret_access_key="bench")
    sm.create_model(ModelName="bench-m", PrimaryContainer={"Image": uri},
                    ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
    sm.create_endpoint_config(EndpointConfigName="bench-c", ProductionVariants=[{
        "VariantName": "primary", "ModelName": "bench-m", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="bench-c")
    deadline = time.monotonic() + 120
    while sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
        if time.monotonic() > deadline:
            raise SystemExit("the bench endpoint did not come up")
        time.sleep(0.2)
    return info.url


def locust_rps(url: str, users: int, seconds: float, client: str) -> float:
    from modelops.config.cases import Case, CaseRequest, Expectation
    from modelops.runtime import Runtime
    from modelops.verify.load import LoadPlan, Target, run_load

    runtime = Runtime(cwd=Path.cwd(), data_dir=Path(tempfile.gettempdir()), environ=dict(os.environ))
    stats = run_load(Target(url, REGION, ENDPOINT, "bench", "bench"),
                     LoadPlan(users=users, spawn_rate=users * 10, duration_seconds=seconds, client=client),
                     (Case("echo", CaseRequest(body=BODY), Expectation()),), runtime)
    if stats.error_rate > 0:
        raise SystemExit(f"locust run had errors: {dict(stats.errors)}")
    return stats.rps


def plain_rps(url: str, users: int, seconds: float) -> float:
    """One thread per user, keep-alive http.client, SigV4 per request: no framework at all."""
    import http.client
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    path = f"/endpoints/{ENDPOINT}/invocations"
    creds = Credentials("bench", "bench")
    counts = [0] * users
    errors = [0] * users
    stop = threading.Event()

    def run(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        while not stop.is_set():
            request = AWSRequest(method="POST", url=url + path, data=BODY,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
            SigV4Auth(creds, "sagemaker", REGION).add_auth(request)
            conn.request("POST", path, body=BODY, headers=dict(request.headers.items()))
            answer = conn.getresponse()
            answer.read()
            if answer.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(users)]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - start
    if sum(errors):
        raise SystemExit(f"plain client had {sum(errors)} errors")
    return sum(counts) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    from modelops.localcloud import stop

    tmp = Path(tempfile.mkdtemp(prefix="modelops-bench-loadgen-"))
    data_dir = tmp / "localcloud"
    try:
        url = start_endpoint(data_dir)
        plain_rps(url, args.users, 1.0)  # warm up the container and the connections
        plain = plain_rps(url, args.users, args.seconds)
        ours = locust_rps(url, args.users, args.seconds, "fast")
        boto = locust_rps(url, args.users, args.seconds, "boto3")
    finally:
        stop(data_dir)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"users: {args.users}, seconds per run: {args.seconds:g}, trivial echo model on the local cloud")
    print(f"plain concurrent client (threads, http.client, SigV4): {plain:8.1f} req/s  (baseline)")
    print(f"modelops locust run (SigV4 + geventhttpclient):       {ours:8.1f} req/s  ratio {ours / plain:.2f}x")
    print(f"locust with a boto3 client per user:                  {boto:8.1f} req/s  ratio {boto / plain:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
