"""Every refusal deploy (with the build and the tests it runs) can give for a config is reported by
`modelops validate` and `modelops ci pr` first.

Two parts:

- an inventory: every ``InputError`` / ``GateError`` that modelops/deploy, modelops/build,
  modelops/verify and the effective config can raise is listed below, either as a config refusal
  with the case that walks it, or with the reason it is not one (bad usage, the state of the cloud,
  the ledger or git, a failure at run time; or a value the schema refuses before any code sees it).
  A new refusal fails the inventory until it is classified;
- the walk: for each config refusal, a change to a real repository that causes it; then the code
  deploy refuses with refuses it, ``modelops validate`` reports it (the same words where deploy and
  validate share the statement), ``modelops deploy`` stops before any cloud (at its policy gate, or
  with that refusal), and ``modelops ci pr`` fails on the change, naming it.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from modelops import naming
from modelops.config import Workspace, effective, load_environments, load_model
from modelops.errors import ModelopsError
from tests.helpers import PROJECT_ROOT, commit_all, git, init_repo, run_cli

SCANNED = ("modelops/deploy", "modelops/build", "modelops/verify", "modelops/config/effective.py")

#: Config refusals: the refusal (message constant, or the expression raised) -> the cases walking it
#: (a test elsewhere where it says so).
CONFIG_REFUSALS: dict[str, tuple[str, ...]] = {
    "found[0].message": ("rollout-fleet-too-small", "rollout-timeout", "rollout-percent", "rollout-no-size"),
    "NOT_ON_CLOUD": ("environment-gap",),
    "NOT_IN_PROMOTION": ("not-in-promotion",),
    "NO_TRAFFIC_CASES": ("no-traffic-cases",),
    "NO_INPUTS": ("no-judge-inputs",),
    "cannot[0]": ("no-cases", "no-load-payloads"),
    "MISSING_FILE": ("missing-entry-point",),
    "ARTIFACT_MISMATCH": ("artifact-sha256",),
    "ARTIFACT_MISSING": ("artifact-missing",),
    "SIGNATURE_REQUIRED": ("signature-required",),
    "NO_PUBLIC_KEY": ("signature-without-key",),
    "SIGNATURE_INVALID": ("tests/test_validate_cli.py::test_prod_can_require_signed_artifacts_as_deploy_verifies_them",),
    "MODEL_DATA_CLASH": ("model-data-names",),
    "UNKNOWN_VERSION": ("dlc-version",),
    "UNKNOWN_REGION": ("dlc-region",),
    "DLC_REFUSED": ("dlc-processor",),
    # The policy gate is validate itself: any finding at the policy's fail_on severity.
    "POLICY_FAILED": ("policy-gate",),
    # Input the gate's validate cannot read (a schema refusal of a rollout limit is one).
    "f'{unreadable.location}: {unreadable.message}'": ("rollout-limits-in-schema",),
}

#: Not config refusals, and why.
OTHER_REFUSALS = {
    # bad usage of a command
    "BOTH_ENV_AND_THROUGH": "usage: --env with --through",
    "REGION_WITH_THROUGH": "usage: --region with --through",
    "BAD_ONLY": "usage: modelops test --only",
    "NO_LOAD_PROFILE": "usage: modelops test --only load on a model without a load profile",
    "UNKNOWN_BUILDER": "usage: build --builder (environments.yaml's builder is a schema enum)",
    "LOCAL_NEEDS_LOCAL_CLOUD": "usage: build --builder local for an aws environment (the schema ties "
                               "an environment's builder to its cloud)",
    "SIGN_AT_REF": "usage: build --sign-key with --ref",
    "SIGN_KEY_UNREADABLE": "usage: build --sign-key with a file that is no EC key",
    "CONTEXT_NOT_EMPTY": "usage: build --context-only into a folder holding other files",
    "BAD_KEEP": "usage: gc --keep below 1",
    "BAD_KIND": "usage: history --kind",
    "BAD_LIMIT": "usage: history --limit",
    "BAD_SINCE": "usage: history --since",
    "BAD_ACTION": "usage: rollout ACTION",
    "NO_REASON": "usage: unblock without --reason",
    "CLOUD_NOT_SUPPORTED": "usage: build --env of an environment the model does not run on (spec.clouds says so; "
                           "deploy says NOT_ON_CLOUD)",
    # the state of the cloud, the ledger, git or the identity acting
    "DIRTY_TREE": "state: uncommitted changes",
    "TESTS_MISSING": "state: the ledger has no passing tests (a model that can never have them: environment-gap)",
    "APPROVAL_MISSING": "state: no approval recorded",
    "SELF_APPROVAL": "identity: the approver wrote the commit",
    "ACCESS_DENIED": "identity: access.yaml does not let who acts do it (validate checks access.yaml itself)",
    "UNAUTHENTICATED": "identity: who acts is not authenticated where access.yaml asks for it",
    "UNKNOWN_AUTHOR": "state: this clone does not hold the commit",
    "UNKNOWN_RELEASE": "state: the ledger has no build of the release",
    "COMMIT_MISSING": "state: this clone does not hold the release's commit",
    "RELEASE_MISMATCH": "state: the commit builds another release now",
    "BUILT_UNCOMMITTED": "state: promote of a release built from uncommitted changes",
    "first.detail": "state: nothing to roll back",
    "ENDPOINT_MISSING": "state: no endpoint",
    "NO_ROLLOUT": "state: no rollout in flight to control",
    "NOT_BLOCKED": "state: unblock of a release that is not blocked",
    "NO_IMAGE": "internal: build records an image per region of the environment",
    "GENERATOR_FAILED": "run time: the model's generated_by script failed",
    "MODEL_DATA_MISMATCH": "state: a cached model data archive changed",
    "MODEL_DATA_UNEXPECTED": "state: a cached model data archive changed",
    "MODEL_DATA_MISSING": "state: a cached model data archive changed",
    "MODEL_DATA_UNREADABLE": "state: a cached model data archive changed",
    "MODEL_DATA_CODE_CHANGED": "state: a cached model data archive changed",
    # values the schema refuses before any code can (validate reports them as schema findings)
    "NO_FRAMEWORK": "schema: spec.container needs framework + framework_version or an image",
    "NO_ENTRY_POINT": "schema: the inference-toolkit contract requires entry_point",
    "UNKNOWN_FRAMEWORK": "schema: framework is an enum of the catalog's frameworks",
    "REGION_TAGS_DIFFER": "sagemaker-core's data: every DLC version has one tag in all regions "
                          "(the availability table records one identity per version)",
}


def _raised_messages() -> set[str]:
    """The first argument of every InputError/GateError made in the scanned code: a message constant
    (``NAME`` or ``NAME.format(...)``) by name, anything else as its source text."""
    found: set[str] = set()
    for base in SCANNED:
        path = PROJECT_ROOT / base
        for file in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            for node in ast.walk(ast.parse(file.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("InputError", "GateError") and node.args):
                    continue
                arg = node.args[0]
                if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format" \
                        and isinstance(arg.func.value, ast.Name):
                    found.add(arg.func.value.id)
                elif isinstance(arg, ast.Name):
                    found.add(arg.id)
                else:
                    found.add(ast.unparse(arg))
    return found


def test_every_refusal_is_classified() -> None:
    raised = _raised_messages()
    known = set(CONFIG_REFUSALS) | set(OTHER_REFUSALS)
    assert raised - known == set(), "classify these refusals (a config refusal needs a case below)"
    assert known - raised == set(), "these refusals no longer exist: remove them here"


# -- the walk -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    edits: dict[str, Callable[[str], str]]  # repo-relative file -> new text from old ("" removes it)
    rule: str  # the finding validate reports
    file: str  # where
    refusal: Callable[[Path], None]  # what deploy's own code does with the change: must raise
    words: str = ""  # in validate's message and in deploy's refusal (the shared statement)
    deploy: tuple[str, ...] = ("iris", "--env", "dev")  # the deploy command that stops before any cloud
    extra: dict[str, bytes] = field(default_factory=dict)  # files to add


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"{old!r} not in the file"
        return text.replace(old, new, 1)
    return edit


IRIS = "models/iris/model.yaml"
ENVS = "pipelines/environments.yaml"
POLICY = "pipelines/policy.yaml"


def _model(repo: Path, name: str = "iris") -> Any:
    return load_model(Workspace.discover(repo), name)


def _env(repo: Path, name: str) -> Any:
    return load_environments(Workspace.discover(repo)).get(name)


def _rollout(env: str) -> Callable[[Path], None]:
    def refuse(repo: Path) -> None:
        from modelops.deploy import specs

        config = effective(_model(repo), _env(repo, env))
        specs.validate_policy(config.rollout, environment=env, instance_count=config.resources.instance_count)
    return refuse


def _tests(repo: Path) -> None:
    from modelops.runtime import Runtime
    from modelops.verify import TestRequest, run_tests

    run_tests(TestRequest(model="iris", environment="dev"), replace(Runtime.from_environment(), cwd=repo))


def _judge_inputs(repo: Path) -> None:
    from modelops.deploy import judged

    judged.setup(_model(repo), _env(repo, "dev"), Workspace.discover(repo), None)


def _traffic(repo: Path) -> None:
    from modelops.config.cases import load_cases
    from modelops.runtime import Runtime
    from modelops.verify import send_traffic

    model = _model(repo)
    cases = load_cases(Workspace.discover(repo), model)
    rate = effective(model, _env(repo, "staging")).synthetic_traffic_rate
    assert rate is not None
    send_traffic(None, "us-east-1", naming.endpoint_name("iris", "staging"), cases, rate=rate,  # type: ignore[arg-type]
                 runtime=Runtime.from_environment())


def _gather(repo: Path) -> None:
    from modelops.build.artifacts import gather

    gather(_model(repo), Workspace.discover(repo), cache_dir=repo.parent / "gather")


def _verify_artifacts(repo: Path) -> None:
    from modelops.build import verify_artifacts

    ws = Workspace.discover(repo)
    verify_artifacts(_model(repo), ws, environment=_env(repo, "prod"))


def _dlc(instance_type: str, region: str) -> Callable[[Path], None]:
    def refuse(repo: Path) -> None:
        from modelops.build.dlc import DlcResolver

        c = _model(repo).container
        DlcResolver(None).resolve(c.framework, c.framework_version, instance_type=instance_type, region=region,
                                  py_version=c.python_version, where="dev")
    return refuse


def _context(repo: Path) -> None:
    from modelops.build.context import _code_files  # what build's render reads first

    _code_files(_model(repo), Workspace.discover(repo))


def _check_runs(repo: Path) -> None:
    from modelops.config import check_runs

    check_runs(_model(repo, "llm-chat"), _env(repo, "staging"))


def _chain(repo: Path) -> None:
    from modelops.deploy import DeployRequest
    from modelops.deploy.service import _chain

    _chain(load_environments(Workspace.discover(repo)), DeployRequest("iris", through="prod"))


#: Cases that expect errors only: nothing to send as load or synthetic traffic.
ONLY_ERRORS = """apiVersion: modelops/v1
kind: Cases
cases:
  - name: wrong-width-is-a-client-error
    request: {json: {instances: [[1.0, 2.0]]}}
    expect: {status: 424}
"""

DJL_ARTIFACT = b"# not code: an artifact that happens to be called model.py\n"
DJL_MODEL = f"""apiVersion: modelops/v1
kind: Model
metadata: {{name: djl-echo, team: t}}
spec:
  container:
    framework: djl-cpu
    framework_version: "0.29.0"
    handler: {{contract: djl-python, entry_point: code/model.py, source_dir: code}}
  artifacts:
    - path: artifacts/model.py
      sha256: {hashlib.sha256(DJL_ARTIFACT).hexdigest()}
  resources: {{instance_type: ml.m5.large, instance_count: 2}}
  security:
    execution_role: "arn:aws:iam::{{account}}:role/modelops-djl-echo-{{environment}}"
    network_isolation: true
"""


def _model_data(repo: Path) -> None:
    from modelops.build.artifacts import gather, write_model_data
    from modelops.build.context import model_data_code_names

    ws = Workspace.discover(repo)
    model = load_model(ws, "djl-echo")
    gathered = gather(model, ws, cache_dir=repo.parent / "gather")
    extras = {name: b"" for name in model_data_code_names(model, ws)}
    write_model_data(gathered, repo.parent / "model.tar.gz", extras)


CASES = [
    # A model that takes SageMaker's 50% canary in prod (the environment's is a judged canary) with one instance
    Case("rollout-fleet-too-small", {IRIS: _replace("    prod:\n      resources:\n        instance_count: 2",
                                                    "    prod:\n      rollout: {strategy: canary, step_size: "
                                                    "{type: CAPACITY_PERCENT, value: 50}}\n"
                                                    "      resources:\n        instance_count: 1")},
         "rollout.step-size", IRIS, _rollout("prod"), "the canary size 50% is 1 of the 1 instance(s)",
         deploy=("iris", "--env", "prod")),
    Case("rollout-timeout", {IRIS: _replace("  environments:\n    prod:\n",
                                            "  environments:\n    prod:\n      rollout: {strategy: canary, step_size: "
                                            "{type: CAPACITY_PERCENT, value: 50}, wait_interval_seconds: 300}\n")},
         "rollout.timeout", IRIS, _rollout("prod"), "does not exceed the 600 s the rollout waits",
         deploy=("iris", "--env", "prod")),
    Case("rollout-percent", {IRIS: _replace("  environments:\n    prod:\n",
                                            "  environments:\n    prod:\n      rollout: {strategy: canary, step_size: "
                                            "{type: CAPACITY_PERCENT, value: 75}}\n")},
         "rollout.step-size", IRIS, _rollout("prod"), "the canary size 75% is 75% of the capacity",
         deploy=("iris", "--env", "prod")),
    Case("rollout-no-size", {IRIS: _replace("  environments:\n    prod:\n",
                                            "  environments:\n    dev:\n      rollout: {strategy: linear}\n    prod:\n")},
         "config.rollout", IRIS, _rollout("dev"), "rollout.strategy linear needs a step_size"),
    Case("rollout-limits-in-schema", {IRIS: _replace("  environments:\n    prod:\n",
                                                     "  rollout: {wait_interval_seconds: 4000}\n  environments:\n    prod:\n")},
         "schema.invalid", IRIS, _rollout("dev"), "4000"),
    Case("environment-gap", {ENVS: lambda t: t.replace(
        "  prod:\n    cloud: local\n    account: \"000000000000\"", "  prod:\n    cloud: aws\n    account: \"123456789012\"")
        .replace("    builder: local\n    approval: {required: true", "    builder: codebuild\n    approval: {required: true")},
         "config.environment-gap", "models/llm-chat/model.yaml", _check_runs, "does not run on",
         deploy=("llm-chat", "--env", "prod")),
    Case("not-in-promotion", {ENVS: _replace("promotion: [dev, staging, prod]", "promotion: [dev, staging]")},
         "config.promotion", ENVS, _chain, "", deploy=("iris", "--through", "prod")),
    Case("no-cases", {IRIS: _replace("    cases: tests/cases.yaml\n", ""), "models/iris/tests/cases.yaml": lambda _: ""},
         "config.tests", IRIS, _tests, "no regression cases"),
    Case("no-load-payloads", {"models/iris/tests/cases.yaml": lambda _: ONLY_ERRORS},
         "config.tests", IRIS, _tests, "no case expecting success"),
    Case("no-traffic-cases", {IRIS: lambda t: t[:t.index("    load:\n")] + t[t.index("  environments:\n"):],
                              "models/iris/tests/cases.yaml": lambda _: ONLY_ERRORS},
         "config.tests", IRIS, _traffic, "synthetic traffic"),
    Case("no-judge-inputs", {IRIS: lambda t: (t[:t.index("    load:\n")] + t[t.index("  environments:\n"):]).replace(
                                  "    replay: tests/requests.jsonl\n", ""),
                              "models/iris/tests/cases.yaml": lambda _: ONLY_ERRORS,
                              ENVS: _replace("      strategy: all_at_once\n      wait_interval_seconds: 0\n",
                                             "      strategy: judged_canary\n      wait_interval_seconds: 5\n")},
         "config.tests", IRIS, _judge_inputs, "no case expecting success"),
    Case("missing-entry-point", {IRIS: _replace("entry_point: code/inference.py", "entry_point: code/serve.py")},
         "config.missing-path", IRIS, _context, "code/serve.py"),
    Case("artifact-sha256", {"models/iris/artifacts/model.json": lambda t: t + " "},
         "security.artifact-sha256", IRIS, _gather, "d1b75e902d14d45090d10ede85aee32af7f1ad2c54ddf4ebc17b46916ed01e35"),
    Case("artifact-missing", {"models/iris/artifacts/model.json": lambda _: ""},
         "security.artifact-missing", IRIS, _gather, "artifacts/model.json"),
    Case("signature-required", {POLICY: _replace("required_in: []", "required_in: [prod]")},
         "security.artifact-signature", IRIS, _verify_artifacts, "prod requires signed artifacts",
         deploy=("iris", "--env", "prod")),
    Case("signature-without-key", {}, "security.artifact-signature", IRIS, _verify_artifacts,
         "pipelines/artifact-signing.pub does not exist", extra={"models/iris/artifacts.sig": b"{}"}),
    Case("model-data-names", {}, "build.model-data", "models/djl-echo/model.yaml", _model_data,
         "model.py is both an artifact and a code file", deploy=("djl-echo", "--env", "dev"),
         extra={"models/djl-echo/model.yaml": DJL_MODEL.encode(), "models/djl-echo/artifacts/model.py": DJL_ARTIFACT,
                "models/djl-echo/code/model.py": b"def handle(inputs):\n    return None\n",
                "models/djl-echo/tests/cases.yaml": b"apiVersion: modelops/v1\nkind: Cases\ncases:\n"
                                                    b"  - {name: ok, request: {json: {}}}\n"}),
    Case("dlc-version", {IRIS: _replace('framework_version: "1.2-1"', 'framework_version: "1.2-9"')},
         "config.framework-version", IRIS, _dlc("ml.m5.large", "us-east-1"), "1.2-9"),
    Case("dlc-processor", {IRIS: _replace("    instance_type: ml.m5.large\n    instance_count: 1",
                                          "    instance_type: ml.g5.xlarge\n    instance_count: 1")},
         "config.dlc", IRIS, _dlc("ml.g5.xlarge", "us-east-1"), "Unsupported processor: gpu"),
    Case("dlc-region", {ENVS: _replace("  dev:\n    cloud: local\n    account: \"000000000000\"\n    regions: [us-east-1]",
                                       "  dev:\n    cloud: local\n    account: \"000000000000\"\n    regions: [mx-central-1]")},
         "config.dlc", IRIS, _dlc("ml.m5.large", "mx-central-1"), "has no Deep Learning Container in mx-central-1"),
    Case("policy-gate", {IRIS: _replace("  environments:\n    prod:\n      resources:\n",
                                        "  environments:\n    prod:\n      resources:\n        instance_type: ml.r5.large\n")},
         "security.instance-type", IRIS, lambda repo: None, "instance type ml.r5.large is not allowed in prod",
         deploy=("iris", "--env", "prod")),
]


def test_every_config_refusal_has_a_case() -> None:
    named = {case for cases in CONFIG_REFUSALS.values() for case in cases if not case.startswith("tests/")}
    assert named == {c.id for c in CASES}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_repo(tmp_path_factory.mktemp("refusals") / "repo")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_and_ci_pr_report_it_before_deploy_refuses(case: Case, pristine: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pristine, repo, symlinks=True)
    git(repo, "checkout", "-q", "-b", "change")
    for rel, edit in case.edits.items():
        path = repo / rel
        new = edit(path.read_text())
        if new:
            path.write_text(new)
        else:
            path.unlink()
    for rel, content in case.extra.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(content)
    commit_all(repo, case.id)

    # Deploy's own code refuses the change...
    if case.id != "policy-gate":
        with pytest.raises(ModelopsError) as refused:
            case.refusal(repo)
        assert case.words in refused.value.message, refused.value.message

    # ...validate reports it, at the file, in the same words...
    result = run_cli("validate", "--no-bandit", "--output", "json", cwd=repo)
    assert result.exit_code == 1, result
    found = [f for f in result.json()["findings"] if f["rule"] == case.rule and f["file"] == case.file]
    assert found, result
    assert any(case.words in f["message"] for f in found), found

    # ...deploy stops before touching any cloud (its policy gate is validate)...
    deployed = run_cli("deploy", *case.deploy, cwd=repo)
    assert deployed.exit_code in (1, 2), deployed
    assert case.words in deployed.stderr or case.id == "not-in-promotion", deployed

    # ...and the pull-request check fails on the change, naming it as new.
    pr = run_cli("ci", "pr", "--base", "main", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)
    assert pr.exit_code == 1, pr
    assert any(f["rule"] == case.rule and f["file"] == case.file for f in pr.json()["new"]), pr
