"""The ledger in one DynamoDB table, for AWS environments.

Key design (string partition key ``pk``, string sort key ``sk``; on-demand capacity)::

    pk                          sk                      what
    MODEL#<model>               SEQ#<position, 12 digits>  every entry of the model (history), in chain order
    MODEL#<model>               HEAD                    the model's chain head (position and hash)
    RELEASE#<release>           SEQ#<position, 12 digits>  a copy of every entry naming a release
    KEY#<idempotency key>       KEY                     marks a key as used (entry id inside)
    MODELS                      <model>                 the list of models (for ``status``)
    LOCK#<model>#<environment>  LOCK                    the lock (token, holder, times, expiry)

An entry's items (its marker, the head, its model item, its release copy) are written in one
``TransactWriteItems``: the marker put is conditional on ``attribute_not_exists(pk)``, so a retried
append with a used key cancels the whole transaction and adds nothing; the head put is conditional on
the head the writer read, so of two concurrent appends to one model (parallel regions, other
processes or hosts) one wins and the other reads the new head and tries again: the chain never forks
and its order is the order of appends, whatever the hosts' clocks say. A crash leaves either all of
an entry or none. Entries are only ever put, never updated or deleted. Reads are strongly consistent
queries of one partition.

Entries from before the chain (an older modelops wrote ``ENTRY#<at µs, 17 digits>#<n>#<id>`` sort
keys, in time order) are read first, as they are; the chain starts after them at a genesis hash over
them (see :mod:`modelops.ledger.chain`).

The item body is the record's JSON in attribute ``body``; ``entry`` (the record type), ``model``, ``release``,
``environment``, ``region`` and ``at`` are copied out for queries and for people reading the table in
the console; ``seq``, ``prev_hash`` and ``entry_hash`` are the chain.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

from modelops.errors import CloudUnreachableError, EnvironmentFailedError, is_unreachable
from modelops.runtime import Clock

from .base import LedgerBase
from .chain import Head, StoredEntry, entry_hash, genesis_hash
from .records import Entry, LockHolder, LockInfo, entry_from_json

TABLE_ERROR = "ledger table {table} ({region}): {code}: {message}"
TABLE_ERROR_HINT = (
    "the role needs dynamodb:DescribeTable, CreateTable, Query, GetItem, PutItem, UpdateItem, DeleteItem "
    "and TransactWriteItems on the ledger table"
)
TABLE_NO_CREDENTIALS = "ledger table {table} ({region}): no AWS credentials found"
TABLE_NO_CREDENTIALS_HINT = (
    "provide credentials for the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role, or a "
    "profile or role under its aws: in pipelines/environments.yaml)"
)
TABLE_UNREACHABLE_HINT = "check the network path to DynamoDB in that region (proxy, VPC endpoint)"
CONTENDED = "ledger table {table} ({region}): {model}: {attempts} appends lost the race for the chain's head"
CONTENDED_HINT = "many writers append to this model at once; run the command again"

LEGACY_PREFIX = "ENTRY#"  # entries an older modelops wrote, before the chain
SEQ_PREFIX = "SEQ#"
HEAD_SK = "HEAD"
APPEND_ATTEMPTS = 64
_CHAIN_COLUMNS = ("entry", "model", "release", "environment", "region")


class DynamoLedger(LedgerBase):
    """The ledger in DynamoDB table ``table`` through a boto3 ``dynamodb`` client.

    The table is created (on-demand capacity) on first use if it does not exist, unless
    ``create_table=False``.
    """

    def __init__(self, client: Any, *, table: str = "modelops-ledger", clock: Clock | None = None,
                 user: str = "unknown", region: str | None = None, create_table: bool = True,
                 page_size: int | None = None):
        super().__init__(clock=clock, user=user)
        self.client = client
        self.table = table
        self.region = region or getattr(getattr(client, "meta", None), "region_name", None) or "?"
        self._create_table = create_table
        self._ready = False
        self._indexed: set[str] = set()  # models this instance put in the MODELS index
        self._page_size = page_size  # items per query page (None: DynamoDB's 1 MB pages)

    def __repr__(self) -> str:
        return f"DynamoLedger({self.table!r}, region={self.region!r})"

    @property
    def name(self) -> str:
        return f"table {self.table} ({self.region})"

    # -- plumbing ------------------------------------------------------------------------------
    def _error(self, exc: Exception) -> EnvironmentFailedError:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return EnvironmentFailedError(TABLE_NO_CREDENTIALS.format(table=self.table, region=self.region),
                                          hint=TABLE_NO_CREDENTIALS_HINT)
        response = getattr(exc, "response", None) or {}
        error = response.get("Error", {}) if isinstance(response, dict) else {}
        message = TABLE_ERROR.format(table=self.table, region=self.region, code=error.get("Code", type(exc).__name__),
                                     message=error.get("Message", str(exc)))
        if isinstance(exc, ClientError):  # a refused call: the permissions hint fits
            return EnvironmentFailedError(message, hint=TABLE_ERROR_HINT)
        if is_unreachable(exc):
            # Not reached at all: a rollout in progress rides this out for a while (see deploy.rollout).
            return CloudUnreachableError(message, hint=TABLE_UNREACHABLE_HINT)
        return EnvironmentFailedError(message, hint=TABLE_UNREACHABLE_HINT)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        self._ensure_table()
        try:
            if operation == "transact_write_items":  # names its table per item
                return self.client.transact_write_items(**kwargs)
            return getattr(self.client, operation)(TableName=self.table, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
                raise  # the callers' answer (a lock or key already taken), not a failure
            raise self._error(exc) from exc

    def _ensure_table(self) -> None:
        if self._ready:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self.client.describe_table(TableName=self.table)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException" or not self._create_table:
                    raise
                self.create_table()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from exc
        self._ready = True

    def create_table(self) -> None:
        """Create the ledger table (on-demand capacity) and wait until it is active."""
        from botocore.exceptions import ClientError

        try:
            self.client.create_table(
                TableName=self.table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                           {"AttributeName": "sk", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": "modelops:purpose", "Value": "ledger"}],
            )
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":  # another run created it first
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 2,
                                                                                          "MaxAttempts": 60})

    def _query(self, pk: str, *, prefix: str | None = None,
               where: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ConsistentRead": True, "ExpressionAttributeValues": {":pk": {"S": pk}}}
        if prefix is None:
            kwargs["KeyConditionExpression"] = "pk = :pk"
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        if where:
            # Attribute names go through placeholders: some (e.g. region) are reserved words.
            kwargs["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(where)))
            kwargs["ExpressionAttributeNames"] = {f"#f{i}": name for i, name in enumerate(where)}
            kwargs["ExpressionAttributeValues"].update({f":f{i}": {"S": v} for i, v in enumerate(where.values())})
        if self._page_size:
            kwargs["Limit"] = self._page_size
        while True:
            page = self._call("query", **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- entries -------------------------------------------------------------------------------
    def _append(self, entry: Entry, idempotency_key: str | None) -> bool:
        from botocore.exceptions import ClientError

        entry_id, body = uuid.uuid4().hex, entry.to_json()
        columns: dict[str, Any] = {"entry_id": {"S": entry_id}, "entry": {"S": entry.KIND}, "model": {"S": entry.model},
                                   "at": {"N": repr(entry.at)}, "body": {"S": body}}
        for name, value in (("release", entry.release_id), ("environment", entry.environment_name),
                            ("region", entry.region_name)):
            if value:
                columns[name] = {"S": value}
        # The model index first, outside the transaction: a put of one fixed item from concurrent
        # transactions would conflict, and an index entry without history is harmless.
        if entry.model not in self._indexed:
            self._call("put_item", Item={"pk": {"S": "MODELS"}, "sk": {"S": entry.model}})
            self._indexed.add(entry.model)
        model_pk = f"MODEL#{entry.model}"
        for attempt in range(APPEND_ATTEMPTS):
            head = self._head(entry.model)
            if head is None:
                seq, prev = 1, genesis_hash(entry.model, (item["body"]["S"] for item in self._query(
                    model_pk, prefix=LEGACY_PREFIX)))
                head_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                seq, prev = head.seq + 1, head.hash
                head_condition = {"ConditionExpression": "#seq = :seq", "ExpressionAttributeNames": {"#seq": "seq"},
                                  "ExpressionAttributeValues": {":seq": {"N": str(head.seq)}}}
            link = entry_hash(model=entry.model, seq=seq, prev_hash=prev, entry_id=entry_id, body=body)
            item = {"sk": {"S": f"{SEQ_PREFIX}{seq:012d}"}, **columns, "seq": {"N": str(seq)},
                    "prev_hash": {"S": prev}, "entry_hash": {"S": link}}
            items: list[dict[str, Any]] = []
            if idempotency_key is not None:
                items.append({"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                                      "Item": {"pk": {"S": f"KEY#{idempotency_key}"}, "sk": {"S": "KEY"},
                                               "entry_id": {"S": entry_id}, "at": {"N": repr(entry.at)}}}})
            items.append({"Put": {"TableName": self.table, **head_condition,
                                  "Item": {"pk": {"S": model_pk}, "sk": {"S": HEAD_SK}, "seq": {"N": str(seq)},
                                           "entry_hash": {"S": link}}}})
            items.append({"Put": {"TableName": self.table, "Item": {"pk": {"S": model_pk}, **item}}})
            if entry.release_id:
                items.append({"Put": {"TableName": self.table,
                                      "Item": {"pk": {"S": f"RELEASE#{entry.release_id}"}, **item}}})
            try:
                # The request token makes botocore's own retries of this call (say after a timeout
                # whose request did land) succeed without writing twice; each attempt has its own.
                self._call("transact_write_items", TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
            except ClientError as exc:
                codes = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
                if idempotency_key is not None and codes[:1] == ["ConditionalCheckFailed"]:
                    return False
                if _code(exc) == "TransactionCanceledException" and (
                        "TransactionConflict" in codes or "ConditionalCheckFailed" in codes):
                    # Another append moved the head first: read it again, after a short random pause.
                    self.clock.sleep(random.uniform(0.005, 0.02 * min(attempt + 1, 10)))
                    continue
                raise self._error(exc) from exc
            return True
        raise EnvironmentFailedError(CONTENDED.format(table=self.table, region=self.region, model=entry.model,
                                                      attempts=APPEND_ATTEMPTS), hint=CONTENDED_HINT)

    def _head(self, model: str) -> Head | None:
        item = self._call("get_item", Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": HEAD_SK}},
                          ConsistentRead=True).get("Item")
        return Head(int(item["seq"]["N"]), item["entry_hash"]["S"]) if item else None

    def _entries(self, pk: str, cls: type[Entry] | None, where: dict[str, str]) -> list[Entry]:
        conditions = {**({"entry": cls.KIND} if cls is not None else {}), **where}
        # One query of the partition: older entries (ENTRY#) sort before the head, the chain (SEQ#) after it.
        items = self._query(pk, where=conditions)
        return [entry_from_json(item["body"]["S"]) for item in items if item["sk"]["S"] != HEAD_SK]

    def _model_entries(self, model: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        return self._entries(f"MODEL#{model}", cls, where)

    def _release_entries(self, release: str, cls: type[Entry] | None = None, **where: str) -> list[Entry]:
        return self._entries(f"RELEASE#{release}", cls, where)

    # -- tamper evidence -----------------------------------------------------------------------
    keeps_release_copies = True

    def _stored(self, pk: str) -> list[StoredEntry]:
        items = [item for item in self._query(pk) if item["sk"]["S"] != HEAD_SK]
        return [StoredEntry(entry_id=item.get("entry_id", {}).get("S", item["sk"]["S"]), body=item["body"]["S"],
                            seq=int(item["seq"]["N"]) if "seq" in item else None,
                            prev_hash=item.get("prev_hash", {}).get("S"), entry_hash=item.get("entry_hash", {}).get("S"),
                            columns={c: item.get(c, {}).get("S") for c in _CHAIN_COLUMNS})
                for item in items]

    def _snapshot(self, model: str) -> tuple[list[StoredEntry], Head | None]:
        # No transaction spans a query: read the head on both sides of the entries, until no append
        # came between (an append moves the head in the same transaction that adds its entry).
        head = self._head(model)
        for _ in range(5):
            entries = self._stored(f"MODEL#{model}")
            after = self._head(model)
            if after == head:
                break
            head = after
        return entries, head

    def _release_copies(self, release: str) -> list[StoredEntry]:
        return self._stored(f"RELEASE#{release}")

    def models(self) -> tuple[str, ...]:
        return tuple(sorted(item["sk"]["S"] for item in self._query("MODELS")))

    # -- locks ---------------------------------------------------------------------------------
    @staticmethod
    def _lock_key(model: str, environment: str) -> dict[str, Any]:
        return {"pk": {"S": f"LOCK#{model}#{environment}"}, "sk": {"S": "LOCK"}}

    def _lock_item(self, info: LockInfo) -> dict[str, Any]:
        return {**self._lock_key(info.model, info.environment), "token": {"S": info.token},
                "model": {"S": info.model}, "environment": {"S": info.environment},
                "holder": {"S": json.dumps(info.holder.to_dict())},
                "acquired_at": {"N": repr(info.acquired_at)}, "heartbeat_at": {"N": repr(info.heartbeat_at)},
                "ttl_seconds": {"N": repr(info.ttl)}}

    def lock_info(self, model: str, environment: str) -> LockInfo | None:
        item = self._call("get_item", Key=self._lock_key(model, environment), ConsistentRead=True).get("Item")
        if not item:
            return None
        return LockInfo(model=model, environment=environment,
                        holder=LockHolder.from_dict(json.loads(item["holder"]["S"])),
                        acquired_at=float(item["acquired_at"]["N"]), heartbeat_at=float(item["heartbeat_at"]["N"]),
                        token=item["token"]["S"], ttl=float(item["ttl_seconds"]["N"]))

    def _conditional(self, operation: str, **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call(operation, **kwargs)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._error(exc) from exc
        return True

    def _lock_insert(self, info: LockInfo) -> bool:
        return self._conditional("put_item", Item=self._lock_item(info), ConditionExpression="attribute_not_exists(pk)")

    def _lock_replace(self, info: LockInfo, expected_token: str) -> bool:
        return self._conditional("put_item", Item=self._lock_item(info), ConditionExpression="#t = :expected",
                                 ExpressionAttributeNames={"#t": "token"},
                                 ExpressionAttributeValues={":expected": {"S": expected_token}})

    def _lock_touch(self, info: LockInfo, now: float) -> bool:
        return self._conditional("update_item", Key=self._lock_key(info.model, info.environment),
                                 UpdateExpression="SET heartbeat_at = :now", ConditionExpression="#t = :mine",
                                 ExpressionAttributeNames={"#t": "token"},
                                 ExpressionAttributeValues={":now": {"N": repr(now)}, ":mine": {"S": info.token}})

    def _lock_delete(self, info: LockInfo) -> bool:
        return self._conditional("delete_item", Key=self._lock_key(info.model, info.environment),
                                 ConditionExpression="#t = :mine", ExpressionAttributeNames={"#t": "token"},
                                 ExpressionAttributeValues={":mine": {"S": info.token}})


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None
