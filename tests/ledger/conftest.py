"""Fixtures: a controllable clock and a ledger of each backend (SQLite on disk, DynamoDB in moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.ledger import LedgerBase
from modelops.ledger.sqlite import SqliteLedger


class FakeClock:
    """Time that moves only when told to (``advance``/``sleep``)."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dynamodb() -> Iterator[object]:
    """A boto3 DynamoDB client served by moto (no AWS)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[LedgerBase]:
    """The same tests run against both backends."""
    if request.param == "sqlite":
        made: LedgerBase = SqliteLedger(tmp_path / "ledger.sqlite", clock=clock, user="ada@example.com")
    else:
        from modelops.ledger.dynamo import DynamoLedger

        made = DynamoLedger(request.getfixturevalue("dynamodb"), clock=clock, user="ada@example.com")
    yield made
    made.close()
