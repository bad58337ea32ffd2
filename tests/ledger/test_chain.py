"""The ledger's hash chain: every append links to the one before it (per model), so an entry edited,
deleted, reordered or slipped in outside modelops is found by ``verify``, on both backends, also
when appends race (threads, processes, hosts) and when the ledger predates the chain."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from modelops.ledger import IN_PROGRESS, Approval, DeploymentStep, LedgerBase, ReleaseRecord, TestRecord
from modelops.ledger.chain import LedgerTamperedError, genesis_hash
from modelops.ledger.dynamo import DynamoLedger
from modelops.ledger.sqlite import SqliteLedger
from tests.ledger.conftest import FakeClock
from tests.ledger.test_sqlite_processes import finish, worker


def _history(ledger: LedgerBase) -> None:
    ledger.record_release(ReleaseRecord("iris", "iris-1", "c1", "cfg", "bld", "ada@example.com"))
    ledger.record_test(TestRecord("iris", "iris-1", "staging", "us-east-1", "load", True, "ok"))
    ledger.record_approval(Approval("iris", "iris-1", "prod", "reviewer@example.com"))
    ledger.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-1", "started", "started"))
    ledger.record_release(ReleaseRecord("minilm", "minilm-1", "c1", "cfg", "bld", "ada@example.com"))


def test_appends_form_one_chain_per_model_that_verifies(ledger: LedgerBase) -> None:
    _history(ledger)
    result = ledger.verify()
    assert result.ok, result.problems
    chains = {m.model: m for m in result.models}
    assert chains["iris"].entries == 4 and chains["iris"].head is not None and chains["iris"].head.seq == 4
    assert chains["minilm"].entries == 1
    assert ledger.verify("iris", releases=["iris-1"]).ok
    result.raise_if_broken()  # nothing to raise


def test_the_same_entry_in_another_place_has_another_hash(ledger: LedgerBase) -> None:
    # Identical records appended twice are two links: a reordering of equal bodies still shows.
    step = DeploymentStep("iris", "dev", "us-east-1", "iris-1", "canary", IN_PROGRESS)
    ledger.record_step(step)
    ledger.record_step(step)
    entries, head = ledger._snapshot("iris")
    assert [e.seq for e in entries] == [1, 2] and entries[0].entry_hash != entries[1].entry_hash
    assert entries[1].prev_hash == entries[0].entry_hash and head is not None and head.hash == entries[1].entry_hash


# -- SQLite: what someone with the file and the sqlite3 shell can do -------------------------------


@pytest.fixture
def sqlite_ledger(tmp_path: Path, clock: FakeClock) -> SqliteLedger:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite", clock=clock)
    _history(ledger)
    return ledger


def _tamper(ledger: SqliteLedger, *statements: str) -> None:
    """Change the file as an attacker would: around the append-only triggers."""
    raw = sqlite3.connect(ledger.path)
    try:
        raw.execute("DROP TRIGGER entries_no_update")
        raw.execute("DROP TRIGGER entries_no_delete")
        for statement in statements:
            raw.execute(statement)
        raw.commit()
    finally:
        raw.close()


def _problem(ledger: LedgerBase, model: str = "iris") -> str:
    result = ledger.verify(model)
    assert not result.ok
    with pytest.raises(LedgerTamperedError) as err:
        result.raise_if_broken()
    assert err.value.exit_status == 3 and err.value.message.startswith(f"ledger {ledger.name}: {model}: ")
    return err.value.message


def test_an_edited_body_is_found_naming_the_entry(sqlite_ledger: SqliteLedger) -> None:
    body = json.loads(sqlite_ledger._snapshot("iris")[0][2].body)
    forged = json.dumps({**body, "by": "mallory@example.com"}, sort_keys=True, separators=(",", ":"))
    _tamper(sqlite_ledger, f"UPDATE entries SET body = '{forged}' WHERE chain_seq = 3 AND model = 'iris'")
    assert sqlite_ledger.approvals("iris-1", "prod")[0].by == "mallory@example.com"  # the forgery reads fine...
    assert _problem(sqlite_ledger).endswith(  # ...and does not verify
        "entry 3 (approval of iris-1 in prod) was changed after it was written (its hash does not match)")


def test_an_edited_query_column_is_found(sqlite_ledger: SqliteLedger) -> None:
    # The body is intact, but the column queries filter on now files the approval under staging.
    _tamper(sqlite_ledger, "UPDATE entries SET environment = 'staging' WHERE chain_seq = 3 AND model = 'iris'")
    assert "its environment column says 'staging', its body 'prod'" in _problem(sqlite_ledger)


def test_a_deleted_entry_is_found(sqlite_ledger: SqliteLedger) -> None:
    _tamper(sqlite_ledger, "DELETE FROM entries WHERE chain_seq = 2 AND model = 'iris'")
    assert "entry 3 (approval of iris-1 in prod) comes after position 1: the entries between them were deleted" in (
        _problem(sqlite_ledger))


def test_a_deleted_last_entry_is_found_by_the_head(sqlite_ledger: SqliteLedger) -> None:
    _tamper(sqlite_ledger, "DELETE FROM entries WHERE chain_seq = 4 AND model = 'iris'")
    assert "the last 1 entry(ies) were deleted (the head says position 4, the last entry is 3)" in (
        _problem(sqlite_ledger))


def test_reordered_entries_are_found(sqlite_ledger: SqliteLedger) -> None:
    # Swap the append order (what history and the gates read) of two entries.
    _tamper(sqlite_ledger, "UPDATE entries SET seq = -1 WHERE chain_seq = 2 AND model = 'iris'",
            "UPDATE entries SET seq = (SELECT seq FROM entries WHERE chain_seq = 3 AND model = 'iris') + 1000"
            " WHERE seq = -1")
    assert "entry 3 (approval of iris-1 in prod) is out of order (position 2 comes after it)" in (
        _problem(sqlite_ledger))


def test_an_entry_slipped_in_without_a_link_is_found(sqlite_ledger: SqliteLedger) -> None:
    forged = Approval("iris", "iris-2", "prod", "mallory@example.com", at=1.0).to_json()
    _tamper(sqlite_ledger, "INSERT INTO entries (entry_id, entry, model, release, environment, at, body) VALUES "
                           f"('x', 'approval', 'iris', 'iris-2', 'prod', 1.0, '{forged}')")
    assert "entry (before the chain) (approval of iris-2 in prod) has no place in the chain" in _problem(sqlite_ledger)


def test_appending_after_the_head_was_set_back_is_refused(sqlite_ledger: SqliteLedger) -> None:
    _tamper(sqlite_ledger, "UPDATE heads SET chain_seq = 2 WHERE model = 'iris'")
    with pytest.raises(LedgerTamperedError, match=r"entry 4 .* is beyond the head"):
        sqlite_ledger.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-1", "more", IN_PROGRESS))


def test_a_version_1_file_is_chained_from_a_genesis_over_its_entries(tmp_path: Path, clock: FakeClock) -> None:
    # Given a ledger an older modelops wrote (schema 1: no chain columns, no heads)
    path = tmp_path / "ledger.sqlite"
    raw = sqlite3.connect(path)
    raw.executescript("""
        CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, entry_id TEXT NOT NULL UNIQUE,
            entry TEXT NOT NULL, model TEXT NOT NULL, release TEXT, environment TEXT, region TEXT,
            at REAL NOT NULL, idempotency_key TEXT UNIQUE, body TEXT NOT NULL);
        CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
            BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
            BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TABLE locks (model TEXT NOT NULL, environment TEXT NOT NULL, token TEXT NOT NULL,
            holder TEXT NOT NULL, acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL, ttl REAL NOT NULL,
            PRIMARY KEY (model, environment));
        PRAGMA user_version = 1;
    """)
    old = [ReleaseRecord("iris", "iris-0", "c0", "cfg", "bld", "ada", at=10.0),
           Approval("iris", "iris-0", "prod", "reviewer", at=11.0)]
    for i, record in enumerate(old):
        raw.execute("INSERT INTO entries (entry_id, entry, model, release, environment, at, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f"old-{i}", record.KIND, "iris", record.release, getattr(record, "environment", None), record.at,
                     record.to_json()))
    raw.commit()
    raw.close()
    # When this modelops opens it and appends
    ledger = SqliteLedger(path, clock=clock)
    assert ledger.verify().ok  # nothing chained yet: the older entries are all there is
    ledger.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-0", "started", "started"))
    # Then the chain starts at a genesis over the older entries, which are kept as they were
    entries, _ = ledger._snapshot("iris")
    assert [e.seq for e in entries] == [None, None, 1]
    assert entries[2].prev_hash == genesis_hash("iris", [r.to_json() for r in old])
    [chain] = ledger.verify().models
    assert chain.ok and chain.legacy == 2 and chain.entries == 1
    assert [e.KIND for e in ledger.history("iris")] == ["release", "approval", "step"]
    # and an older entry changed after that is found
    _tamper(ledger, "UPDATE entries SET body = replace(body, 'reviewer', 'mallory') WHERE entry_id = 'old-1'")
    assert _problem(ledger).endswith("the 2 entries written before the chain started were changed, deleted or "
                                     "reordered since")


def test_appends_from_processes_and_threads_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    procs = [worker("append", path, f"p{i}", 20) for i in range(3)]  # 3 processes x 2 threads
    for p in procs:
        assert finish(p) == 0
    ledger = SqliteLedger(path)
    [chain] = ledger.verify().models
    assert chain.ok, chain.problem
    assert chain.entries == 120 and chain.head is not None and chain.head.seq == 120


# -- DynamoDB: the model's history, its head, and the per-release copies the gates read ------------


class AtomicCalls:
    """A DynamoDB client whose every call is atomic, as the service's are. moto's are not under
    threads: a transaction it cancels restores a copy of the table, undoing what another thread wrote."""

    def __init__(self, client: Any):
        self._client, self._lock = client, threading.Lock()
        self.meta = client.meta

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)
        return call


def test_concurrent_appends_to_one_model_on_dynamodb_keep_one_chain(dynamodb: Any) -> None:
    ledger = DynamoLedger(AtomicCalls(dynamodb))
    ledger.record_release(ReleaseRecord("iris", "iris-1", "c", "cfg", "bld", "ada"))

    def append(i: int) -> bool:
        step = DeploymentStep("iris", "prod", f"region-{i % 3}", "iris-1", f"step-{i}", IN_PROGRESS)
        return ledger.record_step(step, idempotency_key=f"k{i % 30}")

    with ThreadPoolExecutor(max_workers=6) as pool:  # parallel regions of a wave
        appended = list(pool.map(append, range(60)))
    assert sum(appended) == 30
    [chain] = ledger.verify().models
    assert chain.ok, chain.problem
    assert chain.entries == 31 and len(ledger.history("iris")) == 31


def test_an_append_that_loses_the_race_for_the_head_reads_it_again(dynamodb: Any, clock: FakeClock) -> None:
    here, there = DynamoLedger(dynamodb, clock=clock), DynamoLedger(dynamodb, clock=clock)
    here.record_release(ReleaseRecord("iris", "iris-1", "c", "cfg", "bld", "ada"))
    raced = []
    read_head = DynamoLedger._head

    def head_then_race(self: DynamoLedger, model: str) -> Any:
        head = read_head(self, model)
        if not raced:  # another host appends between this read and the write
            raced.append(there.record_approval(Approval("iris", "iris-1", "prod", "reviewer")))
        return head

    here._head = head_then_race.__get__(here)  # type: ignore[method-assign]
    assert here.record_step(DeploymentStep("iris", "prod", "us-east-1", "iris-1", "started", "started"))
    assert raced == [True]
    assert [e.KIND for e in there.history("iris")] == ["release", "approval", "step"]
    assert there.verify().ok


def _put(client: Any, item: dict[str, Any]) -> None:
    client.put_item(TableName="modelops-ledger", Item=item)


def _item(client: Any, pk: str, sk: str) -> dict[str, Any]:
    return client.get_item(TableName="modelops-ledger", Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


@pytest.fixture
def dynamo_ledger(dynamodb: Any, clock: FakeClock) -> DynamoLedger:
    ledger = DynamoLedger(dynamodb, clock=clock)
    _history(ledger)
    return ledger


def test_an_edited_item_is_found_on_dynamodb(dynamo_ledger: DynamoLedger, dynamodb: Any) -> None:
    item = _item(dynamodb, "MODEL#iris", "SEQ#000000000002")
    item["body"] = {"S": item["body"]["S"].replace('"passed":true', '"passed":false')}
    _put(dynamodb, item)
    assert "entry 2 (test of iris-1 in staging/us-east-1) was changed after it was written" in _problem(dynamo_ledger)


def test_a_deleted_item_is_found_on_dynamodb(dynamo_ledger: DynamoLedger, dynamodb: Any) -> None:
    dynamodb.delete_item(TableName="modelops-ledger", Key={"pk": {"S": "MODEL#iris"}, "sk": {"S": "SEQ#000000000003"}})
    assert "entry 4 (step of iris-1 in prod/us-east-1) comes after position 2" in _problem(dynamo_ledger)


def test_a_forged_release_copy_is_found(dynamo_ledger: DynamoLedger, dynamodb: Any) -> None:
    # An approval put under the release only: the approvals gate reads that partition.
    copy = _item(dynamodb, "RELEASE#iris-1", "SEQ#000000000003")
    forged = {**copy, "sk": {"S": "SEQ#000000000099"}, "seq": {"N": "99"}, "entry_id": {"S": "forged"},
              "body": {"S": Approval("iris", "iris-1", "prod", "mallory", at=1.0).to_json()}}
    _put(dynamodb, forged)
    assert [a.by for a in dynamo_ledger.approvals("iris-1", "prod")] == ["reviewer@example.com", "mallory"]
    assert dynamo_ledger.verify("iris").ok  # the model's own history is intact...
    assert "release iris-1 holds an entry (99 (approval of iris-1 in prod)) that is not in iris's history" in (
        _problem_with_releases(dynamo_ledger, "iris-1"))  # ...its copies are not
    assert not dynamo_ledger.verify().ok  # verifying everything checks every release it names


def test_an_edited_or_deleted_release_copy_is_found(dynamo_ledger: DynamoLedger, dynamodb: Any) -> None:
    copy = _item(dynamodb, "RELEASE#iris-1", "SEQ#000000000002")
    _put(dynamodb, {**copy, "body": {"S": copy["body"]["S"].replace('"passed":true', '"passed":false')}})
    assert "the copy of entry 2 (test of iris-1 in staging/us-east-1) under release iris-1 differs" in (
        _problem_with_releases(dynamo_ledger, "iris-1"))
    dynamodb.delete_item(TableName="modelops-ledger", Key={"pk": {"S": "RELEASE#iris-1"}, "sk": copy["sk"]})
    assert "entry 2 (test of iris-1 in staging/us-east-1) has no copy under release iris-1" in (
        _problem_with_releases(dynamo_ledger, "iris-1"))


def _problem_with_releases(ledger: LedgerBase, release: str) -> str:
    result = ledger.verify("iris", releases=[release])
    assert not result.ok
    return result.problems[0].message


def test_entries_from_before_the_chain_are_read_first_and_covered_by_its_genesis(dynamodb: Any,
                                                                              clock: FakeClock) -> None:
    # Given a table an older modelops wrote (ENTRY#<time> sort keys, no head)
    ledger = DynamoLedger(dynamodb, clock=clock)
    ledger._ensure_table()
    old = Approval("iris", "iris-0", "prod", "reviewer", at=10.0)
    for pk in ("MODEL#iris", "RELEASE#iris-0"):
        _put(dynamodb, {"pk": {"S": pk}, "sk": {"S": f"ENTRY#{10_000_000:017d}#000000000#old"},
                        "entry_id": {"S": "old"}, "entry": {"S": "approval"}, "model": {"S": "iris"},
                        "release": {"S": "iris-0"}, "environment": {"S": "prod"}, "at": {"N": "10.0"},
                        "body": {"S": old.to_json()}})
    _put(dynamodb, {"pk": {"S": "MODELS"}, "sk": {"S": "iris"}})
    # When this modelops appends
    ledger.record_release(ReleaseRecord("iris", "iris-1", "c", "cfg", "bld", "ada"))
    # Then the older entry comes first, the chain after it from a genesis over it
    assert [e.KIND for e in ledger.history("iris")] == ["approval", "release"]
    assert [a.by for a in ledger.approvals("iris-0", "prod")] == ["reviewer"]
    [chain] = ledger.verify().models
    assert chain.ok and chain.legacy == 1 and chain.entries == 1
    assert _item(dynamodb, "MODEL#iris", "SEQ#000000000001")["prev_hash"]["S"] == genesis_hash("iris", [old.to_json()])
