"""Endpoints and their deployments: the resource registry and the reconcile loop.

Words used below (the spec's): the *fleet* of an endpoint is what serves it now (blue during an
update); a *deployment* (``pending``) is what is being brought up: the first fleet of a new endpoint,
the green fleet of a blue/green update, the new instances of a rolling update, or a change of
weights and instance counts. A deployment moves through *phases*; the reconcile loop (a background
thread) takes at most one step per endpoint per pass, persists the document when it changes, and
publishes the routing table the runtime reads. Passes come every tick, and sooner when something is
due: a phase that ends before the next tick (a bake of 4 s ends at 4 s, not at the tick after), an
instance starting (its ping is tried more often), an endpoint that took a step (its next phase may
have no length: a traffic shift, a bake of 0 s; a few passes in a row at most), a control-plane
write (UpdateEndpoint...). Any pass may be the last before a crash: a restarted server reloads the
documents, restarts their instances, and carries on from the recorded phase.

Nothing is lost when a write fails (a full disk): a step works on a copy of the endpoint's document,
which replaces the one in memory only once it is saved (:meth:`Endpoints.commit`); the instances a
step retires are stopped after that, and those it started are stopped again when the save fails, so
the next pass takes the same step from the same state. The documents are the truth about instances:
a restart brings back the instances they name, and only those.

How long the service's own phases take (provisioning an instance, shifting traffic, retiring a fleet,
rolling back, deleting) comes from the timing profile (``timing.Timing``): next to nothing by
default, SageMaker's proportions with ``--timing aws``.

Phases of an update: ``provision`` (start the new instances) -> ``health`` (all pings pass) ->
``shift`` (move the next share of traffic) -> ``bake`` (WaitIntervalInSeconds, alarms watched) ->
``shift`` ... -> ``terminate_wait`` (TerminationWaitInSeconds) -> done. Rolling updates provision a
batch, shift its share, retire as many old instances, bake, and repeat. A rollback
(``rollback`` -> ``rollback_drain``) returns all traffic to blue, terminates green and ends
InService on the old config with the reason in FailureReason.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from modelops.localcloud.runtime_api import Route, RouteEntry, RuntimeApi
from modelops.localcloud.state import StateUnavailable, Store
from modelops.localcloud.supervisor import FAILED, HEALTHY, STARTING, InstanceSpec, Supervisor
from modelops.localcloud.timing import FAST, Timing
from modelops.runtime import Clock, SystemClock

log = logging.getLogger("modelops.localcloud.endpoints")

TICK_S = 0.1
STARTING_TICK_S = 0.02  # while an instance starts: the ping that first passes is tried this soon
BURST_PASSES = 8  # passes in a row, with no tick between, while endpoints take steps
DRAIN_S = 1.0  # an instance leaves the routes this long before it is terminated: requests in flight finish

ALARM_ROLLBACK = ("Rolled back the update because the alarm(s) {alarms} went into ALARM state while baking; "
                  "the endpoint serves {config} again")
TIMEOUT_ROLLBACK = ("Rolled back the update because it did not finish within MaximumExecutionTimeoutInSeconds "
                    "({seconds} s); the endpoint serves {config} again")
GREEN_FAILED = "Rolled back the update: the new fleet could not start. {reason}"
CAPACITY_ROLLBACK = "Rolled back the change of instance counts and weights: {reason}"

# One change of the registry: (kind, key, the new document or None to delete it). Kinds: model,
# endpoint-config, endpoint (key: region, lower-cased name) and tags (key: "", ARN; document {"Tags": [...]}).
Change = tuple[str, tuple[str, str], Any]


class Endpoints:
    """The registry of models, endpoint configs, endpoints and tags, and the reconcile loop."""

    def __init__(self, data_dir: Path, store: Store, supervisor: Supervisor, cloudwatch: Any,
                 runtime: RuntimeApi, *, clock: Clock | None = None, timing: Timing = FAST):
        self.data_dir = data_dir
        self.store = store
        self.supervisor = supervisor
        self.cloudwatch = cloudwatch
        self.runtime = runtime
        self.clock: Clock = clock or SystemClock()
        self.timing = timing
        self.lock = threading.RLock()
        self.models = store.load("model")
        self.configs = store.load("endpoint-config")
        self.endpoints = store.load("endpoint")
        self.tags: dict[str, list[dict[str, str]]] = {
            name: doc["Tags"] for (_r, name), doc in store.load("tags").items()}
        self._stop = threading.Event()
        self._wake = threading.Event()  # a control-plane write: the next pass now, not at the next tick
        self._due = math.inf  # when the soonest phase waited on in this pass ends (the clock's time)
        self._thread: threading.Thread | None = None
        self._dirty = True
        self._started: list[str] = []  # instances the step under way started
        self._retiring: list[tuple[str, float]] = []  # instances it retires (with their drain) once saved

    # ------------------------------------------------------------------ persistence

    def commit(self, changes: Iterable[Change]) -> None:
        """Save ``changes`` in one transaction, then apply them to memory (StateUnavailable, and memory
        untouched, when the save fails)."""
        changes = list(changes)
        self.store.write([(kind, key[0], key[1], doc) for kind, key, doc in changes])
        for kind, key, doc in changes:
            if kind == "tags":
                if doc is None:
                    self.tags.pop(key[1], None)
                else:
                    self.tags[key[1]] = doc["Tags"]
                continue
            table = {"model": self.models, "endpoint-config": self.configs, "endpoint": self.endpoints}[kind]
            if doc is None:
                table.pop(key, None)
            else:
                table[key] = doc
        self._dirty = True
        if threading.current_thread() is not self._thread:
            self._wake.set()

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        referenced = {iid for doc in self.endpoints.values()
                      for variant in [*doc["fleet"], *((doc.get("pending") or {}).get("variants") or [])]
                      for iid in variant["instances"]}
        self.supervisor.restore(referenced)
        self._publish()
        self._thread = threading.Thread(target=self._run, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        burst = 0
        while not self._stop.is_set():
            stepped = False
            self._due = math.inf
            try:
                changed = self.supervisor.tick()
                with self.lock:
                    for key in list(self.endpoints):
                        if self.reconcile_endpoint(key):
                            changed = stepped = True
                    if changed or self._dirty:
                        self._dirty = False
                        self._publish()
            except Exception:  # a bug must not stop every endpoint; it is logged and retried
                log.exception("reconcile pass failed")
            burst = burst + 1 if stepped and burst < BURST_PASSES else 0
            if not burst:
                self._wake.wait(self._pause())
                self._wake.clear()

    def _pause(self) -> float:
        """Seconds until the next pass: a tick, or less when a phase ends sooner or an instance starts."""
        pause = STARTING_TICK_S if self.supervisor.is_starting() else TICK_S
        return max(0.0, min(pause, self._due - self._now()))

    def kick(self) -> None:
        """Something changed (a control-plane call): rebuild routes on the next pass."""
        self._dirty = True

    # ------------------------------------------------------------------ routes

    def _publish(self) -> None:
        routes: dict[tuple[str, str], Route] = {}
        for key, doc in self.endpoints.items():
            if doc["EndpointStatus"] == "Deleting":
                continue
            pending = doc.get("pending")
            share = pending.get("fraction", 0.0) if pending and pending["kind"] in ("blue_green", "rolling") else 0.0
            entries = [RouteEntry(v["VariantName"], v["Weight"] * (1.0 - share), self._ports(v), self._starting(v))
                       for v in doc["fleet"]]
            if pending and share > 0:
                entries += [RouteEntry(v["VariantName"], v["Weight"] * share, self._ports(v), self._starting(v))
                            for v in pending["variants"]]
            routes[key] = Route(doc["EndpointName"], key[0], tuple(entries))
        self.runtime.publish(routes)

    def _ports(self, variant: dict[str, Any]) -> tuple[int, ...]:
        ports = (self.supervisor.port(iid) for iid in variant["instances"])
        return tuple(p for p in ports if p)

    def _starting(self, variant: dict[str, Any]) -> bool:
        """Whether an instance of the variant is (re)starting: a request finding no healthy one waits
        for it (after a restart of the local cloud, or of a crashed instance) instead of failing."""
        return any(self.supervisor.state(iid)[0] == STARTING for iid in variant["instances"])

    def healthy_count(self, variant: dict[str, Any]) -> int:
        return sum(1 for iid in variant["instances"] if self.supervisor.state(iid)[0] == HEALTHY)

    # ------------------------------------------------------------------ one step per endpoint

    def _now(self) -> float:
        return self.clock.now()

    def _waited(self, pending: dict[str, Any], seconds: float) -> bool:
        """Whether the current phase has lasted ``seconds`` (if not, the loop's next pass comes when it has)."""
        due = pending["phase_started"] + seconds
        if self._now() >= due:
            return True
        self._due = min(self._due, due)
        return False

    def reconcile_endpoint(self, key: tuple[str, str]) -> bool:
        """Take at most one step for one endpoint; True when it changed (routes rebuilt, doc saved)."""
        current = self.endpoints[key]
        if current["EndpointStatus"] == "Deleting":
            if self._now() - current["LastModifiedTime"] < self.timing.seconds("delete"):
                return False
            return self._save_step(key, [("endpoint", key, None), ("tags", ("", current["EndpointArn"]), None)])
        if current.get("pending") is None:
            return False
        doc = copy.deepcopy(current)
        pending = doc["pending"]
        step: Callable[[tuple[str, str], dict[str, Any], dict[str, Any]], bool] = getattr(
            self, f"_phase_{pending['phase']}")
        self._started, self._retiring = [], []
        try:
            changed = step(key, doc, pending) or bool(self._started or self._retiring)
        except StateUnavailable as exc:  # an instance could not be recorded: nothing of the step stays
            return self._undo_step(key, exc)
        if not changed:
            return False
        doc["LastModifiedTime"] = self._now()
        return self._save_step(key, [("endpoint", key, doc)])

    def _save_step(self, key: tuple[str, str], changes: list[Change]) -> bool:
        """Save a step; then stop what it retires. When the save fails, stop what it started: the next
        pass takes the same step again from the saved state."""
        try:
            self.commit(changes)
        except StateUnavailable as exc:
            return self._undo_step(key, exc)
        retiring, self._started, self._retiring = self._retiring, [], []
        for iid, drain in retiring:
            self.supervisor.stop(iid, drain=drain)
        return True

    def _undo_step(self, key: tuple[str, str], exc: StateUnavailable) -> bool:
        log.warning("endpoint %s: cannot save its next step (%s); trying again", key[1], exc.message)
        started, self._started, self._retiring = self._started, [], []
        for iid in started:
            self.supervisor.stop(iid)
        return False

    def _retire(self, iid: str, drain: float = 0.0) -> None:
        """Stop an instance once the step that retires it is saved."""
        self._retiring.append((iid, drain))

    def _set_phase(self, pending: dict[str, Any], phase: str) -> None:
        pending["phase"] = phase
        pending["phase_started"] = self._now()

    def _phase_provision(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        if not self._waited(pending, self.timing.seconds("provision")):
            return False  # the instances are being launched (the timing profile's provisioning time)
        for variant in pending["variants"]:
            want = variant["target"] if pending["kind"] == "rolling" else variant["Count"]
            while len(variant["instances"]) < want:
                self._start_instance(key, doc, variant)
        if pending["kind"] == "capacity":
            for variant in pending["variants"]:
                while len(variant["instances"]) > variant["Count"]:
                    self._retire(variant["instances"].pop(), DRAIN_S)
        self._set_phase(pending, "health")
        return True

    def _start_instance(self, key: tuple[str, str], doc: dict[str, Any], variant: dict[str, Any]) -> None:
        iid = uuid.uuid4().hex[:12]
        self.supervisor.start(InstanceSpec(
            iid=iid, region=key[0], endpoint=doc["EndpointName"], variant=variant["VariantName"],
            image_uri=variant["Image"], model_data_url=variant.get("ModelDataUrl"),
            environment=dict(variant.get("Environment") or {}),
            startup_timeout=float(variant.get("StartupTimeout") or 600)))
        variant["instances"].append(iid)
        self._started.append(iid)

    def _phase_health(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        states = [self.supervisor.state(iid) for v in pending["variants"] for iid in v["instances"]]
        failed = [reason for state, reason in states if state == FAILED]
        if failed:
            return self._fail(key, doc, pending, failed[0])
        if self._timed_out(doc, pending):
            return True
        if any(state != HEALTHY for state, _ in states):
            return False
        if pending["kind"] == "create":
            return self._finish(doc, pending)
        if pending["kind"] == "capacity":
            return self._finish(doc, pending)
        self._set_phase(pending, "shift")
        return True

    def _phase_shift(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        if self._timed_out(doc, pending):
            return True
        if not self._waited(pending, self.timing.seconds("traffic_shift")):
            return False
        pending["fraction"] = pending["fractions"][pending["step"]]
        if pending["kind"] == "rolling":
            # Rolling: the batch that now takes traffic replaces as many old instances.
            for blue, green in zip(doc["fleet"], pending["variants"], strict=False):
                keep = max(0, blue["Count"] - green["target"])
                while len(blue["instances"]) > keep:
                    self._retire(blue["instances"].pop(), DRAIN_S)
        self._set_phase(pending, "bake")
        return True

    def _phase_bake(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        if self._timed_out(doc, pending):
            return True
        alarms = pending.get("alarms") or []
        if alarms:
            firing = self.cloudwatch.alarms_in_alarm(key[0], alarms)
            if firing:
                pending["reason"] = ALARM_ROLLBACK.format(alarms=", ".join(firing), config=doc["EndpointConfigName"])
                self._set_phase(pending, "rollback")
                doc["EndpointStatus"] = "RollingBack"
                return True
        if not self._waited(pending, pending["wait"]):
            return False
        pending["step"] += 1
        if pending["step"] < len(pending["fractions"]):
            if pending["kind"] == "rolling":
                for variant in pending["variants"]:
                    variant["target"] = min(variant["Count"], variant["target"] + variant["batch"])
                self._set_phase(pending, "provision")
            else:
                self._set_phase(pending, "shift")
            return True
        self._set_phase(pending, "terminate_wait")
        return True

    def _phase_terminate_wait(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        # TerminationWaitInSeconds as asked, then the time the service takes to retire the old fleet
        if not self._waited(pending, pending.get("termination_wait", 0) + self.timing.seconds("retire")):
            return False
        return self._finish(doc, pending)

    def _phase_rollback(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        # Blue must be whole before traffic returns to it (a rolling update retired part of it). A rolling
        # update's RollbackMaximumBatchSize brings it back that many instances at a time, each batch
        # healthy before the next; without one, the whole old fleet comes back at once (the spec).
        batch = pending.get("rollback_batch")
        started = False
        for blue in doc["fleet"]:
            missing = blue["Count"] - len(blue["instances"])
            if missing <= 0:
                continue
            if batch and any(self.supervisor.state(iid)[0] != HEALTHY for iid in blue["instances"]):
                continue  # the last batch is still starting
            for _ in range(min(missing, batch or missing)):
                self._start_instance(key, doc, blue)
            started = True
        states = [self.supervisor.state(iid)[0] for v in doc["fleet"] for iid in v["instances"]]
        if any(state != HEALTHY for state in states):
            if any(state == FAILED for state in states):
                doc["EndpointStatus"] = "UpdateRollbackFailed"
                doc["FailureReason"] = pending.get("reason")
                self._stop_variants(pending["variants"])
                doc["pending"] = None
                return True
            return started
        if started:
            return True
        pending["fraction"] = 0.0
        self._stop_variants(pending["variants"], drain=DRAIN_S)
        self._set_phase(pending, "rollback_drain")
        return True

    def _phase_rollback_drain(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        if not self._waited(pending, self.timing.seconds("rollback")):
            return False
        # Ends InService on the OLD config, the reason kept in FailureReason (the spec's reading).
        doc["EndpointStatus"] = "InService"
        doc["FailureReason"] = pending.get("reason")
        doc["pending"] = None
        return True

    # ------------------------------------------------------------------ outcomes

    def _timed_out(self, doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        limit = pending.get("max_time")
        if not limit or self._now() - pending["started"] <= limit:
            return False
        pending["reason"] = TIMEOUT_ROLLBACK.format(seconds=limit, config=doc["EndpointConfigName"])
        self._set_phase(pending, "rollback")
        doc["EndpointStatus"] = "RollingBack"
        return True

    def _fail(self, key: tuple[str, str], doc: dict[str, Any], pending: dict[str, Any], reason: str) -> bool:
        if pending["kind"] == "create":
            self._stop_variants(pending["variants"])
            doc["EndpointStatus"] = "Failed"
            doc["FailureReason"] = reason
            doc["pending"] = None
            doc["fleet"] = [{**v, "instances": []} for v in pending["variants"]]
            return True
        if pending["kind"] == "capacity":
            # DescribeEndpoint's EndpointStatus: an endpoint that "fails to scale up or down or change its
            # variant weight" is RollingBack "to its previous configuration", then InService again. The
            # failed instances go, the instance counts and weights return to what they were before the
            # call, and the reason stays in FailureReason.
            previous = pending.get("previous_counts") or {}
            for variant in pending["variants"]:
                for iid in list(variant["instances"]):
                    if self.supervisor.state(iid)[0] == FAILED:
                        self._retire(iid)
                        variant["instances"].remove(iid)
                variant["Count"] = previous.get(variant["VariantName"], variant["Count"])
                variant.pop("DesiredWeight", None)
                while len(variant["instances"]) > variant["Count"]:
                    self._retire(variant["instances"].pop(), DRAIN_S)
            doc["fleet"] = pending["variants"]
            pending["reason"] = CAPACITY_ROLLBACK.format(reason=reason)
            doc["EndpointStatus"] = "RollingBack"
            self._set_phase(pending, "rollback_drain")
            return True
        pending["reason"] = GREEN_FAILED.format(reason=reason)
        doc["EndpointStatus"] = "RollingBack"
        self._set_phase(pending, "rollback")
        return True

    def _finish(self, doc: dict[str, Any], pending: dict[str, Any]) -> bool:
        if pending["kind"] in ("blue_green", "rolling"):
            self._stop_variants(doc["fleet"], drain=DRAIN_S)
            doc["EndpointConfigName"] = pending["config"]
        for variant in pending["variants"]:
            variant.pop("target", None)
            variant.pop("batch", None)
            if "DesiredWeight" in variant:  # UpdateEndpointWeightsAndCapacities: the new weight takes effect
                variant["Weight"] = variant.pop("DesiredWeight")
        doc["fleet"] = pending["variants"]
        doc["EndpointStatus"] = "InService"
        doc["FailureReason"] = None
        doc["pending"] = None
        return True

    def _stop_variants(self, variants: list[dict[str, Any]], drain: float = 0.0) -> None:
        for variant in variants:
            for iid in variant["instances"]:
                self._retire(iid, drain)
            variant["instances"] = []

    # ------------------------------------------------------------------ what DescribeEndpoint shows

    def describe(self, doc: dict[str, Any]) -> dict[str, Any]:
        pending = doc.get("pending")
        out = {k: doc.get(k) for k in ("EndpointName", "EndpointArn", "EndpointConfigName", "EndpointStatus",
                                       "FailureReason", "CreationTime", "LastModifiedTime",
                                       "LastDeploymentConfig")}
        if pending is not None and pending["kind"] == "create":
            out["ProductionVariants"] = [self._variant_summary(v, v["Weight"], v["Weight"], pending)
                                         for v in pending["variants"]]
            # botocore's DescribeEndpointOutput: PendingDeploymentSummary "is only returned when the
            # endpoint is creating or updating with a new endpoint configuration" - creating included.
            out["PendingDeploymentSummary"] = self._pending_summary(pending, 1.0)
            return out
        share = pending.get("fraction", 0.0) if pending and pending["kind"] in ("blue_green", "rolling") else 0.0
        replacing = pending is not None and pending["kind"] in ("blue_green", "rolling")
        retiring = {}
        if pending is not None and pending["kind"] == "rolling":
            # Rolling: blue gives up as many instances as green's batches have taken over.
            retiring = {g["VariantName"]: g.get("target", 0) for g in pending["variants"]}
        out["ProductionVariants"] = [
            self._variant_summary(v, v["Weight"] * (1.0 - share), 0.0 if replacing else v.get("DesiredWeight", v["Weight"]),
                                  pending if pending and pending["kind"] == "capacity" else None,
                                  desired_count=max(0, v["Count"] - retiring.get(v["VariantName"], 0)))
            for v in doc["fleet"]]
        if replacing and pending is not None:
            out["PendingDeploymentSummary"] = self._pending_summary(pending, share)
        return out

    def _pending_summary(self, pending: dict[str, Any], share: float) -> dict[str, Any]:
        return {
            "EndpointConfigName": pending["config"],
            "StartTime": pending["started"],
            "ProductionVariants": [
                {**self._variant_summary(v, v["Weight"] * share, v["Weight"], pending),
                 "InstanceType": v.get("InstanceType")}
                for v in pending["variants"]],
        }

    def _variant_summary(self, variant: dict[str, Any], current: float, desired: float,
                         pending: dict[str, Any] | None, desired_count: int | None = None) -> dict[str, Any]:
        if desired_count is None:
            desired_count = variant.get("target", variant["Count"])
        summary: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "DeployedImages": [{"SpecifiedImage": variant["Image"], "ResolvedImage": variant["ResolvedImage"],
                                "ResolutionTime": variant["ResolutionTime"]}],
            "CurrentWeight": round(current, 6),
            "DesiredWeight": round(desired, 6),
            "CurrentInstanceCount": self.healthy_count(variant),
            "DesiredInstanceCount": desired_count,
        }
        if pending is not None:
            summary["VariantStatus"] = [_variant_status(pending)]
        return summary


def _variant_status(pending: dict[str, Any]) -> dict[str, Any]:
    phase = pending["phase"]
    share = round(100 * pending.get("fraction", 0.0))
    if phase in ("provision", "health"):
        status, message = "Creating", "Launching instances and waiting for them to pass the ping health check"
    elif phase == "shift":
        status, message = "ActivatingTraffic", "Shifting traffic to the new fleet"
    elif phase == "bake":
        alarms = ", ".join(pending.get("alarms") or []) or "no alarms"
        status = "Baking"
        message = (f"Baking for {pending['wait']} seconds with {share}% of the traffic on the new fleet, "
                   f"watching {alarms}")
    elif phase == "terminate_wait":
        status = "Baking"
        message = f"Waiting TerminationWaitInSeconds ({pending.get('termination_wait', 0)} s) before terminating the old fleet"
    else:
        status, message = "Deleting", "Rolling back: traffic returns to the old fleet"
    if pending["kind"] == "capacity":
        status, message = "Updating", "Updating instance counts and weights"
    return {"Status": status, "StatusMessage": message, "StartTime": pending["phase_started"]}


def traffic_steps(policy: dict[str, Any] | None, instance_count: int) -> tuple[list[float], int]:
    """The green traffic shares of a blue/green policy, and its bake time per step (seconds).

    CANARY: the canary's share, then all; LINEAR: one step's share at a time until all; ALL_AT_ONCE
    (and no policy): all at once. A size in INSTANCE_COUNT is a share of green's instances.
    """
    if not policy:
        return [1.0], 0
    routing = policy.get("TrafficRoutingConfiguration") or {}
    wait = int(routing.get("WaitIntervalInSeconds", 0))
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        return [capacity_share(routing["CanarySize"], instance_count), 1.0], wait
    if kind == "LINEAR":
        step = capacity_share(routing["LinearStepSize"], instance_count)
        count = math.ceil(1.0 / step - 1e-9)
        return [min(1.0, step * k) for k in range(1, count + 1)], wait
    return [1.0], wait


def capacity_share(size: dict[str, Any], instance_count: int) -> float:
    value = float(size["Value"])
    if size["Type"] == "INSTANCE_COUNT":
        return min(1.0, value / max(1, instance_count))
    return min(1.0, value / 100.0)
