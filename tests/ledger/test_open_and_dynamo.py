"""Choosing the backend per environment, and the DynamoDB table's key design and conditional
writes (moto)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelops.errors import EnvironmentFailedError, InputError
from modelops.ledger import (
    DEFAULT_TABLE,
    Approval,
    LedgerBase,
    LockHolder,
    LockInfo,
    ReleaseRecord,
    TestRecord,
    open_ledger,
)
from modelops.ledger.dynamo import DynamoLedger
from modelops.ledger.sqlite import SqliteLedger
from modelops.runtime import Runtime
from tests.ledger.conftest import FakeClock


class FakeClients:
    """What open_ledger needs of modelops.clients.Clients: the cloud, the regions, a client factory."""

    def __init__(self, cloud: str, client: Any = None, regions: tuple[str, ...] = ("eu-west-1", "us-east-1")):
        self.cloud = cloud
        self.environment = SimpleNamespace(name="prod", regions=regions)
        self._client = client
        self.asked: list[tuple[str, str]] = []

    def client(self, service: str, region: str) -> Any:
        self.asked.append((service, region))
        return self._client


def runtime(tmp_path: Path, clock: FakeClock, **environ: str) -> Runtime:
    return Runtime(cwd=tmp_path, data_dir=tmp_path / "data",
                   environ={"MODELOPS_LOCAL_DATA_DIR": str(tmp_path / "cloud"), "MODELOPS_USER": "ada", **environ},
                   clock=clock)


def scan(client: Any, table: str = DEFAULT_TABLE) -> list[dict[str, Any]]:
    return client.scan(TableName=table)["Items"]


def test_a_local_environment_gets_the_sqlite_file_in_the_local_cloud_dir(tmp_path: Path, clock: FakeClock) -> None:
    ledger = open_ledger(FakeClients("local"), runtime(tmp_path, clock))
    assert isinstance(ledger, SqliteLedger) and ledger.path == tmp_path / "cloud" / "ledger.sqlite"
    ledger.record_approval(Approval("iris", "iris-1", "prod", "ada"))
    assert ledger.history("iris")[0].at == clock.t
    assert (tmp_path / "cloud" / "ledger.sqlite").exists()


def test_an_aws_environment_gets_the_table_in_its_first_region(tmp_path: Path, clock: FakeClock,
                                                               dynamodb: Any) -> None:
    clients = FakeClients("aws", dynamodb)
    ledger = open_ledger(clients, runtime(tmp_path, clock))
    assert isinstance(ledger, DynamoLedger) and ledger.table == DEFAULT_TABLE
    assert clients.asked == [("dynamodb", "eu-west-1")]
    ledger.record_release(ReleaseRecord("iris", "iris-1", "c", "cfg", "bld", "ada"))  # creates the table
    table = dynamodb.describe_table(TableName=DEFAULT_TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ledger.release("iris-1").created_by == "ada"  # type: ignore[union-attr]


def test_region_and_table_can_be_set_by_the_environment(tmp_path: Path, clock: FakeClock, dynamodb: Any) -> None:
    clients = FakeClients("aws", dynamodb, regions=())
    with pytest.raises(InputError, match="region is unknown"):
        open_ledger(clients, runtime(tmp_path, clock))
    ledger = open_ledger(clients, runtime(tmp_path, clock, MODELOPS_LEDGER_REGION="eu-west-1",
                                          MODELOPS_LEDGER_TABLE="team-ledger"))
    ledger.record_approval(Approval("iris", "iris-1", "prod", "ada"))
    assert clients.asked == [("dynamodb", "eu-west-1")]
    assert len(scan(dynamodb, "team-ledger")) == 5  # models index, key marker, chain head, model item, release copy


def test_key_design_one_entry_is_a_marker_a_head_a_model_item_and_a_release_copy(dynamodb: Any,
                                                                                 clock: FakeClock) -> None:
    ledger = DynamoLedger(dynamodb, clock=clock)
    test = TestRecord("iris", "iris-1", "prod", "eu-west-1", "load", True, "ok", {"p95_ms": 12.0})
    assert ledger.record_test(test, idempotency_key="test:iris-1:prod:eu-west-1:load:run-1")
    items = {(i["pk"]["S"], i["sk"]["S"].split("#")[0]): i for i in scan(dynamodb)}
    assert set(items) == {("MODELS", "iris"), ("KEY#test:iris-1:prod:eu-west-1:load:run-1", "KEY"),
                          ("MODEL#iris", "HEAD"), ("MODEL#iris", "SEQ"), ("RELEASE#iris-1", "SEQ")}
    model_item = items[("MODEL#iris", "SEQ")]
    assert model_item["sk"]["S"] == "SEQ#000000000001" and model_item["seq"]["N"] == "1"
    assert model_item["entry"]["S"] == "test" and model_item["region"]["S"] == "eu-west-1"
    assert items[("MODEL#iris", "HEAD")]["entry_hash"] == model_item["entry_hash"]
    assert {k: v for k, v in items[("RELEASE#iris-1", "SEQ")].items() if k != "pk"} == {
        k: v for k, v in model_item.items() if k != "pk"}

    assert not ledger.record_test(test, idempotency_key="test:iris-1:prod:eu-west-1:load:run-1")
    assert len(scan(dynamodb)) == 5  # the cancelled transaction wrote nothing


def test_a_missing_table_is_an_environment_error_when_creation_is_off(dynamodb: Any) -> None:
    ledger = DynamoLedger(dynamodb, table="absent", create_table=False, region="eu-west-1")
    with pytest.raises(EnvironmentFailedError, match=r"ledger table absent \(eu-west-1\): ResourceNotFoundException") as err:
        ledger.history("iris")
    assert err.value.hint and "dynamodb:" in err.value.hint


def test_two_ledgers_on_one_table_see_each_other(dynamodb: Any, clock: FakeClock) -> None:
    here, there = DynamoLedger(dynamodb, clock=clock), DynamoLedger(dynamodb, clock=clock)
    here.record_approval(Approval("iris", "iris-1", "prod", "ada"))
    assert [a.by for a in there.approvals("iris-1", "prod")] == ["ada"]
    assert there.models() == ("iris",)


def test_long_histories_page_through_queries(dynamodb: Any, clock: FakeClock) -> None:
    ledger = DynamoLedger(dynamodb, clock=clock, page_size=2)
    for i in range(7):
        ledger.record_test(TestRecord("iris", "iris-1", "dev", "us-east-1", "regression", True, str(i)))
    assert [t.summary for t in ledger.history("iris")] == [str(i) for i in range(7)]  # type: ignore[union-attr]
    assert len(ledger.test_results("iris-1", "dev")) == 1


def test_two_takeovers_of_one_stale_lock_cannot_both_win(ledger: LedgerBase, clock: FakeClock) -> None:
    ledger.acquire_lock("iris", "prod", LockHolder("gone", "far-away", 1), ttl=10, heartbeat=False)
    clock.advance(11)
    stale = ledger.lock_info("iris", "prod")
    assert stale is not None
    # Both contenders read the stale lock; each tries to replace it, conditional on its token.
    a = LockInfo("iris", "prod", LockHolder("a", "host-a", 2), clock.t, clock.t, "token-a")
    b = LockInfo("iris", "prod", LockHolder("b", "host-b", 3), clock.t, clock.t, "token-b")
    assert ledger._lock_replace(a, stale.token)
    assert not ledger._lock_replace(b, stale.token)
    assert ledger.lock_info("iris", "prod").holder.user == "a"  # type: ignore[union-attr]
    assert not ledger._lock_delete(b) and not ledger._lock_touch(b, clock.t)


def test_no_credentials_is_said_as_such_not_as_missing_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from modelops.ledger.dynamo import TABLE_NO_CREDENTIALS

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("dynamodb", region_name="eu-west-1")
    ledger = DynamoLedger(client, table="modelops-ledger", region="eu-west-1")
    with pytest.raises(EnvironmentFailedError) as err:
        ledger.history("iris")
    assert err.value.message == TABLE_NO_CREDENTIALS.format(table="modelops-ledger", region="eu-west-1")
    assert err.value.hint and "AWS_PROFILE" in err.value.hint and "dynamodb:" not in err.value.hint


def test_a_table_that_cannot_be_reached_is_an_outage_a_rollout_may_ride_out() -> None:
    # Connection failures are CloudUnreachableError (a rollout tries again for a while), refused calls
    # are not: retrying a missing permission would only delay the answer.
    import socket

    import boto3
    from botocore.config import Config

    from modelops.errors import CloudUnreachableError
    from modelops.ledger.dynamo import TABLE_UNREACHABLE_HINT

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.session.Session().client(
        "dynamodb", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="x",
        aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))
    ledger = DynamoLedger(client, table="modelops-ledger", region="eu-west-1")
    with pytest.raises(CloudUnreachableError) as err:
        ledger.history("iris")
    assert err.value.hint == TABLE_UNREACHABLE_HINT and "modelops-ledger" in err.value.message
