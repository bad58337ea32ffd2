"""The rollout table (modelops.config.rollout): one size arithmetic, one set of limits, read by the
schemas, validate, plan and the DeploymentConfig builder alike."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from modelops.config import STRATEGIES, CapacitySize, RolloutPolicy, Strategy
from modelops.config import rollout as table
from modelops.config import schema as schemas
from modelops.deploy import specs
from modelops.errors import InputError
from tests.helpers import commit_all, init_repo, run_cli, use_sagemaker_canary_in_prod

CANARY_50 = RolloutPolicy("canary", CapacitySize("CAPACITY_PERCENT", 50), wait_interval_seconds=10,
                          max_execution_timeout_seconds=600)


@pytest.mark.parametrize("kind", ["model", "environments"])
def test_the_schemas_take_the_strategies_from_the_table(kind: str) -> None:
    strategy = schemas.schema(kind)["$defs"]["rollout"]["properties"]["strategy"]
    assert strategy["enum"] == list(STRATEGIES)
    assert all(s.summary in strategy["description"] for s in STRATEGIES.values())


@pytest.mark.parametrize(("size", "count", "instances", "share"), [
    (CapacitySize("CAPACITY_PERCENT", 50), 1, 1, 1.0),  # an instance cannot be split
    (CapacitySize("CAPACITY_PERCENT", 50), 2, 1, 0.5),
    (CapacitySize("CAPACITY_PERCENT", 50), 3, 1, 1 / 3),  # floor, at least one
    (CapacitySize("CAPACITY_PERCENT", 10), 5, 1, 0.2),
    (CapacitySize("INSTANCE_COUNT", 2), 4, 2, 0.5),
])
def test_one_size_arithmetic(size: CapacitySize, count: int, instances: int, share: float) -> None:
    assert size.instances(count) == instances
    assert size.share(count) == pytest.approx(share)


@pytest.mark.parametrize(("policy", "count", "rule", "field"), [
    (CANARY_50, 1, "rollout.step-size", "instance_count"),  # fine for 2: the fleet is to change
    (CANARY_50, 3, None, None),
    (replace(CANARY_50, step_size=CapacitySize("CAPACITY_PERCENT", 60)), 10, "rollout.step-size", "step_size"),
    (replace(CANARY_50, step_size=CapacitySize("INSTANCE_COUNT", 3)), 4, "rollout.step-size", "instance_count"),
    (replace(CANARY_50, strategy="linear", step_size=CapacitySize("CAPACITY_PERCENT", 5)), 40, "rollout.step-size",
     "step_size"),
    (replace(CANARY_50, strategy="linear", step_size=CapacitySize("INSTANCE_COUNT", 1)), 20, "rollout.step-size",
     "step_size"),  # 5% of 20: a larger fleet makes it worse
    (replace(CANARY_50, step_size=None), 2, "config.rollout", "strategy"),
    (replace(CANARY_50, wait_interval_seconds=300), 2, "rollout.timeout", "max_execution_timeout_seconds"),
    (replace(CANARY_50, strategy="all_at_once", step_size=None), 1, None, None),
])
def test_problems_and_where_to_fix_them(policy: RolloutPolicy, count: int, rule: str | None, field: str | None) -> None:
    found = table.problems(policy, environment="prod", instance_count=count)
    assert [(p.rule, p.field) for p in found] == ([(rule, field)] if rule else [])
    if found:  # deploy refuses with the same words validate reports
        with pytest.raises(InputError) as refused:
            specs.deployment_config(policy, alarm_names=(), environment="prod", instance_count=count)
        assert refused.value.message == found[0].message


def test_total_wait_follows_the_steps() -> None:
    assert table.total_wait(CANARY_50, 2) == (20, "2 bakes of 10 s + 0 s termination wait")
    linear = replace(CANARY_50, strategy="linear", step_size=CapacitySize("CAPACITY_PERCENT", 25))
    assert table.total_wait(linear, None) == (40, "4 bakes of 10 s + 0 s termination wait")  # the percent's steps
    assert table.total_wait(linear, 8)[0] == 40  # 2 of 8 instances a step
    assert table.total_wait(linear, 2)[0] == 20  # 1 of 2 instances a step: two steps
    by_count = replace(linear, step_size=CapacitySize("INSTANCE_COUNT", 1))
    assert table.total_wait(by_count, None) is None  # not known without a fleet
    assert table.fewest_instances(CANARY_50) == 2 and table.fewest_instances(RolloutPolicy()) == 1


def _forget_schemas() -> None:
    """Drop the schemas and the validators built from them (cached per process: another test in this
    worker may have built them from the table before the new row)."""
    for cached in (schemas.schema, schemas._validator, schemas._fast_validator):
        cached.cache_clear()


def test_a_new_strategy_is_one_row(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The seam another strategy plugs into: a row in the table reaches the schemas (a model may name
    it), validate's limits and the DeploymentConfig builder, with no other change."""
    row = Strategy("quarter_steps", "LINEAR", "four equal steps", lambda share: (0.25, 0.5, 0.75, 1.0),
                   size_member="LinearStepSize", size_words="quarter step", share_range=(0.25, 0.25),
                   limit_text="25%")
    monkeypatch.setattr(table, "STRATEGIES", {**table.STRATEGIES, row.name: row})
    _forget_schemas()
    try:
        policy = RolloutPolicy("quarter_steps", CapacitySize("CAPACITY_PERCENT", 25), wait_interval_seconds=10,
                               max_execution_timeout_seconds=600)
        config = specs.deployment_config(policy, alarm_names=(), environment="prod", instance_count=4)
        assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"]["Value"] == 25
        assert table.total_wait(policy, 4) == (40, "4 bakes of 10 s + 0 s termination wait")
        assert [p.rule for p in table.problems(policy, environment="prod", instance_count=2)] == ["rollout.step-size"]
        repo = init_repo(tmp_path / "repo")
        iris = repo / "models/iris/model.yaml"
        iris.write_text(iris.read_text().replace(
            "  environments:\n    prod:\n",
            "  environments:\n    prod:\n      rollout: {strategy: quarter_steps, step_size: {type: CAPACITY_PERCENT, value: 25}}\n"))
        found = run_cli("validate", "models/iris", "--output", "json", cwd=repo).json()["findings"]
        assert [f["rule"] for f in found] == ["rollout.step-size"]  # a known strategy; 2 instances are too few
    finally:
        _forget_schemas()


def test_one_instance_under_prods_canary_is_refused_by_validate_plan_and_deploy_alike(tmp_path: Path) -> None:
    """The defect: validate said 50% of one instance was fine, deploy refused it in prod after the
    tests and the approval."""
    repo = init_repo(tmp_path / "repo")
    use_sagemaker_canary_in_prod(repo)  # prod on SageMaker's 50% canary (the shipped prod judges its canary)
    iris = repo / "models/iris/model.yaml"
    iris.write_text(iris.read_text().replace("      resources:\n        instance_count: 2\n",
                                             "      resources:\n        instance_count: 1\n"))
    commit_all(repo, "one instance in prod")
    words = "prod: the canary size 50% is 1 of the 1 instance(s) (100%); SageMaker allows at most 50% of them"

    validated = run_cli("validate", "models/iris", "--output", "json", cwd=repo)
    assert validated.exit_code == 1
    [finding] = [f for f in validated.json()["findings"] if f["rule"] == "rollout.step-size"]
    assert finding["message"] == words and finding["path"] == "$.spec.environments.prod.resources.instance_count"
    assert finding["hint"].startswith("give prod at least 2 instances")

    planned = run_cli("plan", "iris", "--env", "prod", cwd=repo)
    assert planned.exit_code == 2 and words in planned.stderr
    assert not Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]).exists()  # refused before any cloud

    pr = run_cli("ci", "pr", "--base", "HEAD~1", "--no-bandit", "--no-cloud-plan", "--output", "json", cwd=repo)
    assert pr.exit_code == 1 and words in [f["message"] for f in pr.json()["new"]]
