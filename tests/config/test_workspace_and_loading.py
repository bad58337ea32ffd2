"""Loading typed configs from the working tree and from git refs (real repositories)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelops.config import (
    Workspace,
    find_model_folder,
    load_environments,
    load_model,
    load_policy,
    read_model,
    rollout_for,
    security_for,
)
from modelops.config import workspace as ws_module
from modelops.errors import InputError
from tests.helpers import commit_all, git, init_repo, write


def test_typed_model_with_positions_and_effective_values(repo: Path) -> None:
    ws = Workspace.discover(repo / "models" / "iris" / "code")
    assert ws.root == repo.resolve()
    model = load_model(ws, "iris")
    envs = load_environments(ws)

    assert model.container.framework == "sklearn" and model.container.handler.contract == "inference-toolkit"
    assert model.artifacts[0].path == "artifacts/model.json"
    text = (repo / "models/iris/model.yaml").read_text().splitlines()
    pos = model.position("spec", "resources", "instance_type")
    assert "instance_type: ml.m5.large" in text[pos.line - 1]
    assert pos.file == "models/iris/model.yaml"

    assert model.resources_for("dev").instance_count == 1
    assert model.resources_for("prod").instance_count == 2  # the prod override
    prod = envs.get("prod")
    sec = security_for(model, prod, "eu-west-1")
    assert sec.kms_key == "arn:aws:kms:eu-west-1:000000000000:alias/modelops-prod"
    assert sec.execution_role == "arn:aws:iam::000000000000:role/modelops-iris-prod"
    assert sec.vpc is not None and sec.vpc.subnets[0].startswith("subnet-")
    effective = rollout_for(model, prod)
    assert (effective.strategy, effective.steps, effective.wait_interval_seconds) == ("judged_canary", (10, 50, 100), 10)
    assert prod.waves == (("us-east-1",), ("eu-west-1", "ap-southeast-2"))
    assert envs.promotion == ("dev", "staging", "prod")
    assert envs.next("staging") is prod and envs.previous("dev") is None


def test_llm_declares_aws_only_and_lmi_options(repo: Path) -> None:
    model = load_model(Workspace.discover(repo), "models/llm-chat")
    assert model.clouds == ("aws",) and not model.supports_cloud("local")
    serving = model.container.serving
    assert serving.properties()["option.tensor_parallel_degree"] == "4"
    assert serving.environment()["OPTION_ROLLING_BATCH"] == "vllm"
    assert model.parameter_count == 70_553_706_496


def test_unknown_environment_and_model_say_did_you_mean(repo: Path) -> None:
    ws = Workspace.discover(repo)
    with pytest.raises(InputError, match="did you mean 'prod'"):
        load_environments(ws).get("prd")
    with pytest.raises(InputError, match="did you mean 'iris'"):
        find_model_folder(ws, "iriss")


def test_strict_loading_names_file_line_and_column(repo: Path) -> None:
    path = repo / "models/iris/model.yaml"
    path.write_text(path.read_text().replace("instance_count: 1", "instance_count: many", 1))
    with pytest.raises(InputError) as err:
        load_model(Workspace.discover(repo), "iris")
    assert str(err.value).startswith("models/iris/model.yaml:")
    assert "instance_count" in str(err.value)


def test_a_missing_config_file_is_said_once_with_a_hint_that_does_not_send_to_it(repo: Path) -> None:
    # It read "pipelines/environments.yaml: pipelines/environments.yaml does not exist", hinting to
    # "run modelops validate pipelines/environments.yaml", which only says the same again.
    first = commit_all(repo, "before")
    (repo / "pipelines" / "environments.yaml").unlink()
    commit_all(repo, "environments gone")
    ws = Workspace.discover(repo)
    for ref, where in ((None, ""), ("HEAD", " at HEAD")):
        with pytest.raises(InputError) as err:
            load_environments(ws, ref=ref)
        assert err.value.message == f"pipelines/environments.yaml does not exist{where}"
        assert err.value.hint is not None and "validate" not in err.value.hint
    assert load_environments(ws, ref=first).get("dev").name == "dev"


def test_reading_a_ref_sees_committed_content_not_the_working_tree(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    path = repo / "models/iris/model.yaml"
    path.write_text(path.read_text().replace("team: ml-platform", "team: new-team"))
    commit_all(repo, "new team")
    path.write_text(path.read_text().replace("team: new-team", "team: uncommitted"))

    ws = Workspace.discover(repo)
    assert load_model(ws, "iris").metadata.team == "uncommitted"
    assert load_model(ws, "iris", ref="HEAD").metadata.team == "new-team"
    old = load_model(ws, "iris", ref=first)
    assert old.metadata.team == "ml-platform" and old.ref == first
    assert ws.at(first).commit == first
    assert ws.is_dirty(["models/iris"]) and not ws.is_dirty(["models/minilm-embeddings"])
    assert ws.head_commit == git(repo, "rev-parse", "HEAD")


def test_a_ref_that_does_not_exist_is_an_input_error(repo: Path) -> None:
    with pytest.raises(InputError) as err:
        Workspace.discover(repo).at("no-such-branch")
    assert str(err.value) == ws_module.BAD_REF.format(ref="no-such-branch", path=repo.resolve())
    # A full commit id resolves lazily in gitpython: one this clone lacks (a release recorded by another
    # clone) was an internal error at the first read, not this message.
    missing = "0" * 40
    with pytest.raises(InputError) as err:
        Workspace.discover(repo).at(missing)
    assert str(err.value) == ws_module.BAD_REF.format(ref=missing, path=repo.resolve())


def test_a_folder_that_is_not_a_git_repo_cannot_take_a_ref(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    with pytest.raises(InputError, match="is not a git repository"):
        Workspace.discover(tmp_path).at("HEAD")


def test_no_repository_above_a_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not inside a modelops repository"):
        Workspace.discover(tmp_path)


def test_changed_models_since_a_ref(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    ws = Workspace.discover(repo)
    assert ws.changed_models("main") == ()
    write(repo / "models/iris/code/extra.py", "X = 1\n")  # untracked counts
    assert ws.changed_models("main") == ("models/iris",)
    commit_all(repo, "extra")
    assert ws.at("HEAD").changed_models("main") == ("models/iris",)
    write(repo / "pipelines/policy.yaml", (repo / "pipelines/policy.yaml").read_text() + "# touched\n")
    assert ws.changed_models("main") == ws.model_folders()


def test_symlinks_out_of_the_model_folder_are_detected_in_tree_and_at_a_ref(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    os.symlink(outside, repo / "models/iris/code/leak.py")
    os.symlink("../../minilm-embeddings/code/model.py", repo / "models/iris/code/sideways.py")
    os.symlink("inference.py", repo / "models/iris/code/alias.py")
    commit_all(repo, "links")
    for ws in (Workspace.discover(repo), Workspace.discover(repo).at("HEAD")):
        assert ws.escape_reason("models/iris", "code/leak.py") is not None
        assert ws.escape_reason("models/iris", "code/sideways.py") is not None
        assert ws.escape_reason("models/iris", "code/alias.py") is None
        assert ws.escape_reason("models/iris", "../iris/code/inference.py") is None
        assert ws.escape_reason("models/iris", "../minilm-embeddings/model.yaml") is not None


def test_lenient_read_collects_problems_instead_of_raising(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", {"models/bad/model.yaml": "- just\n- a list\n"})
    loaded = read_model(Workspace.discover(repo), "models/bad")
    assert loaded.value is None and loaded.fatal
    assert [f.rule for f in loaded.findings] == ["yaml.not-a-mapping"]


def test_default_policy_when_the_file_is_absent(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", copy_examples=False, files={"pipelines/environments.yaml": "x: 1\n"})
    policy = load_policy(Workspace.discover(repo))
    assert policy.file is None and policy.allows_instance_type("prod", "ml.p5.48xlarge")


AWS_ENVIRONMENTS = """\
apiVersion: modelops/v1
kind: Environments
environments:
  prod:
    cloud: aws
    account: "123456789012"
    regions: [us-east-1, eu-west-1]
    waves: [[us-east-1], [eu-west-1]]
    builder: codebuild
    approval: {required: true, four_eyes: true}
    aws:
      role_arn: arn:aws:iam::123456789012:role/modelops-deployer
      profile: prod
    rollout:
      strategy: linear
      step_size: {type: CAPACITY_PERCENT, value: 25}
      wait_interval_seconds: 300
      max_execution_timeout_seconds: 3600
      alarms: {p99_latency_ms: 800, error_rate_5xx: 0.01}
    security:
      kms_key: "arn:aws:kms:{region}:{account}:alias/sagemaker"
      vpc:
        us-east-1: {subnets: [subnet-0123456789abcdef0], security_groups: [sg-0123456789abcdef0]}
        eu-west-1: {subnets: [subnet-0123456789abcdef1], security_groups: [sg-0123456789abcdef1]}
"""


def test_an_aws_environment_validates_and_loads(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r", copy_examples=False, files={"pipelines/environments.yaml": AWS_ENVIRONMENTS})
    envs = load_environments(Workspace.discover(repo))
    prod = envs.get("prod")
    assert prod.cloud == "aws" and prod.account == "123456789012" and prod.aws.profile == "prod"
    assert prod.rollout.step_size is not None and prod.rollout.step_size.value == 25
    assert prod.security.for_region("eu-west-1").vpc is not None


def test_an_aws_environment_needs_an_account(tmp_path: Path) -> None:
    text = AWS_ENVIRONMENTS.replace('    account: "123456789012"\n', "")
    repo = init_repo(tmp_path / "r", copy_examples=False, files={"pipelines/environments.yaml": text})
    with pytest.raises(InputError, match="missing required key 'account'"):
        load_environments(Workspace.discover(repo))
