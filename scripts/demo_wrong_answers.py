"""`make demo`'s last step: a release of iris that answers about 1 input in 20 wrongly, fast and without
an error, goes through dev and staging (its regression cases and load test pass: they do not hit those
inputs) and is rolled back by prod's judged canary at its first step, with the agreement figures.

Run after the demo's good release serves prod. The release is made in a temporary clone of the
checkout (its HEAD, plus an ``output_fn`` patch committed there by a demo author), so the checkout is
never touched; it is built, approved for prod as the demo's reviewer and deployed with the same
modelops, data dir and local cloud as the rest of the demo. The rollback blocks the release in prod;
a re-run unblocks it first (as the reviewer) and shows the rollback again.

Exit 0 when prod rolled the release back at its first judged step on answer agreement and still
serves the release it served before; 1 otherwise (saying what happened instead); 2 when the demo's
good release does not serve prod yet.

    .venv/bin/python scripts/demo_wrong_answers.py [--repo PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MODEL = "iris"
FOLDER = f"models/{MODEL}"
ENV = "prod"
REVIEWER = "reviewer@example.com"  # the Makefile's DEMO_APPROVER, a release reviewer in pipelines/access.yaml
# Who wrote the wrong release (four eyes: not the reviewer); fixed dates make the commit, like the
# release (a digest of what it holds), the same on every run.
AUTHOR = {"GIT_AUTHOR_NAME": "Demo Author", "GIT_AUTHOR_EMAIL": "demo-author@example.com",
          "GIT_COMMITTER_NAME": "Demo Author", "GIT_COMMITTER_EMAIL": "demo-author@example.com",
          "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}

# Appended to models/iris/code/inference.py: swaps the class probabilities of about one input in 20
# (chosen by a hash of the numbers), so its label changes: fast, no error, wrong.
WRONG_ANSWERS = '''

_serving_output_fn = output_fn


def output_fn(prediction, accept):  # noqa: F811 - a release that answers some inputs wrongly
    import zlib
    probabilities = prediction["probabilities"]
    if probabilities.shape[0] and zlib.crc32(probabilities.tobytes()) % 20 == 0:
        prediction = dict(prediction, probabilities=probabilities[:, ::-1].copy())
    return _serving_output_fn(prediction, accept)
'''


class DemoError(Exception):
    """What the demo found instead of the expected outcome."""


def modelops(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
             capture_stderr: bool = False) -> subprocess.CompletedProcess[str]:
    """Run this modelops (the interpreter running the script); stdout is captured, stderr (progress)
    goes to the terminal unless ``capture_stderr``."""
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture_stderr else None, text=True,
                          check=False)


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **(env or {})}, check=True,
                          capture_output=True, text=True).stdout.strip()


def serving(repo: Path) -> dict[str, str]:
    """prod region -> the release it serves."""
    result = modelops("status", MODEL, "--output", "json", cwd=repo, capture_stderr=True)
    if result.returncode != 0 or not result.stdout:
        raise DemoError(f"`modelops status {MODEL}` failed: {result.stderr.strip()}")
    return {row["region"]: row.get("release") for row in json.loads(result.stdout)["endpoints"] if row["env"] == ENV}


def make_wrong_release(repo: Path, work: Path) -> Path:
    """A clone of ``repo``'s HEAD with the wrong-answers patch committed."""
    clone = work / "repo"
    git("clone", "--quiet", str(repo), str(clone), cwd=work)
    inference = clone / FOLDER / "code" / "inference.py"
    inference.write_text(inference.read_text() + WRONG_ANSWERS)
    git("commit", "--quiet", "-am", f"{MODEL}: a release that answers about 1 input in 20 wrongly (make demo)",
        cwd=clone, env=AUTHOR)
    return clone


def build(clone: Path) -> str:
    result = modelops("build", FOLDER, "--env", ENV, "--output", "json", cwd=clone)
    if result.returncode != 0:
        raise DemoError(f"the build failed (exit {result.returncode})")
    return str(json.loads(result.stdout)["release"])


def unblock_and_approve(clone: Path, release: str) -> None:
    reviewer = {"MODELOPS_USER": REVIEWER}
    unblocked = modelops("release", "unblock", release, "--env", ENV, "--reason",
                         "make demo shows the judged canary roll it back again", cwd=clone, env=reviewer,
                         capture_stderr=True)
    if unblocked.returncode == 0:
        say(f"{release}: unblocked in {ENV} by {REVIEWER} (an earlier make demo rolled it back there)")
    elif "is not blocked" not in unblocked.stderr:
        raise DemoError(f"`modelops release unblock` failed: {unblocked.stderr.strip()}")
    approved = modelops("approve", release, "--env", ENV, "--comment", "make demo: a release that answers wrongly",
                        cwd=clone, env=reviewer)
    if approved.returncode != 0:
        raise DemoError(f"the approval failed (exit {approved.returncode})")


def check_rollback(doc: Mapping[str, Any], code: int, good: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first prod region's deployment and its failed judged step, when the deploy went as the demo
    expects: rolled back at the first step on answer agreement, back on ``good``."""
    prod = [d for d in doc.get("deployments", ()) if d.get("env") == ENV]
    if code != 1 or doc.get("result") != "rolled_back" or not prod:
        raise DemoError(f"expected the deploy to roll back in {ENV} (exit 1); it ended {doc.get('result')!r} "
                        f"(exit {code}): {doc.get('message', '')}")
    first = prod[0]
    judgments = first.get("judgments") or []
    if first.get("status") != "rolled_back" or not judgments:
        raise DemoError(f"expected {ENV}/{first.get('region')} to roll back by a judgment; it is "
                        f"{first.get('status')!r}: {first.get('detail', '')}")
    step = judgments[0]
    agreement = next((v for v in step["verdicts"] if v["metric"] == "agreement"), None)
    if len(judgments) != 1 or step["outcome"] != "fail" or agreement is None or agreement["outcome"] != "fail":
        raise DemoError("expected the first judged step to fail on agreement; the steps were: "
                        + "; ".join(f"{s['percent']}% {s['outcome']}: {s['summary']}" for s in judgments))
    if first.get("serving") != good:
        raise DemoError(f"{ENV}/{first['region']} serves {first.get('serving')}, not {good}")
    return first, step


def show(release: str, good: str, first: Mapping[str, Any], step: Mapping[str, Any], after: Mapping[str, str],
         others: Sequence[Mapping[str, Any]]) -> None:
    say()
    say(f"make demo: prod's judged canary rolled {release} back in {ENV}/{first['region']} at its first step "
        f"({step['percent']}% of the traffic), as expected: it answers about 1 input in 20 wrongly, fast and "
        f"without an error, so its regression cases and load tests passed in dev and staging; only comparing its "
        f"answers with the serving release's caught it. What decided (every verdict is above):")
    for verdict in step["verdicts"]:
        if verdict["outcome"] == "fail":
            say(f"  {verdict['figures']}")
    for worst in step.get("worst", ())[:2]:
        say(f"  e.g. input {worst['request']}: {worst['detail']}")
    skipped = ", ".join(f"{d['region']} {d['status']}" for d in others)
    say(f"{ENV} still serves {good} in {', '.join(sorted(after))}" + (f" (wave 2: {skipped})" if skipped else ""))
    say(f"the rollback is the expected outcome of this step: make demo succeeds. {release} stays blocked in {ENV} "
        f"(`modelops history {MODEL} --kind block`); dev and staging serve it until the next make demo.")


def run(repo: Path) -> int:
    before = serving(repo)
    good = set(before.values())
    if not before or len(good) != 1 or None in good:
        say(f"demo_wrong_answers: {ENV} must serve one release of {MODEL} first (it serves {before or 'nothing'}); "
            f"run the demo's earlier steps (make demo)")
        return 2
    [serving_release] = good
    say(f"\n== a release that answers wrongly but fast, through dev and staging to {ENV} "
        f"(serving {serving_release}) ==")
    work = Path(tempfile.mkdtemp(prefix="modelops-demo-"))
    try:
        clone = make_wrong_release(repo, work)
        release = build(clone)
        unblock_and_approve(clone, release)
        result = modelops("deploy", FOLDER, "--through", ENV, "--output", "json", cwd=clone)
        doc = json.loads(result.stdout) if result.stdout.strip() else {}
        first, step = check_rollback(doc, result.returncode, serving_release)
        after = serving(repo)
        if set(after.values()) != {serving_release} or set(after) != set(before):
            raise DemoError(f"after the rollback {ENV} serves {after}, not {serving_release} everywhere")
        others = [d for d in doc["deployments"] if d.get("env") == ENV and d is not first]
        show(release, serving_release, first, step, after, others)
        return 0
    except DemoError as exc:
        say(f"demo_wrong_answers: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, default=None, help="the modelops checkout (default: the one around the "
                        "current directory)")
    args = parser.parse_args(argv)
    repo = args.repo or Path(git("rev-parse", "--show-toplevel", cwd=Path.cwd()))
    return run(repo.resolve())


if __name__ == "__main__":
    sys.exit(main())
