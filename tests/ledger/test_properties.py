"""Properties over random histories: a replay after a crash at any point converges, both backends
derive the same answers, and the serving release follows the rules documented in the package.

The suite runs few examples to stay fast; to search harder, e.g. before changing derived state::

    MODELOPS_LEDGER_EXAMPLES=2000 .venv/bin/python -m pytest -q tests/ledger/test_properties.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
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
EXAMPLES = int(os.environ.get("MODELOPS_LEDGER_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


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


@settings(SETTINGS, max_examples=max(8, EXAMPLES // 4))  # moto is slow; the replay test covers more histories
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


def expected_after(history: list[DeploymentStep], i: int, before: str | None) -> str | None:
    """What serves after ``history[i]`` given what served before it: the documented rule, one step."""
    s = history[i]
    if s.status == SUCCEEDED:
        return s.release
    if s.status != ROLLED_BACK or before != s.release:  # not terminal, failed, or not what served
        return before
    if s.previous_release:
        return s.previous_release
    latest: dict[str, tuple[int, str]] = {t.release: (j, t.status) for j, t in enumerate(history[: i + 1])
                                          if t.is_terminal}
    good = [(j, r) for r, (j, status) in latest.items() if status == SUCCEEDED and r != s.release]
    return max(good)[1] if good else None


def _here(release: str, status: str, previous: str | None = None) -> DeploymentStep:
    return DeploymentStep("iris", "dev", "us-east-1", release, "started", status, previous_release=previous)


# Terminal steps weighted up: the interesting histories are rollbacks after several successes.
one_place_steps = st.builds(_here, st.sampled_from(RELEASES),
                            st.sampled_from([SUCCEEDED, SUCCEEDED, ROLLED_BACK, ROLLED_BACK, FAILED, STARTED]),
                            st.one_of(st.none(), st.sampled_from(RELEASES)))


@example([  # found by hypothesis: the model compared with an equal earlier step (list.index)
    _here("iris-1", ROLLED_BACK, "iris-2"), _here("iris-1", SUCCEEDED), _here("iris-1", ROLLED_BACK, "iris-2"),
])
@settings(SETTINGS, max_examples=max(100, EXAMPLES))  # pure and fast
@example([_here("iris-1", SUCCEEDED), _here("iris-2", SUCCEEDED), _here("iris-3", SUCCEEDED),
          _here("iris-3", ROLLED_BACK)])  # no previous_release: the most recent other good one, iris-2
@given(st.lists(one_place_steps, max_size=30))
def test_the_serving_release_follows_the_documented_rules(history: list[DeploymentStep]) -> None:
    # Positions, not list.index: equal steps recur (a retried rollback writes the same step again).
    before: str | None = None
    for i in range(len(history)):
        after = serving_release(history[: i + 1])
        assert after == expected_after(history, i, before), (i, history[: i + 1])
        before = after
    if before is not None:  # it succeeded here, or a rollback of the serving release returned to it
        assert any(t.release == before and t.status == SUCCEEDED for t in history) or any(
            t.status == ROLLED_BACK and t.previous_release == before for t in history)

