"""Following a rollout live from any terminal (``modelops watch``), from the cloud and the ledger, not
from the process that runs it: each poll reads every region's endpoint (status, the update's phase,
blue/green weights) and SLO alarms, and the ledger's new entries for the model in the environment
(rollout steps, intents, blocks, and whatever else a rollout records, e.g. judgments), and reports
what changed. It ends when nothing is in flight any more: no region's rollout unfinished in the ledger
with a live process behind it, no update under way in SageMaker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Environment, ModelConfig, load_model
from modelops.deploy.cloud import RegionCloud
from modelops.deploy.machine import BUSY, EndpointView
from modelops.deploy.observed import alarm_names
from modelops.deploy.repo import open_repo, opened, poll_seconds
from modelops.errors import ExitStatus
from modelops.ledger.base import is_lock_stale
from modelops.ledger.locks import region_key
from modelops.ledger.records import FAILED, ROLLED_BACK, SUCCEEDED, DeploymentStep, Entry
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Ledger

NOTHING_IN_FLIGHT = "no rollout of {model} is in flight in {where}"
#: Polls to wait, once the cloud is still, for the deploy process to record how its region ended.
SETTLE_POLLS = 4


@dataclass(frozen=True)
class WatchRequest:
    model: str
    environment: str
    region: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    """One thing that changed: ``kind`` is ``endpoint`` (status, phase, weights, alarms), ``ledger``
    (a new entry) or ``end``; ``text`` says it in one line."""

    at: float
    region: str | None
    kind: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "region": self.region, "kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class WatchResult:
    """How the watched rollout ended, per region: ``succeeded``, ``rolled_back`` or ``failed``, as the
    ledger records it, or as the cloud shows it when the process that ran it is gone without recording
    an end (a Ctrl-C'd deploy: SageMaker finished the update on its own)."""

    model: str
    environment: str
    outcomes: dict[str, str]
    events: tuple[WatchEvent, ...]
    in_flight: bool  # whether there was a rollout to watch at all

    @property
    def exit_status(self) -> ExitStatus:
        statuses = set(self.outcomes.values())
        if FAILED in statuses:
            return ExitStatus.ENVIRONMENT
        if ROLLED_BACK in statuses:
            return ExitStatus.GATE_FAILED
        return ExitStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.environment, "in_flight": self.in_flight,
                "outcomes": dict(self.outcomes), "events": [e.to_dict() for e in self.events]}


def watch(request: WatchRequest, runtime: Runtime, on_event: Callable[[WatchEvent], None]) -> WatchResult:
    """Follow the rollout of ``request.model`` in ``request.environment`` until it ends, calling
    ``on_event`` with each change as it is seen."""
    repo = open_repo(runtime)
    env = repo.envs.get(request.environment)
    model = load_model(repo.ws, request.model)
    if request.region is not None:
        env.check_regions((request.region,))
    regions = [r for r in env.regions if request.region in (None, r)]
    events: list[WatchEvent] = []

    def emit(region: str | None, kind: str, text: str) -> None:
        event = WatchEvent(runtime.clock.now(), region, kind, text)
        events.append(event)
        on_event(event)

    with opened(env, runtime) as (clients, ledger):
        follower = _Follower(model, env, regions, clients, ledger)
        seen = len(follower.entries())
        still = 0
        first = True
        while True:
            snapshots = {region: follower.snapshot(region) for region in regions}
            for region, text in snapshots.items():
                if follower.last.get(region) != text:
                    follower.last[region] = text
                    emit(region, "endpoint", text)
            entries = follower.entries()
            for entry in entries[seen:]:
                emit(getattr(entry, "region", None), "ledger", entry_text(entry))
            seen = len(entries)
            flying = follower.in_flight(runtime.clock.now())
            if first and not flying:
                where = f"{env.name}/{request.region}" if request.region else env.name
                emit(None, "end", NOTHING_IN_FLIGHT.format(model=model.name, where=where))
                return WatchResult(model.name, env.name, {}, tuple(events), in_flight=False)
            first = False
            still = 0 if flying else still + 1
            # The cloud went still: give the deploy process a few polls to record how each region ended.
            if still and (follower.all_recorded() or still >= SETTLE_POLLS):
                outcomes, notes = follower.outcomes()
                emit(None, "end", "ended: " + ", ".join(f"{r} {o.replace('_', ' ')}{notes.get(r, '')}"
                                                        for r, o in outcomes.items()))
                return WatchResult(model.name, env.name, outcomes, tuple(events), in_flight=True)
            runtime.clock.sleep(poll_seconds(env))


class _Follower:
    """What ``watch`` reads each poll, and what it has seen of the rollout."""

    def __init__(self, model: ModelConfig, env: Environment, regions: list[str], clients: Clients, ledger: Ledger):
        self.model, self.env, self.regions, self.ledger = model, env, regions, ledger
        self.clouds = {r: RegionCloud(clients, r) for r in regions}
        self.endpoint = naming.endpoint_name(model.name, env.name)
        self.alarm_names = alarm_names(model.name, env.name)
        self.views: dict[str, EndpointView | None] = {}
        self.last: dict[str, str] = {}
        self.releases: dict[str, str] = {}  # region -> the release whose rollout was seen there

    def entries(self) -> list[Entry]:
        return [e for e in self.ledger.history(self.model.name, environment=self.env.name)
                if getattr(e, "region", None) in (None, *self.regions)]

    def snapshot(self, region: str) -> str:
        """The region now, in one line: status, the update's phase, weights, alarm states."""
        cloud = self.clouds[region]
        view = cloud.endpoint(self.endpoint, with_tags=False)
        self.views[region] = view
        if view is None:
            return "no endpoint"
        parts = [view.status]
        green = [w for w in view.weights if w.fleet == "green"]
        for w in green:
            messages = "; ".join(m for m in w.messages if m)
            parts.append(f"green {'/'.join(w.statuses) or 'pending'}" + (f" ({messages})" if messages else ""))
        weights = ", ".join(f"{w.fleet} {w.current_weight:g}" for w in view.weights)
        parts.append(f"weights {weights or '-'}")
        alarms = cloud.alarms(self.alarm_names)
        if alarms:
            parts.append("alarms " + ", ".join(f"{a.name.removeprefix(f'modelops-{self.model.name}-{self.env.name}-')} "
                                               f"{a.state}" for a in alarms.values()))
        if view.failure_reason and view.status != "InService":
            parts.append(view.failure_reason)
        return " | ".join(parts)

    def in_flight(self, now: float) -> bool:
        """A region updating in the cloud, or an unfinished rollout in the ledger whose process lives
        (its region's lock held), or the environment-wide deploy still holding its lock (between waves)."""
        flying = False
        for region in self.regions:
            view = self.views.get(region)
            state = self.ledger.current(self.model.name, self.env.name, region)
            if state is not None and state.in_progress and state.last_step is not None:
                self.releases.setdefault(region, state.last_step.release)
                flying = flying or self._held(region_key(self.env.name, region), now)
            flying = flying or (view is not None and view.status in BUSY)
        return flying or self._held(self.env.name, now)

    def _held(self, key: str, now: float) -> bool:
        info = self.ledger.lock_info(self.model.name, key)
        return info is not None and not is_lock_stale(info, now)

    def all_recorded(self) -> bool:
        return all(not (s := self.ledger.current(self.model.name, self.env.name, r)) or not s.in_progress
                   for r in self.releases)

    def outcomes(self) -> tuple[dict[str, str], dict[str, str]]:
        """Each region's end (from the ledger, else from the cloud) and a note where the ledger has none."""
        out, notes = {}, {}
        for region, release in self.releases.items():
            steps = self.ledger.steps(self.model.name, self.env.name, region, release=release)
            last = steps[-1] if steps else None
            if last is not None and last.is_terminal:
                out[region] = last.status
                continue
            view = self.views.get(region)
            serves = view is not None and view.config_name == naming.endpoint_config_name(
                self.model.name, self.env.name, release)
            out[region] = SUCCEEDED if serves else ROLLED_BACK
            notes[region] = (f" (SageMaker {'finished' if serves else 'rolled back'} the update of {release} unwatched; "
                             "the deploy that started it did not record its end: run it again to record it)")
        return out, notes


def entry_text(entry: Entry) -> str:
    """A ledger entry in one line, for the live view: steps and their details, intents, blocks; any
    other kind (a judgment, say) by its fields."""
    body = entry.to_dict()
    kind = body.pop("entry")
    if isinstance(entry, DeploymentStep):
        text = entry.step if entry.status == entry.step else f"{entry.step} ({entry.status})"
        return f"{entry.release} {text}" + (f": {entry.detail}" if entry.detail else "")
    if kind == "intent":
        return f"{body['action']} asked by {body['by']}" + (f": {body['reason']}" if body.get("reason") else "")
    if kind == "block":
        verb = "blocked" if body["blocked"] else "unblocked"
        return f"{body['release']} {verb} in {body['environment']} by {body['by']}" + (
            f": {body['reason']}" if body.get("reason") else "")
    for key in ("model", "environment", "region", "at"):
        body.pop(key, None)
    return f"{kind}: " + ", ".join(f"{k} {v}" for k, v in body.items() if v not in (None, "", {}, []))
