"""Mirrored requests: the same input sent to two variants of one endpoint (``TargetVariant``), one
right after the other, in alternating order, for a bake's length. What each side did lands in short
:class:`~modelops.verify.judge.Round` s that the judgment pairs.

Works with no organic traffic: the inputs are the model's regression requests and its replay file.
Organic traffic keeps flowing by weight meanwhile; the mirror adds a known, equal load to both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelops.config.cases import CaseRequest
from modelops.runtime import Clock
from modelops.verify.answers import Comparison
from modelops.verify.invoke import Invocation, invoke
from modelops.verify.judge import Disagreement, Round, Side

#: Length of one round: short enough that a burst of machine noise is inside one round (and hits both
#: sides of it), long enough that a round holds tens of requests.
ROUND_SECONDS = 1.0
#: Requests in flight at once (each a pair): keeps a 2-core machine's local cloud busy without
#: starving the containers it runs.
CONCURRENCY = 2
SHOWN = 160  # characters of a request or answer kept for a report


Compare = Callable[[bytes, bytes, str], Comparison]


@dataclass(frozen=True)
class MirrorTarget:
    """Where mirrored requests go: an endpoint and its two variants."""

    client: Any  # a boto3 sagemaker-runtime client
    endpoint: str
    reference_variant: str
    candidate_variant: str
    resource: str  # "prod/us-east-1: endpoint iris-prod", for errors


def _short(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


class Mirror:
    """Sends ``inputs`` round robin to both variants of ``target`` from :data:`CONCURRENCY` threads
    until :meth:`stop`; :meth:`rounds` are what was seen so far. ``compare`` judges two answers."""

    def __init__(self, target: MirrorTarget, inputs: Sequence[CaseRequest], compare: Compare, clock: Clock, *,
                 concurrency: int = CONCURRENCY, round_seconds: float = ROUND_SECONDS):
        if not inputs:
            raise ValueError("nothing to mirror")
        self._target = target
        self._inputs = tuple(inputs)
        self._compare = compare
        self._clock = clock
        self._round_seconds = round_seconds
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._rounds: dict[int, Round] = {}
        self._stop = threading.Event()
        self._started = clock.monotonic()
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._loop, name=f"mirror-{target.endpoint}-{i}", daemon=True)
                         for i in range(concurrency)]
        for t in self._threads:
            t.start()

    def _send(self, variant: str, request: CaseRequest) -> Invocation:
        t = self._target
        return invoke(t.client, t.endpoint, request, self._clock, resource=t.resource, target_variant=variant)

    def _loop(self) -> None:
        t = self._target
        while not self._stop.is_set():
            k = next(self._next)
            request = self._inputs[k % len(self._inputs)]
            try:
                if k % 2:  # alternate who goes first, so neither side always gets the warm path
                    cand = self._send(t.candidate_variant, request)
                    ref = self._send(t.reference_variant, request)
                else:
                    ref = self._send(t.reference_variant, request)
                    cand = self._send(t.candidate_variant, request)
            except Exception as exc:  # the cloud cannot be reached: the caller sees it at stop()
                self._error = exc
                self._stop.set()
                return
            self._add(int((self._clock.monotonic() - self._started) / self._round_seconds), request, ref, cand)

    def _add(self, index: int, request: CaseRequest, ref: Invocation, cand: Invocation) -> None:
        compared = None
        if ref.ok and cand.ok:
            compared = self._compare(ref.body, cand.body, cand.content_type or request.accept)
        with self._lock:
            r = self._rounds.setdefault(index, Round())
            for side, answer in ((r.reference, ref), (r.candidate, cand)):
                _count(side, answer)
            if compared is not None:
                r.compared += 1
                if compared.agree:
                    r.agreed += 1
                elif len(r.disagreements) < 3:
                    r.disagreements.append(Disagreement(_short(request.body), _short(ref.body), _short(cand.body),
                                                        compared.detail, compared.score))

    def rounds(self) -> list[Round]:
        """The rounds so far, oldest first (the one still filling included)."""
        with self._lock:
            return [self._rounds[k] for k in sorted(self._rounds)]

    def stop(self) -> list[Round]:
        """Stop sending and return every round; raises what stopped the senders early (a cloud that
        cannot be reached)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=75)
        if self._error is not None:
            raise self._error
        return self.rounds()


def _count(side: Side, answer: Invocation) -> None:
    side.sent += 1
    if answer.ok:
        side.latencies_ms.append(answer.latency_ms)
    elif answer.status >= 500 or answer.original_status is not None or answer.status == 424:
        side.errors += 1
    else:  # a 4xx of the service (throttled, validation): neither release's fault
        side.sent -= 1
