"""Broken variants of each example model (and of the pipelines) fail with the right rule at the
right line, through the real CLI, in a real git repository holding the examples."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import init_repo, run_cli

AWS_KEY = "AKIAQ7EXAMPLE1234567"  # shaped like an access key id; not a real one


@dataclass(frozen=True)
class Variant:
    id: str
    file: str
    old: str
    new: str
    rule: str
    message: str  # a fragment the message must hold
    marker: str | None = None  # the text on the expected line (default: the first line of `new`)
    anchor: str | None = None  # look for the marker after this text
    status: int = 1


VARIANTS = [
    # iris (scikit-learn, inference toolkit)
    Variant("iris-unknown-key", "models/iris/model.yaml", "    instance_type: ml.m5.large", "    instance_typ: ml.m5.large",
            "schema.unknown-key", "did you mean 'instance_type'"),
    Variant("iris-instance-typo", "models/iris/model.yaml", "instance_type: ml.m5.large", "instance_type: ml.m5.larg",
            "capacity.unknown-instance-type", "did you mean 'ml.m5.large'"),
    Variant("iris-bad-contract", "models/iris/model.yaml", "contract: inference-toolkit", "contract: inference-tolkit",
            "schema.invalid", "did you mean 'inference-toolkit'"),
    Variant("iris-secret", "models/iris/model.yaml", 'SAGEMAKER_CONTAINER_LOG_LEVEL: "20"',
            f'AWS_ACCESS_KEY_ID: "{AWS_KEY}"', "security.secret-in-env", "AWS access key id"),
    Variant("iris-password", "models/iris/model.yaml", 'SAGEMAKER_CONTAINER_LOG_LEVEL: "20"',
            'DB_PASSWORD: "hunter2-correct-horse"', "security.secret-in-env", "password or token"),
    Variant("iris-sha-mismatch", "models/iris/model.yaml",
            "sha256: d1b75e902d14d45090d10ede85aee32af7f1ad2c54ddf4ebc17b46916ed01e35",
            "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "security.artifact-sha256", "not the pinned"),
    Variant("iris-path-escape", "models/iris/model.yaml", "entry_point: code/inference.py",
            "entry_point: ../minilm-embeddings/code/model.py", "security.path-escape", "leaves the model folder"),
    Variant("iris-no-isolation", "models/iris/model.yaml", "network_isolation: true", "network_isolation: false",
            "security.network-isolation", "requires it"),
    Variant("iris-gpu-in-dev", "models/iris/model.yaml", "instance_type: ml.m5.large", "instance_type: ml.p3.2xlarge",
            "security.instance-type", "not allowed in dev"),
    Variant("iris-latest-image", "models/iris/model.yaml", 'framework: sklearn\n    framework_version: "1.2-1"',
            "image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:latest",
            "security.image-unpinned", "its tag is latest"),
    Variant("iris-foreign-image", "models/iris/model.yaml", 'framework: sklearn\n    framework_version: "1.2-1"',
            "image: docker.io/someone/sklearn:1.0", "security.image-registry", "not an AWS Deep Learning Container"),
    Variant("iris-wrong-role-account", "models/iris/model.yaml", "arn:aws:iam::{account}:role/modelops-iris-{environment}",
            "arn:aws:iam::123456789012:role/modelops-iris", "security.execution-role", "not dev's account"),
    Variant("iris-admin-role", "models/iris/model.yaml", "arn:aws:iam::{account}:role/modelops-iris-{environment}",
            "arn:aws:iam::{account}:role/AdministratorAccess", "security.execution-role", "not scoped"),
    Variant("iris-autoscaling", "models/iris/model.yaml", "      min_instances: 1\n      max_instances: 4",
            "      min_instances: 5\n      max_instances: 4", "config.autoscaling", "more than max_instances",
            marker="autoscaling:"),
    Variant("iris-unknown-env", "models/iris/model.yaml", "  environments:\n    prod:", "  environments:\n    prdo:",
            "config.unknown-environment", "did you mean 'prod'", marker="    prdo:"),
    Variant("iris-missing-cases", "models/iris/model.yaml", "cases: tests/cases.yaml", "cases: tests/missing.yaml",
            "config.missing-path", "does not exist"),
    Variant("iris-duplicate-key", "models/iris/model.yaml", "  team: ml-platform", "  team: ml-platform\n  team: other",
            "yaml.duplicate-key", "duplicate key 'team'", marker="  team: other"),
    # minilm-embeddings (DJL Python handler on CPU)
    Variant("minilm-framework-version", "models/minilm-embeddings/model.yaml", 'framework_version: "0.29.0"',
            'framework_version: "0.29.9"', "config.framework-version", "not a known DLC version"),
    Variant("minilm-contract", "models/minilm-embeddings/model.yaml", "framework: djl-cpu", "framework: pytorch",
            "config.handler", "needs a DJL container", marker="contract: djl-python"),
    Variant("minilm-too-small", "models/minilm-embeddings/model.yaml", "parameters: 22713728",
            "parameters: 3000000000", "capacity.memory", "of memory of ml.c5.xlarge",
            marker="instance_type: ml.c5.xlarge"),
    Variant("minilm-bandit", "models/minilm-embeddings/code/model.py", "    body = inputs.get_as_json()",
            "    body = eval(inputs.get_as_string())", "security.bandit", "B307"),
    # llm-chat (DJL LMI, vLLM, TP 4, AWQ, aws only)
    Variant("llm-tp3", "models/llm-chat/model.yaml", "tensor_parallel_degree: 4", "tensor_parallel_degree: 3",
            "capacity.tensor-parallel", "does not divide the 4 GPUs of ml.g5.12xlarge"),
    Variant("llm-tp8", "models/llm-chat/model.yaml", "tensor_parallel_degree: 4", "tensor_parallel_degree: 8",
            "capacity.tensor-parallel", "more than the 4 GPUs"),
    Variant("llm-fp16-too-big", "models/llm-chat/model.yaml", "      quantize: awq\n", "",
            "capacity.gpu-memory", "131.4 GiB (70.6e9 parameters x 2 bytes, fp16)",
            marker="instance_type: ml.g5.12xlarge"),
    Variant("llm-cpu", "models/llm-chat/model.yaml", "instance_type: ml.g5.12xlarge", "instance_type: ml.c5.xlarge",
            "capacity.gpu-required", "needs GPUs"),
    Variant("llm-bucket", "models/llm-chat/model.yaml",
            "- uri: s3://modelops-model-artifacts/llm/llama-3-1-70b-instruct-awq/model-00001",
            "- uri: s3://someones-bucket/llm/llama-3-1-70b-instruct-awq/model-00001",
            "security.artifact-location", "outside the allowed locations"),
    Variant("llm-bad-quantize", "models/llm-chat/model.yaml", "quantize: awq", "quantize: awk",
            "schema.invalid", "did you mean 'awq'"),
    # pipelines
    Variant("env-wave-missing", "pipelines/environments.yaml", "      - [eu-west-1, ap-southeast-2]",
            "      - [eu-west-1]", "config.waves", "region 'ap-southeast-2' is in no wave",
            marker="regions: [us-east-1, eu-west-1, ap-southeast-2]"),
    # prod (a judged canary) switched to SageMaker's canary with a size SageMaker refuses
    Variant("env-canary-too-big", "pipelines/environments.yaml", "strategy: judged_canary\n      steps: [10, 50, 100]",
            "strategy: canary\n      step_size: {type: CAPACITY_PERCENT, value: 60}", "rollout.step-size",
            "the canary size 60% is 60% of the capacity; SageMaker allows at most 50%",
            marker="step_size: {type: CAPACITY_PERCENT, value: 60}"),
    Variant("env-timeout", "pipelines/environments.yaml", "      wait_interval_seconds: 10\n      termination_wait_seconds: 0",
            "      wait_interval_seconds: 600\n      termination_wait_seconds: 0", "rollout.timeout",
            "does not exceed the 600 s the rollout waits (a bake of 600 s", marker="max_execution_timeout_seconds: 600",
            anchor="  prod:"),
    Variant("env-judged-steps", "pipelines/environments.yaml", "steps: [10, 50, 100]", "steps: [10, 50]",
            "rollout.limits", "rollout.steps [10, 50] must rise and end at 100"),
    Variant("policy-unknown-rule", "pipelines/policy.yaml", "security.image-digest: {severity: info}",
            "security.image-digests: {severity: info}", "policy.unknown-rule", "did you mean 'security.image-digest'",
            status=0),  # a warning: reported, but the policy fails on errors only
]


def _line_of(text: str, marker: str, anchor: str | None = None) -> int:
    index = text.index(marker, text.index(anchor) if anchor else 0)
    return text.count("\n", 0, index) + 1


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_repo(tmp_path_factory.mktemp("pristine") / "repo")


def _copy(pristine: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(pristine, dest, symlinks=True)
    return dest


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_broken_variant_fails_with_the_right_rule_at_the_right_line(variant: Variant, pristine: Path,
                                                                     tmp_path: Path) -> None:
    repo = _copy(pristine, tmp_path / "repo")
    path = repo / variant.file
    original = path.read_text()
    assert variant.old in original, f"the example changed: {variant.old!r} is not in {variant.file}"
    broken = original.replace(variant.old, variant.new, 1)
    path.write_text(broken)

    result = run_cli("validate", "--output", "json", cwd=repo)

    assert result.exit_code == variant.status, result
    findings = result.json()["findings"]
    matching = [f for f in findings if f["rule"] == variant.rule]
    assert matching, f"no {variant.rule} finding in {findings}"
    marker = variant.marker or (variant.new.splitlines()[0] if variant.new else variant.old.splitlines()[0])
    source = broken if marker.strip() in broken else original
    expected_line = _line_of(source, marker.strip(), variant.anchor)
    at_line = [f for f in matching if f["file"] == variant.file and f["line"] == expected_line]
    assert at_line, f"{variant.rule} not at {variant.file}:{expected_line}: {matching}"
    assert any(variant.message in f["message"] for f in at_line), at_line
    assert AWS_KEY not in result.stdout + result.stderr, "a secret leaked into the output"
    assert "hunter2" not in result.stdout + result.stderr, "a secret leaked into the output"


def test_the_examples_validate_clean(pristine: Path) -> None:
    result = run_cli("validate", "--output", "json", cwd=pristine)
    assert result.exit_code == 0, result
    doc = result.json()
    assert doc["findings"] == []
    assert {m["name"] for m in doc["models"]} == {"iris", "minilm-embeddings", "llm-chat"}
    llm = next(m for m in doc["models"] if m["name"] == "llm-chat")
    assert llm["clouds"] == ["aws"] and llm["environments"] == []


def test_symlink_leaving_the_model_folder_is_a_finding(pristine: Path, tmp_path: Path) -> None:
    repo = _copy(pristine, tmp_path / "repo")
    secret = tmp_path / "outside.py"
    secret.write_text("print('outside')\n")
    code = repo / "models/iris/code/inference.py"
    code.unlink()
    os.symlink(secret, code)

    result = run_cli("validate", "models/iris", "--output", "json", cwd=repo)

    assert result.exit_code == 1, result
    escapes = [f for f in result.json()["findings"] if f["rule"] == "security.path-escape"]
    assert escapes and escapes[0]["line"] == _line_of((repo / "models/iris/model.yaml").read_text(), "entry_point:")
    assert "symlink" in escapes[0]["message"]
