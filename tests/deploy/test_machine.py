"""The rollout step machine, scenario by scenario (given an observation, when deciding, then one step)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelops.deploy.machine import Action, EndpointView, RegionObservation, VariantWeight, next_step

NEW, OLD = "iris-prod-new-ec", "iris-prod-old-ec"


def endpoint(status: str = "InService", config: str = OLD, *, modified: float = 100.0, release: str | None = "old",
             reason: str | None = None, weights: tuple[VariantWeight, ...] = ()) -> EndpointView:
    return EndpointView("iris-prod", status, config, modified, reason, None, weights, release)


def obs(ep: EndpointView | None, **kw: object) -> RegionObservation:
    base = RegionObservation(target_config=NEW, target_release="new", model_exists=True, config_exists=True,
                             alarms_in_place=True, endpoint=ep)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_creates_model_config_alarms_then_endpoint_in_that_order() -> None:
    assert next_step(obs(None, model_exists=False, config_exists=False)).action == Action.CREATE_MODEL
    assert next_step(obs(None, config_exists=False)).action == Action.CREATE_CONFIG
    assert next_step(obs(None, alarms_in_place=False)).action == Action.PUT_ALARMS
    assert next_step(obs(None)).action == Action.CREATE_ENDPOINT


def test_an_in_service_endpoint_on_another_config_is_updated() -> None:
    assert next_step(obs(endpoint())).action == Action.UPDATE_ENDPOINT


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_waits_while_the_endpoint_is_busy(status: str) -> None:
    green = VariantWeight("green", NEW, "primary", 0.5, 1.0, 1, ("Baking",))
    step = next_step(obs(endpoint(status, weights=(green,)), update_sent_at=90.0))
    assert step.action == Action.WAIT
    if status == "Updating":
        assert step.reason == "Updating: green Baking, weight 0.5 of 1"


def test_in_service_on_the_target_config_with_its_tag_is_success() -> None:
    assert next_step(obs(endpoint(config=NEW, release="new"), update_sent_at=90.0)).action == Action.SUCCEEDED


def test_in_service_on_the_target_config_without_the_release_tag_is_tagged_first() -> None:
    assert next_step(obs(endpoint(config=NEW, release="old"), update_sent_at=90.0)).action == Action.TAG_ENDPOINT


def test_in_service_on_the_old_config_after_our_update_is_a_rollback_not_success() -> None:
    """The Terraform bug: InService alone is not success when the update was rolled back."""
    step = next_step(obs(endpoint(modified=120.0, reason="alarm modelops-iris-prod-5xx-rate in ALARM"),
                         update_sent_at=100.0))
    assert step.action == Action.ROLLED_BACK
    assert "5xx-rate" in step.reason


def test_a_rolling_back_seen_on_the_way_is_a_rollback() -> None:
    assert next_step(obs(endpoint(modified=50.0), rolling_back_seen=True)).action == Action.ROLLED_BACK


def test_an_update_recorded_but_never_sent_before_a_crash_is_sent_again() -> None:
    """The intent is in the ledger, but the endpoint has not changed since: the call never happened."""
    assert next_step(obs(endpoint(modified=50.0), update_sent_at=100.0)).action == Action.UPDATE_ENDPOINT


def test_a_failed_endpoint_from_before_is_deleted_then_created() -> None:
    assert next_step(obs(endpoint("Failed", NEW, modified=50.0))).action == Action.DELETE_ENDPOINT
    assert next_step(obs(None, delete_sent_at=60.0)).action == Action.CREATE_ENDPOINT


def test_an_endpoint_this_attempt_created_that_failed_is_a_failure() -> None:
    step = next_step(obs(endpoint("Failed", NEW, modified=105.0, reason="ping health check failed"),
                         create_sent_at=100.0))
    assert step == replace(step, action=Action.FAILED)
    assert step.reason == "ping health check failed"


def test_a_failed_rollback_is_a_failure() -> None:
    assert next_step(obs(endpoint("UpdateRollbackFailed"))).action == Action.FAILED


def test_waits_for_a_firing_alarm_before_updating() -> None:
    step = next_step(obs(endpoint(), alarms_firing=("modelops-iris-prod-5xx-rate",)))
    assert step.action == Action.WAIT
    assert "in ALARM" in step.reason


def test_autoscaling_registered_after_the_new_fleet_serves() -> None:
    ep = endpoint(config=NEW, release="new")
    assert next_step(obs(ep, autoscaling_in_place=False)).action == Action.SCALE
    assert next_step(obs(ep, autoscaling_in_place=True)).action == Action.SUCCEEDED


@pytest.mark.parametrize(("status", "serving"), [("InService", "old"), ("Updating", "old"), ("RollingBack", "old"),
                                                 ("Creating", None), ("Failed", None), ("OutOfService", None)])
def test_only_an_endpoint_that_has_been_up_serves_its_tagged_release(status: str, serving: str | None) -> None:
    # A Failed endpoint is tagged with the release it was created for; rolling back to it would
    # bring back a release that never worked.
    assert endpoint(status).serving_release == serving


# -- what people ask of a rollout in flight (modelops rollout ...) --------------------------------

def _asked(action: str, by: str = "ada@example.com") -> object:
    from modelops.ledger.records import RolloutControl, RolloutIntent

    return RolloutControl.of([RolloutIntent("iris", "prod", "us-east-1", "new", action, by, "wrong answers")])


def test_a_pause_holds_before_the_update_but_not_before_making_the_model() -> None:
    paused = _asked("pause")
    step = next_step(obs(endpoint(), control=paused))
    assert step.action == Action.WAIT and step.reason.startswith("paused by ada@example.com: wrong answers")
    assert "holding before update-endpoint" in step.reason
    assert next_step(obs(None, model_exists=False, control=paused)).action == Action.CREATE_MODEL  # moves no traffic
    # An update SageMaker is making cannot be held: the machine goes on waiting for it like any other.
    green = VariantWeight("green", NEW, "primary", 0.5, 1.0, 1, ("Baking",))
    assert next_step(obs(endpoint("Updating", weights=(green,)), control=paused)).reason.startswith("Updating")


def test_an_abort_forces_the_rollback_alarm_while_sagemaker_bakes_and_then_is_a_rollback() -> None:
    aborted = _asked("abort")
    baking = replace(endpoint("Updating"), pending_config=NEW)
    step = next_step(obs(baking, control=aborted, rollback_alarms=("modelops-iris-prod-5xx-rate",), update_sent_at=90.0))
    assert (step.action, step.reason) == (Action.FORCE_ROLLBACK, "aborted by ada@example.com: wrong answers")
    # Without rollback alarms (no bake) there is nothing to force: wait for the update to end.
    assert next_step(obs(baking, control=aborted, update_sent_at=90.0)).action == Action.WAIT
    # SageMaker rolled back: the abort is done.
    back = next_step(obs(endpoint(modified=120.0), control=aborted, update_sent_at=100.0, rolling_back_seen=True))
    assert back.action == Action.ROLLED_BACK and back.reason.startswith("aborted by")


def test_an_abort_after_the_update_went_through_or_before_it_was_sent_is_aborted() -> None:
    aborted = _asked("abort")
    assert next_step(obs(endpoint(config=NEW, release="new"), control=aborted)).action == Action.ABORTED  # take back
    assert next_step(obs(endpoint(), control=aborted)).action == Action.ABORTED  # nothing moved
    assert next_step(obs(None, control=aborted)).action == Action.ABORTED


def test_counts_or_weights_changed_out_of_band_are_set_back_in_place() -> None:
    on_target = endpoint(config=NEW, release="new")
    assert next_step(obs(on_target, capacity_in_place=False)).action == Action.SET_CAPACITY
    failed = next_step(obs(on_target, capacity_in_place=False, rolling_back_seen=True))
    assert failed.action == Action.FAILED and "was rolled back" in failed.reason

