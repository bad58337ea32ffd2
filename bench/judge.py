"""Benchmark: how often the judgment is wrong, on this machine, with real containers.

    .venv/bin/python -m bench.judge [--trials 100] [--power-trials 20] [--embedding-trials 20]
                                    [--bake SECONDS] [--busy N]

Builds iris (and minilm-embeddings) in a temp repository, starts the local cloud in a temp dir, and
makes endpoints with two variants (``primary``, ``candidate``) of the same image, the candidate's
container told by an environment variable to misbehave. Each trial mirrors requests to both variants
for a bake (more bakes while inconclusive, up to the policy's ``max_rounds``) and judges them with
the shipped policy (``pipelines/policy.yaml``: 95% confidence, p95 +10%, errors +0.5 pp, prod's
agreement >= 99%, an inconclusive end passes). The bake is prod's ``wait_interval_seconds`` in
``pipelines/environments.yaml`` (what ``make demo`` bakes) unless ``--bake`` says otherwise.

- **A/A**: the candidate is the reference release itself: every fail is a false alarm (goal <= 1%);
- **power**: iris with p95 about x1.5 (a sleep of half the reference's p95 per request), iris
  answering 2% of requests with a 500, iris whose labels differ on 5% of inputs, minilm whose
  embeddings are turned to cosine 0.98 of the true ones: each should fail in >= 95% of trials,
  within one bake.

``--busy N`` runs N processes spinning on the CPU meanwhile (a shared CI agent). The table counts
the trials still inconclusive after the last bake (passed by ``on_inconclusive``) apart from the
confident passes. Overhead: the judgment's own computation after a bake, against the bake.
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

# Appended to minilm's handler: embeddings turned by BENCH_FAULT's cosine (cosine:0.98) away from the
# true ones, in a fixed direction orthogonal to each, same length.
EMBEDDING_FAULTS = '''

_bench_embed = embed


def embed(model, sentences):  # noqa: F811 - bench.judge: a candidate whose embeddings drift on purpose
    import numpy as np
    result = _bench_embed(model, sentences)
    kind, _, value = os.environ.get("BENCH_FAULT", "none:0").partition(":")
    if kind != "cosine":
        return result
    c, rows = float(value), []
    for row in result["embeddings"]:
        v = np.asarray(row)
        norm = float(np.linalg.norm(v))
        r = np.random.default_rng(0).standard_normal(v.size)
        u = r - (r @ v) / (norm * norm) * v
        turned = norm * (c * v / norm + (1 - c * c) ** 0.5 * u / np.linalg.norm(u))
        rows.append([round(float(x), 6) for x in turned])
    return dict(result, embeddings=rows)
'''


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="A/A judgments of iris")
    parser.add_argument("--power-trials", type=int, default=20, help="judgments of each iris regression")
    parser.add_argument("--embedding-trials", type=int, default=20,
                        help="judgments of the minilm regression (and a quarter as many minilm A/A); 0: skip minilm")
    parser.add_argument("--bake", type=float, default=None, help="seconds of one bake (default: prod's, the demo's)")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU meanwhile")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from modelops import localcloud
    from modelops.build import BuildRequest, build
    from modelops.config import Workspace, load_environments
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
        for folder, faults in (("iris/code/inference.py", FAULTS), ("minilm-embeddings/code/model.py", EMBEDDING_FAULTS)):
            code = repo / "models" / folder
            code.write_text(code.read_text() + faults)
        commit_all(repo, "bench: candidates that misbehave on request")
        bake = args.bake or float(load_environments(Workspace.discover(repo)).get("prod").rollout.wait_interval_seconds)
        runtime = Runtime(cwd=repo, data_dir=root / "data", environ=environ)

        def bench_of(model: str) -> _Bench:
            built = build(BuildRequest(model, environment="dev", ref="HEAD"), runtime)
            image = next(i for i in built.images if i.region == "us-east-1")
            return _Bench(repo, runtime, model, image.image_uri, image.model_data_url, bake)

        try:
            iris = bench_of("models/iris")
            print(f"bake {bake:g} s, busy processes {args.busy}", file=sys.stderr)
            aa = iris.trials("aa", "none:0", args.trials)
            p95 = aa["p95"]
            rows = [("iris A/A (same release)", aa)]
            for name, fault in ((f"iris p95 x1.5 (+{p95 / 2:.2f} ms a request)", f"slow:{p95 / 2:.3f}"),
                                ("iris 2% 5xx", "error:0.02"), ("iris 5% of labels differ", "flip:0.05")):
                rows.append((name, iris.trials(fault.split(":")[0], fault, args.power_trials)))
            if args.embedding_trials:
                minilm = bench_of("models/minilm-embeddings")
                rows.append(("minilm A/A (same release)",
                             minilm.trials("mini-aa", "none:0", max(1, args.embedding_trials // 4))))
                rows.append(("minilm embeddings at cosine 0.98",
                             minilm.trials("cosine", "cosine:0.98", args.embedding_trials)))
            _table(rows, bake)
        finally:
            localcloud.stop(root / "localcloud")
            for h in hogs:
                h.terminate()


def _table(rows: list[tuple[str, dict[str, Any]]], bake: float) -> None:
    print(f"\n{'candidate':<40} {'trials':>6} {'fail':>5} {'pass':>5} {'incon.':>6} {'fail rate':>9}  "
          f"{'bakes/trial':>11}")
    for name, r in rows:
        c = r["outcomes"]
        n = sum(c.values())
        print(f"{name:<40} {n:>6} {c['fail']:>5} {c['pass']:>5} {c['inconclusive']:>6} "
              f"{c['fail'] / n:>9.1%}  {r['bakes'] / n:>11.2f}")
    print("(incon.: still inconclusive after the last bake, so passed by judgment.on_inconclusive)")
    spent = [t for _, r in rows for t in r["judge_seconds"]]
    print(f"\njudgment computation after a bake: mean {sum(spent) / len(spent) * 1000:.0f} ms, "
          f"max {max(spent) * 1000:.0f} ms = {max(spent) / bake:.1%} of a {bake:g} s bake")


class _Bench:
    def __init__(self, repo: Path, runtime: Any, model: str, image: str, data: str | None, bake: float):
        import boto3  # noqa: F401  (the clients below)

        from modelops.clients import clients_for
        from modelops.config import Workspace, load_environments, load_model, load_policy
        from modelops.config.cases import load_cases, load_replay
        from modelops.deploy.judged import mirror_inputs
        from modelops.verify.judge import judgment_policy

        ws = Workspace.discover(repo)
        env = load_environments(ws).get("dev")
        self.model = load_model(ws, model)
        self.clients = clients_for(env, runtime)
        self.sm = self.clients.client("sagemaker", "us-east-1")
        self.rt = self.clients.client("sagemaker-runtime", "us-east-1")
        self.image, self.data, self.bake, self.runtime = image, data, bake, runtime
        self.inputs = mirror_inputs(load_cases(ws, self.model).cases, load_replay(ws, self.model))
        self.policy = judgment_policy(load_policy(ws).judgment, "prod", expect_change=self.model.answers.expect_change)

    def _model(self, name: str, fault: str) -> None:
        container = self.model.container
        environment = {**container.serving.environment(), **container.env, "BENCH_FAULT": fault}
        body: dict[str, Any] = {"Image": self.image, "Environment": environment}
        if self.data:
            body["ModelDataUrl"] = self.data
        self.sm.create_model(ModelName=name, PrimaryContainer=body,
                             ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")

    def _endpoint(self, name: str, fault: str) -> None:
        self._model(f"{name}-ref", "none:0")
        self._model(f"{name}-cand", fault)
        variants = [{"VariantName": v, "ModelName": f"{name}-{m}", "InitialInstanceCount": 1,
                     "InstanceType": "ml.m5.large", "InitialVariantWeight": 0.5}
                    for v, m in (("primary", "ref"), ("candidate", "cand"))]
        self.sm.create_endpoint_config(EndpointConfigName=f"{name}-ec", ProductionVariants=variants)
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-ec")
        while (status := self.sm.describe_endpoint(EndpointName=name)["EndpointStatus"]) != "InService":
            if status == "Failed":
                raise SystemExit(f"bench endpoint {name} failed to start")
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
                for _ in range(self.policy.max_rounds):
                    time.sleep(self.bake)
                    bakes += 1
                    start = time.perf_counter()
                    rounds = mirror.rounds()
                    j = judge(rounds, self.policy, reference="ref", candidate=name, final=False)
                    spent.append(time.perf_counter() - start)
                    if j.outcome != Outcome.INCONCLUSIVE:
                        break
            finally:
                mirror.stop()
            outcomes[j.outcome.value] += 1  # inconclusive: after the last bake, settled by on_inconclusive
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
