"""Properties over random histories: a replay after a crash at any point converges, both backends
derive the same answers, and the serving release follows the rules documented in the package."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops.ledger import (
    FAILED,
    IN_PROGRESS,
    LOAD,
    REGRESSION,
    ROLLED_BACK,
    STARTED,
    SUCCEEDED,
    DeploymentStep,
    LedgerBase,
    TestRecord,
    idempotency_key,
    serving_release,
)
from modelops.ledger.dynamo import DynamoLedger
from modelops.ledger.sqlite import SqliteLedger
from tests.ledger.conftest import FakeClock

RELEASES = ["iris-1", "iris-2", "iris-3"]
REGIONS = ["us-east-1", "eu-west-1"]

steps = st.builds(
    DeploymentStep,
    model=st.just("iris"), environment=st.sampled_from(["dev", "prod"]), region=st.sampled_from(REGIONS),
    release=st.sampled_from(RELEASES), step=st.sampled_from(["started", "canary", "done"]),
    status=st.sampled_from([STARTED, IN_PROGRESS, SUCCEEDED, ROLLED_BACK, FAILED]),
    previous_release=st.one_of(st.none(), st.sampled_from(RELEASES)),
)
tests = st.builds(
    TestRecord,
    model=st.just("iris"), release=st.sampled_from(RELEASES), environment=st.sampled_from(["dev", "prod"]),
    region=st.sampled_from(REGIONS), kind=st.sampled_from([REGRESSION, LOAD]), passed=st.booleans(),
    metrics=st.fixed_dictionaries({"p95_ms": st.floats(1, 100)}),
)
histories = st.lists(st.one_of(steps, tests), max_size=25)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def derived(ledger: LedgerBase) -> dict[str, Any]:
    """Every answer the gates, status and rollback read."""
    out: dict[str, Any] = {"status": [s.to_dict() for s in ledger.status()]}
    for env in ("dev", "prod"):
        for region in REGIONS:
            out[f"last_good {env} {region}"] = [ledger.last_good("iris", env, region, before=r) for r in [None, *RELEASES]]
            for r in RELEASES:
                base = ledger.baseline("iris", env, region, exclude_release=r)
                out[f"baseline {env} {region} {r}"] = base.to_dict() if base else None
                out[f"attempt {env} {region} {r}"] = ledger.rollout_attempt("iris", env, region, r)
        for r in RELEASES:
            out[f"gate {env} {r}"] = (ledger.tests_passed(r, env), ledger.tests_passed(r, env, regions=REGIONS))
    return out


@SETTINGS
@given(history=histories, crash_at=st.integers(0, 25))
def test_replaying_a_crashed_run_with_its_keys_converges(history: list[Any], crash_at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        once = SqliteLedger(Path(tmp) / "once.sqlite", clock=FakeClock())
        crashed = SqliteLedger(Path(tmp) / "crashed.sqlite", clock=FakeClock())
        keys = [idempotency_key("run", i) for i in range(len(history))]
        for entry, key in zip(history, keys, strict=True):
            once.append(entry, idempotency_key=key)
        for entry, key in list(zip(history, keys, strict=True))[:crash_at]:
            crashed.append(entry, idempotency_key=key)
        for entry, key in zip(history, keys, strict=True):  # the re-run does everything again
            crashed.append(entry, idempotency_key=key)
        assert crashed.history("iris") == once.history("iris")
        once.close()
        crashed.close()


@settings(SETTINGS, max_examples=8)  # moto is slow; the replay test covers more histories
@given(history=histories)
def test_both_backends_derive_the_same_answers(history: list[Any], dynamodb: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock()
        sqlite = SqliteLedger(Path(tmp) / "ledger.sqlite", clock=clock)
        table = f"ledger-{next(_tables)}"
        dynamo = DynamoLedger(dynamodb, table=table, clock=clock)
        for entry in history:
            sqlite.append(entry)
            dynamo.append(entry)
            clock.advance(1)
        assert dynamo.history("iris") == sqlite.history("iris")
        assert derived(dynamo) == derived(sqlite)
        sqlite.close()


_tables = iter(range(1_000_000))


@given(st.lists(steps.filter(lambda s: s.environment == "dev" and s.region == "us-east-1"), max_size=30))
def test_the_serving_release_follows_the_documented_rules(history: list[DeploymentStep]) -> None:
    serving = serving_release(history)
    terminal = [s for s in history if s.is_terminal]
    if serving is not None:  # a release that succeeded here, or one a rollback said it returned to
        assert any((s.release == serving and s.status == SUCCEEDED) or s.previous_release == serving
                   for s in terminal)
    if terminal and terminal[-1].status == SUCCEEDED:
        assert serving == terminal[-1].release
    if terminal and terminal[-1].status == FAILED:
        assert serving == serving_release(history[: history.index(terminal[-1])])
    if terminal and terminal[-1].status == ROLLED_BACK:
        before = serving_release(history[: history.index(terminal[-1])])
        if before != terminal[-1].release:
            assert serving == before  # rolling back what was not serving changes nothing
        elif terminal[-1].previous_release:
            assert serving == terminal[-1].previous_release
