"""Benchmark: how often the judgment is wrong, on this machine, with real containers.

    .venv/bin/python -m bench.judge [--trials 100] [--power-trials 20] [--bake 10] [--busy 1]

Builds iris in a temp repository, starts the local cloud in a temp dir, and makes endpoints with two
variants (``primary``, ``candidate``) of the same image, the candidate's container told by an
environment variable to misbehave. Each trial mirrors requests to both variants for a bake (more
bakes while inconclusive, up to the policy's ``max_rounds``) and judges them with the default policy
(``pipelines/policy.yaml``: 95% confidence, p95 +10%, errors +0.5 pp, agreement >= 99%):

- **A/A**: the candidate is the reference release itself: every fail is a false alarm (goal <= 1%);
- **power**: a candidate with p95 about x1.5 (a sleep of half the reference's p95 per request), one
  answering 2% of requests with a 500, one whose labels differ on 5% of inputs: each should fail in
  >= 95% of trials.

``--busy N`` runs N processes spinning on the CPU meanwhile (a shared CI agent). Overhead: the
judgment's own computation after a bake is timed and printed against the bake.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Appended to iris's inference code: misbehave as BENCH_FAULT says (kind:value), read per request.
FAULTS = '''

_bench_output_fn = output_fn


def output_fn(prediction, accept):  # noqa: F811 - bench.judge: a candidate that misbehaves on purpose
    import random
    import time
    import zlib
    kind, _, value = os.environ.get("BENCH_FAULT", "none:0").partition(":")
    if kind == "slow":
        time.sleep(float(value) / 1000)
    elif kind == "error" and random.random() < float(value):
        raise RuntimeError("bench.judge: an error on purpose")
    elif kind == "flip":
        probabilities = prediction["probabilities"]
        if zlib.crc32(probabilities.tobytes()) % 1000 < float(value) * 1000:
            prediction = dict(prediction, probabilities=probabilities[:, ::-1].copy())
    return _bench_output_fn(prediction, accept)
'''


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="A/A judgments")
    parser.add_argument("--power-trials", type=int, default=20, help="judgments of each regression")
    parser.add_argument("--bake", type=float, default=10.0, help="seconds of one bake (the demo's prod: 10)")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU meanwhile")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from modelops import localcloud
    from modelops.build import BuildRequest, build
    from modelops.runtime import Runtime
    from tests.helpers import commit_all, init_repo

    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for h in hogs:
        h.start()
    with tempfile.TemporaryDirectory(prefix="modelops-bench-judge-") as tmp:
        root = Path(tmp)
        environ = {**os.environ, "MODELOPS_DATA_DIR": str(root / "data"),
                   "MODELOPS_LOCAL_DATA_DIR": str(root / "localcloud")}
        repo = init_repo(root / "repo", copy_examples=True)
        code = repo / "models" / "iris" / "code" / "inference.py"
        code.write_text(code.read_text() + FAULTS)
        commit_all(repo, "bench: a candidate that misbehaves on request")
        runtime = Runtime(cwd=repo, data_dir=root / "data", environ=environ)
        try:
            built = build(BuildRequest("models/iris", environment="dev", ref="HEAD"), runtime)
            image = next(i for i in built.images if i.region == "us-east-1")
            bench = _Bench(repo, runtime, image.image_uri, image.model_data_url, args.bake)
            print(f"bake {args.bake:g} s, busy processes {args.busy}, 2 variants of {built.release}", file=sys.stderr)
            aa = bench.trials("aa", "none:0", args.trials)
            p95 = aa["p95"]
            rows = [("A/A (same release)", aa, "fail")]
            for name, fault in ((f"p95 x1.5 (+{p95 / 2:.2f} ms a request)", f"slow:{p95 / 2:.3f}"),
                                ("2% 5xx", "error:0.02"), ("5% of labels differ", "flip:0.05")):
                rows.append((name, bench.trials(fault.split(":")[0], fault, args.power_trials), "fail"))
            print(f"\n{'candidate':<36} {'trials':>6} {'fail':>5} {'pass':>5} {'incon.':>6} {'rate':>7}  "
                  f"{'bakes/trial':>11}")
            for name, r, _ in rows:
                c = r["outcomes"]
                n = sum(c.values())
                print(f"{name:<36} {n:>6} {c['fail']:>5} {c['pass']:>5} {c['inconclusive']:>6} "
                      f"{c['fail'] / n:>7.1%}  {r['bakes'] / n:>11.2f}")
            spent = [t for _, r, _ in rows for t in r["judge_seconds"]]
            print(f"\njudgment computation after a bake: mean {sum(spent) / len(spent) * 1000:.0f} ms, "
                  f"max {max(spent) * 1000:.0f} ms = {max(spent) / args.bake:.1%} of a {args.bake:g} s bake")
        finally:
            localcloud.stop(root / "localcloud")
            for h in hogs:
                h.terminate()


class _Bench:
    def __init__(self, repo: Path, runtime: Any, image: str, data: str | None, bake: float):
        import boto3  # noqa: F401  (the clients below)

        from modelops.clients import clients_for
        from modelops.config import Workspace, load_environments, load_model, load_policy
        from modelops.config.cases import load_cases, load_replay
        from modelops.deploy.judged import mirror_inputs

        ws = Workspace.discover(repo)
        env = load_environments(ws).get("dev")
        self.model = load_model(ws, "models/iris")
        self.clients = clients_for(env, runtime)
        self.sm = self.clients.client("sagemaker", "us-east-1")
        self.rt = self.clients.client("sagemaker-runtime", "us-east-1")
        self.image, self.data, self.bake, self.runtime = image, data, bake, runtime
        self.inputs = mirror_inputs(load_cases(ws, self.model).cases, load_replay(ws, self.model))
        from modelops.verify.judge import judgment_policy

        self.policy = judgment_policy(load_policy(ws).judgment, "prod", expect_change=self.model.answers.expect_change)

    def _model(self, name: str, fault: str) -> None:
        container: dict[str, Any] = {"Image": self.image, "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py", "BENCH_FAULT": fault}}
        if self.data:
            container["ModelDataUrl"] = self.data
        self.sm.create_model(ModelName=name, PrimaryContainer=container,
                             ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")

    def _endpoint(self, name: str, fault: str) -> None:
        self._model(f"{name}-ref", "none:0")
        self._model(f"{name}-cand", fault)
        variants = [{"VariantName": v, "ModelName": f"{name}-{m}", "InitialInstanceCount": 1,
                     "InstanceType": "ml.m5.large", "InitialVariantWeight": 0.5}
                    for v, m in (("primary", "ref"), ("candidate", "cand"))]
        self.sm.create_endpoint_config(EndpointConfigName=f"{name}-ec", ProductionVariants=variants)
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-ec")
        while self.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
            time.sleep(0.5)

    def trials(self, name: str, fault: str, count: int) -> dict[str, Any]:
        from modelops.verify.answers import compare
        from modelops.verify.judge import Outcome, judge
        from modelops.verify.mirror import Mirror, MirrorTarget

        endpoint = f"bench-{name}"
        self._endpoint(endpoint, fault)
        rules = self.model.answers
        target = MirrorTarget(self.rt, endpoint, "primary", "candidate", endpoint)
        outcomes: Counter[str] = Counter()
        bakes, spent, p95s = 0, [], []
        for i in range(count):
            mirror = Mirror(target, self.inputs, lambda a, b, ct: compare(a, b, ct, rules), self.runtime.clock)
            try:
                for bake in range(1, self.policy.max_rounds + 1):
                    time.sleep(self.bake)
                    bakes += 1
                    start = time.perf_counter()
                    j = judge(mirror.rounds(), self.policy, reference="ref", candidate=name,
                              final=bake == self.policy.max_rounds)
                    spent.append(time.perf_counter() - start)
                    if j.outcome != Outcome.INCONCLUSIVE:
                        break
            finally:
                mirror.stop()
            outcomes[j.outcome.value] += 1
            latency = next((v for v in j.verdicts if v.metric.startswith("latency")), None)
            if latency is not None and latency.reference is not None:
                p95s.append(latency.reference)
            if j.outcome.value != ("pass" if fault == "none:0" else "fail"):
                print(f"  {name} trial {i + 1}: {j.summary()}", file=sys.stderr)
        print(f"{name}: {dict(outcomes)}", file=sys.stderr)
        self.sm.delete_endpoint(EndpointName=endpoint)
        p95s.sort()
        return {"outcomes": outcomes, "bakes": bakes, "judge_seconds": spent,
                "p95": p95s[len(p95s) // 2] if p95s else 5.0}


if __name__ == "__main__":
    main()
