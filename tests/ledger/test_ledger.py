"""The ledger's contract, run against both backends (SQLite on disk, DynamoDB in moto):
append-only history, idempotent appends, derived serving release, rollback target, gates,
baselines, approvals and locks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelops.errors import ExitStatus, GateError
from modelops.ledger import (
    ABORT,
    FAILED,
    IN_PROGRESS,
    LOAD,
    PAUSE,
    PROMOTE,
    REGRESSION,
    RESUME,
    ROLLED_BACK,
    STARTED,
    SUCCEEDED,
    Approval,
    BuildRecord,
    DeploymentStep,
    LedgerBase,
    LockHeldError,
    LockHolder,
    LockLostError,
    ReleaseBlock,
    ReleaseRecord,
    RolloutIntent,
    TestRecord,
    idempotency_key,
)
from tests.ledger.conftest import FakeClock

M, DEV, PROD, US, EU = "iris", "dev", "prod", "us-east-1", "eu-west-1"


def step(release: str, status: str, *, region: str = US, env: str = DEV, name: str | None = None,
         previous: str | None = None) -> DeploymentStep:
    return DeploymentStep(M, env, region, release, name or status, status, previous_release=previous)


def load(release: str, passed: bool, p95: float, *, region: str = US, env: str = DEV) -> TestRecord:
    return TestRecord(M, release, env, region, LOAD, passed, f"p95 {p95} ms", {"p95_ms": p95, "rps": 100.0})


def deploy(ledger: LedgerBase, release: str, outcome: str, **kw: str) -> None:
    ledger.record_step(step(release, STARTED, **kw))
    ledger.record_step(step(release, outcome, **kw))


# -- history and idempotency ----------------------------------------------------------------------

def test_history_keeps_append_order_and_stamps_time_from_the_clock(ledger: LedgerBase, clock: FakeClock) -> None:
    ledger.record_release(ReleaseRecord(M, "iris-1", "c1", "cfg", "bld", "ada"))
    clock.advance(10)
    ledger.record_build(BuildRecord(M, "iris-1", DEV, US, "img", "s3://b/k.tar.gz", "bld"))
    ledger.record_step(step("iris-1", STARTED))  # same clock reading as the build: order kept anyway
    ledger.record_step(step("iris-1", SUCCEEDED))
    ledger.record_release(ReleaseRecord("other", "other-1", "c1", "cfg", "bld", "ada"))

    entries = ledger.history(M)
    assert [e.KIND for e in entries] == ["release", "build", "step", "step"]
    assert [e.at for e in entries] == [clock.t - 10, clock.t, clock.t, clock.t]
    assert [getattr(e, "status", None) for e in entries] == [None, None, STARTED, SUCCEEDED]
    assert ledger.models() == ("iris", "other")


def test_history_filters_by_environment_region_and_release(ledger: LedgerBase) -> None:
    ledger.record_release(ReleaseRecord(M, "iris-1", "c1", "cfg", "bld", "ada"))
    deploy(ledger, "iris-1", SUCCEEDED)
    deploy(ledger, "iris-1", SUCCEEDED, env=PROD, region=EU)
    ledger.record_approval(Approval(M, "iris-1", PROD, "bob"))

    prod = ledger.history(M, environment=PROD)
    assert {getattr(e, "environment", None) for e in prod} == {None, PROD}  # the release record has none
    assert len(ledger.history(M, environment=PROD, region=US)) == 2  # release + approval
    assert len(ledger.history(M, release="iris-1")) == 6
    assert ledger.history(M, release="iris-2") == ()


def test_an_idempotency_key_appends_once(ledger: LedgerBase) -> None:
    key = idempotency_key("step", M, DEV, US, "iris-1", 1, "model-created")
    assert ledger.record_step(step("iris-1", IN_PROGRESS, name="model-created"), idempotency_key=key)
    assert not ledger.record_step(step("iris-1", IN_PROGRESS, name="model-created"), idempotency_key=key)
    assert ledger.record_step(step("iris-1", IN_PROGRESS, name="model-created"))  # keyless: appended
    assert len(ledger.steps(M, DEV, US)) == 2


def test_releases_and_approvals_have_natural_keys(ledger: LedgerBase) -> None:
    release = ReleaseRecord(M, "iris-1", "c1", "cfg", "bld", "ada")
    assert ledger.record_release(release)
    assert not ledger.record_release(release)  # a rebuild of the same release adds nothing
    assert ledger.record_approval(Approval(M, "iris-1", PROD, "bob", "ok"))
    assert not ledger.record_approval(Approval(M, "iris-1", PROD, "bob", "ok again"))
    assert ledger.record_approval(Approval(M, "iris-1", PROD, "carol"))
    assert ledger.release("iris-1") == ledger.releases(M)[0]
    assert ledger.release("iris-1").commit == "c1"  # type: ignore[union-attr]
    assert ledger.release("iris-2") is None
    assert [a.by for a in ledger.approvals("iris-1", PROD)] == ["bob", "carol"]
    assert ledger.approvals("iris-1", "staging") == ()


def test_builds_keep_the_latest_per_region(ledger: LedgerBase) -> None:
    ledger.record_build(BuildRecord(M, "iris-1", PROD, US, "img-us", "s3://b/us", "d1"))
    ledger.record_build(BuildRecord(M, "iris-1", PROD, EU, "img-eu", "s3://b/eu", "d1"))
    ledger.record_build(BuildRecord(M, "iris-1", PROD, EU, "img-eu", "s3://b/eu", "d1"))  # retried: no-op
    ledger.record_build(BuildRecord(M, "iris-1", DEV, US, "img-dev", "s3://b/dev", "d1"))
    assert len(ledger.history(M)) == 3
    assert sorted(b.image_uri for b in ledger.builds("iris-1", PROD)) == ["img-eu", "img-us"]
    assert len(ledger.builds("iris-1")) == 3


# -- serving release and rollback target ----------------------------------------------------------

def test_serving_release_follows_rollouts_and_rollbacks(ledger: LedgerBase) -> None:
    assert ledger.current(M, DEV, US) is None
    deploy(ledger, "iris-1", SUCCEEDED)
    deploy(ledger, "iris-2", SUCCEEDED)
    assert ledger.current(M, DEV, US).release == "iris-2"  # type: ignore[union-attr]

    deploy(ledger, "iris-3", ROLLED_BACK)  # alarm during the canary: iris-2 kept serving
    state = ledger.current(M, DEV, US)
    assert state is not None and state.release == "iris-2" and state.last_step.status == ROLLED_BACK  # type: ignore[union-attr]
    assert ledger.last_good(M, DEV, US) == "iris-2"
    assert ledger.last_good(M, DEV, US, before="iris-2") == "iris-1"

    ledger.record_step(step("iris-4", STARTED))
    state = ledger.current(M, DEV, US)
    assert state is not None and state.in_progress and state.release == "iris-2"
    ledger.record_step(step("iris-4", FAILED))
    assert ledger.current(M, DEV, US).release == "iris-2"  # type: ignore[union-attr]


def test_rolling_back_a_region_that_had_moved_returns_to_its_previous_release(ledger: LedgerBase) -> None:
    deploy(ledger, "iris-1", SUCCEEDED, env=PROD, region=EU)
    deploy(ledger, "iris-2", SUCCEEDED, env=PROD, region=EU)
    ledger.record_step(step("iris-2", ROLLED_BACK, env=PROD, region=EU, previous="iris-1"))
    assert ledger.current(M, PROD, EU).release == "iris-1"  # type: ignore[union-attr]
    assert ledger.last_good(M, PROD, EU) == "iris-1"  # iris-2 was rolled back: not good any more
    # Without previous_release the last good release other than the rolled-back one serves.
    deploy(ledger, "iris-3", SUCCEEDED, env=PROD, region=EU)
    ledger.record_step(step("iris-3", ROLLED_BACK, env=PROD, region=EU))
    assert ledger.current(M, PROD, EU).release == "iris-1"  # type: ignore[union-attr]
    assert ledger.last_good(M, PROD, EU, before="iris-1") is None


def test_a_rollback_to_a_release_never_seen_succeeding_here_serves_it(ledger: LedgerBase) -> None:
    """Found by hypothesis. iris-2 served before the ledger knew (the endpoint's tag named it when
    iris-1 started); rolling iris-1 back returns to it, and deploy writes ROLLED_BACK only once that
    move has completed: iris-2 serves, though it is no rollback target of its own."""
    ledger.record_step(step("iris-1", ROLLED_BACK, previous="iris-2"))  # iris-1 was not serving: no change
    assert ledger.current(M, DEV, US).release is None  # type: ignore[union-attr]
    ledger.record_step(step("iris-1", SUCCEEDED, previous="iris-2"))
    ledger.record_step(step("iris-1", ROLLED_BACK, previous="iris-2"))
    assert ledger.current(M, DEV, US).release == "iris-2"  # type: ignore[union-attr]
    assert ledger.last_good(M, DEV, US, before="iris-2") is None


def test_redeploying_an_old_release_makes_it_current_and_good_again(ledger: LedgerBase) -> None:
    deploy(ledger, "iris-1", SUCCEEDED)
    deploy(ledger, "iris-2", SUCCEEDED)
    deploy(ledger, "iris-1", SUCCEEDED)  # `modelops rollback`
    ledger.record_step(step("iris-2", ROLLED_BACK, name="manual-rollback"))
    assert ledger.current(M, DEV, US).release == "iris-1"  # type: ignore[union-attr]
    assert ledger.last_good(M, DEV, US, before="iris-1") is None


def test_regions_and_environments_are_independent(ledger: LedgerBase) -> None:
    deploy(ledger, "iris-1", SUCCEEDED, env=PROD, region=US)
    deploy(ledger, "iris-2", ROLLED_BACK, env=PROD, region=US)
    deploy(ledger, "iris-2", SUCCEEDED, env=PROD, region=EU)
    deploy(ledger, "iris-2", SUCCEEDED, env=DEV, region=US)
    deploy(ledger, "other-1", SUCCEEDED)  # a step of another model (model field is "iris" via helper)
    states = {(s.environment, s.region): s.release for s in ledger.status(M)}
    assert states == {(DEV, US): "other-1", (PROD, EU): "iris-2", (PROD, US): "iris-1"}
    assert [s.model for s in ledger.status()] == [M, M, M]


def test_rollout_attempt_counts_finished_rollouts_of_a_release(ledger: LedgerBase) -> None:
    assert ledger.rollout_attempt(M, DEV, US, "iris-1") == 1
    ledger.record_step(step("iris-1", STARTED))
    assert ledger.rollout_attempt(M, DEV, US, "iris-1") == 1  # a crashed re-run continues attempt 1
    ledger.record_step(step("iris-1", SUCCEEDED))
    assert ledger.rollout_attempt(M, DEV, US, "iris-1") == 2
    assert ledger.rollout_attempt(M, DEV, EU, "iris-1") == 1


# -- blocked releases and rollout intents ----------------------------------------------------------

def test_a_rolled_back_release_stays_blocked_in_its_environment_until_unblocked(ledger: LedgerBase,
                                                                                clock: FakeClock) -> None:
    assert ledger.block("iris-2", PROD) is None
    assert ledger.record_block(ReleaseBlock(M, "iris-2", PROD, True, "ada@example.com", "alarm 5xx-rate", region=US))
    clock.advance(1)
    # The rollback seen again (another region, a re-run): still one block.
    assert not ledger.record_block(ReleaseBlock(M, "iris-2", PROD, True, "modelops", "restored", region=EU))
    block = ledger.block("iris-2", PROD)
    assert block is not None and block.by == "ada@example.com" and block.region == US and block.reason == "alarm 5xx-rate"
    assert ledger.block("iris-2", DEV) is None and ledger.block("iris-3", PROD) is None  # per release and environment

    assert ledger.record_block(ReleaseBlock(M, "iris-2", PROD, False, "bob@example.com", "fixed the data source"))
    assert ledger.block("iris-2", PROD) is None
    assert not ledger.record_block(ReleaseBlock(M, "iris-2", PROD, False, "bob@example.com", "again"))  # nothing to lift
    assert ledger.record_block(ReleaseBlock(M, "iris-2", PROD, True, "modelops", "rolled back again", region=US))
    assert ledger.block("iris-2", PROD).reason == "rolled back again"  # type: ignore[union-attr]
    kinds = [(e.KIND, getattr(e, "blocked", None)) for e in ledger.history(M, release="iris-2")]
    assert kinds == [("block", True), ("block", False), ("block", True)]
    assert [e.to_dict()["entry"] for e in ledger.history(M)] == ["block"] * 3


def test_rollout_intents_hold_until_the_attempt_ends_or_the_release_is_unblocked(ledger: LedgerBase) -> None:
    def intent(action: str, region: str = US, release: str = "iris-2") -> RolloutIntent:
        return RolloutIntent(M, PROD, region, release, action, "ada@example.com", f"{action} please")

    assert ledger.rollout_control(M, PROD, US, "iris-2").paused is None
    ledger.record_step(step("iris-2", STARTED, env=PROD))
    ledger.record_intent(intent(PAUSE))
    ledger.record_intent(intent(PAUSE, region=EU))  # a region of the next wave, not started yet
    control = ledger.rollout_control(M, PROD, US, "iris-2")
    assert control.paused is not None and control.paused.by == "ada@example.com" and control.abort is None
    assert ledger.rollout_control(M, PROD, EU, "iris-2").paused is not None  # held before its first step
    assert ledger.rollout_control(M, PROD, US, "iris-3").paused is None  # another release's rollout

    ledger.record_intent(intent(RESUME))
    assert ledger.rollout_control(M, PROD, US, "iris-2").paused is None
    ledger.record_intent(intent(PAUSE))
    ledger.record_intent(intent(PROMOTE))  # promote lifts a pause
    control = ledger.rollout_control(M, PROD, US, "iris-2")
    assert control.paused is None and control.promote is not None

    ledger.record_intent(intent(ABORT))
    assert ledger.rollout_control(M, PROD, US, "iris-2").abort is not None
    ledger.record_step(step("iris-2", ROLLED_BACK, env=PROD))  # the attempt ended: its intents are spent
    assert ledger.rollout_control(M, PROD, US, "iris-2") == ledger.rollout_control(M, PROD, US, "iris-9")
    assert ledger.rollout_control(M, PROD, EU, "iris-2").paused is not None  # EU never ran: still held

    ledger.record_block(ReleaseBlock(M, "iris-2", PROD, True, "modelops", "aborted", region=US))
    ledger.record_block(ReleaseBlock(M, "iris-2", PROD, False, "bob@example.com", "fixed"))
    assert ledger.rollout_control(M, PROD, EU, "iris-2").paused is None  # unblocking starts afresh
    with pytest.raises(ValueError, match="not one of"):
        intent("skip")


# -- gates and baselines ---------------------------------------------------------------------------

def test_tests_passed_fails_closed_and_needs_every_region_and_kind(ledger: LedgerBase) -> None:
    assert not ledger.tests_passed("iris-1", DEV)  # nothing recorded
    ledger.record_test(TestRecord(M, "iris-1", PROD, US, REGRESSION, True))
    assert not ledger.tests_passed("iris-1", PROD)  # load missing
    assert ledger.tests_passed("iris-1", PROD, kinds=[REGRESSION])
    ledger.record_test(load("iris-1", True, 10, env=PROD))
    assert ledger.tests_passed("iris-1", PROD)
    assert not ledger.tests_passed("iris-1", PROD, regions=[US, EU])  # eu-west-1 not tested
    ledger.record_test(TestRecord(M, "iris-1", PROD, EU, REGRESSION, False, "case 3 failed"))
    ledger.record_test(load("iris-1", True, 10, env=PROD, region=EU))
    assert not ledger.tests_passed("iris-1", PROD, regions=[US, EU])
    ledger.record_test(TestRecord(M, "iris-1", PROD, EU, REGRESSION, True))  # re-run passed: latest wins
    assert ledger.tests_passed("iris-1", PROD, regions=[US, EU])
    assert not ledger.tests_passed("iris-1", DEV)
    assert not ledger.tests_passed("iris-1", PROD, kinds=[])
    results = ledger.test_results("iris-1", PROD)
    assert [(t.region, t.kind, t.passed) for t in results] == [
        (EU, LOAD, True), (EU, REGRESSION, True), (US, LOAD, True), (US, REGRESSION, True)]


def test_a_later_failure_closes_the_gate(ledger: LedgerBase) -> None:
    ledger.record_test(TestRecord(M, "iris-1", DEV, US, REGRESSION, True))
    ledger.record_test(load("iris-1", True, 10))
    assert ledger.tests_passed("iris-1", DEV)
    ledger.record_test(load("iris-1", False, 900))
    assert not ledger.tests_passed("iris-1", DEV)


def test_baseline_is_the_last_passing_load_test_of_another_release(ledger: LedgerBase) -> None:
    assert ledger.baseline(M, DEV, US, exclude_release="iris-3") is None
    ledger.record_test(load("iris-1", True, 10))
    ledger.record_test(load("iris-2", True, 12))
    ledger.record_test(load("iris-2", False, 50))  # a failing run is no baseline
    ledger.record_test(TestRecord(M, "iris-2", DEV, US, REGRESSION, True))  # not a load test
    ledger.record_test(load("iris-9", True, 1, region=EU))  # another region
    ledger.record_test(load("iris-9", True, 1, env=PROD))  # another environment
    ledger.record_test(load("iris-3", True, 30))  # the release under test itself
    ledger.record_test(TestRecord(M, "iris-4", DEV, US, LOAD, True, "no load profile: skipped"))  # no figures
    base = ledger.baseline(M, DEV, US, exclude_release="iris-3")
    assert base is not None and base.release == "iris-2" and base.metrics["p95_ms"] == 12.0
    assert ledger.baseline(M, DEV, US, exclude_release="iris-2").release == "iris-3"  # type: ignore[union-attr]
    # The trend: the last load runs with figures there, of any release, passed or not, oldest first.
    runs = ledger.load_runs(M, DEV, US, last=4)
    assert [(t.release, t.passed, t.metrics["p95_ms"]) for t in runs] == [
        ("iris-1", True, 10.0), ("iris-2", True, 12.0), ("iris-2", False, 50.0), ("iris-3", True, 30.0)]
    assert [t.release for t in ledger.load_runs(M, DEV, US, last=2)] == ["iris-2", "iris-3"]
    assert ledger.load_runs(M, DEV, US, last=0) == ()


def test_a_judged_step_is_kept_whole_and_read_back_by_release(ledger: LedgerBase) -> None:
    from modelops.ledger import JudgmentRecord, entry_from_json
    from modelops.ledger.records import JUDGMENT_TEXT_LIMIT

    judgment = {"reference": "iris-1", "candidate": "iris-2", "outcome": "pass", "rounds": 3, "summary": "pass",
                "verdicts": [{"metric": "agreement", "candidate": 0.95, "gated": False}],
                "worst": [{"request": "q=1 password=s3cr3t", "reference": "a" * 5000, "candidate": "b",
                           "detail": "$.label: 'a' vs 'b'", "score": None}]}
    ledger.record_judgment(JudgmentRecord(M, "iris-2", DEV, US, "iris-1", 50, "pass", judgment))
    ledger.record_judgment(JudgmentRecord(M, "iris-2", PROD, US, "iris-0", 100, "fail", judgment))
    ledger.record_judgment(JudgmentRecord(M, "iris-3", DEV, US, "iris-1", 50, "fail", judgment))
    [dev] = ledger.judgments("iris-2", DEV)
    assert (dev.reference, dev.percent, dev.outcome, dev.judgment["rounds"]) == ("iris-1", 50, "pass", 3)
    worst = dev.judgment["worst"][0]
    assert worst["request"] == "q=1 password=***"  # redacted like every free text of the ledger
    assert len(worst["reference"]) == JUDGMENT_TEXT_LIMIT + 3  # cut: a record stays small
    assert [j.environment for j in ledger.judgments("iris-2")] == [DEV, PROD]
    assert entry_from_json(dev.to_json()) == dev
    assert ledger.verify(M).ok


# -- locks -----------------------------------------------------------------------------------------

def test_a_held_lock_refuses_a_second_holder_naming_the_first_and_its_age(ledger: LedgerBase,
                                                                           clock: FakeClock) -> None:
    with ledger.lock(M, PROD, heartbeat=False) as held:
        assert held.took_over is None
        assert ledger.lock_info(M, PROD).holder.user == "ada@example.com"  # type: ignore[union-attr]
        clock.advance(192)
        with pytest.raises(LockHeldError) as err:
            ledger.acquire_lock(M, PROD, LockHolder("bob@example.com", "ci-7", 99))
        assert isinstance(err.value, GateError) and err.value.exit_status == ExitStatus.GATE_FAILED
        assert str(err.value) == f"iris in prod is locked by ada@example.com on {held.info.holder.host} " \
                                 f"(pid {held.info.holder.pid}) for 3m12s"
        assert err.value.hint and "wait for it to finish" in err.value.hint
        assert "\n" not in str(err.value)
        with ledger.lock(M, DEV, heartbeat=False), ledger.lock("other", PROD, heartbeat=False):
            pass  # other environments and models are not affected
    assert ledger.lock_info(M, PROD) is None
    with ledger.lock(M, PROD, heartbeat=False):
        pass


def test_a_lock_is_released_when_the_block_raises(ledger: LedgerBase) -> None:
    with pytest.raises(RuntimeError), ledger.lock(M, DEV, heartbeat=False):
        raise RuntimeError("rollout broke")
    assert ledger.lock_info(M, DEV) is None


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(ledger: LedgerBase) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = LockHolder.current("crashed@example.com")
    dead = LockHolder(dead.user, dead.host, proc.pid)
    ledger.acquire_lock(M, DEV, dead, heartbeat=False)  # never released: as after kill -9
    with ledger.lock(M, DEV, heartbeat=False) as held:
        assert held.took_over is not None and held.took_over.holder == dead
        assert held.info.holder.pid != proc.pid


def test_a_lock_from_another_host_expires_without_heartbeat(ledger: LedgerBase, clock: FakeClock) -> None:
    remote = LockHolder("bob@example.com", "jenkins-agent-3", 4242)
    ledger.acquire_lock(M, PROD, remote, ttl=300, heartbeat=False)
    clock.advance(299)
    with pytest.raises(LockHeldError, match="jenkins-agent-3 \\(pid 4242\\) for 4m59s"):
        ledger.acquire_lock(M, PROD, ttl=300, heartbeat=False)
    clock.advance(2)
    held = ledger.acquire_lock(M, PROD, ttl=300, heartbeat=False)
    assert held.took_over is not None and held.took_over.holder == remote
    held.release()


def test_a_heartbeat_keeps_a_lock_from_expiring(ledger: LedgerBase, clock: FakeClock) -> None:
    remote = LockHolder("bob@example.com", "jenkins-agent-3", 4242)
    held = ledger.acquire_lock(M, PROD, remote, ttl=300, heartbeat=False)
    clock.advance(250)
    assert ledger._lock_touch(held.info, clock.now())  # what the heartbeat thread does
    clock.advance(250)
    with pytest.raises(LockHeldError):
        ledger.acquire_lock(M, PROD, ttl=300, heartbeat=False)


def test_the_heartbeat_thread_refreshes_the_lock(ledger: LedgerBase, clock: FakeClock) -> None:
    import time

    held = ledger.acquire_lock(M, PROD, ttl=0.2)  # beats every 50 ms
    clock.advance(100)
    deadline = time.monotonic() + 10
    while ledger.lock_info(M, PROD).heartbeat_at != clock.t and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.02)
    assert ledger.lock_info(M, PROD).heartbeat_at == clock.t  # type: ignore[union-attr]
    held.release()
    assert ledger.lock_info(M, PROD) is None


def test_a_run_whose_lock_was_taken_over_learns_it(ledger: LedgerBase, clock: FakeClock) -> None:
    paused = ledger.acquire_lock(M, PROD, LockHolder("bob", "other-host", 1), ttl=60, heartbeat=False)
    paused.check()
    clock.advance(61)
    with ledger.lock(M, PROD, heartbeat=False):
        with pytest.raises(LockLostError, match="took it over"):
            paused.check()
        paused.release()  # must not free the new holder's lock
        assert ledger.lock_info(M, PROD) is not None


def test_break_lock_removes_any_holder(ledger: LedgerBase) -> None:
    assert ledger.break_lock(M, DEV) is None
    ledger.acquire_lock(M, DEV, LockHolder("bob", "elsewhere", 7), heartbeat=False)
    removed = ledger.break_lock(M, DEV)
    assert removed is not None and removed.holder.host == "elsewhere"
    assert ledger.lock_info(M, DEV) is None
