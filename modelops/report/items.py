"""The generic shape every renderer takes: a :class:`Report` of :class:`Item` rows.

Findings map onto items one to one (:func:`from_findings`); test results and plans can too: an item
has an id (rule or test case), a status (``error``/``warning``/``info`` for findings,
``passed``/``failed``/``skipped`` for tests), the subject it is about (a model), an optional
location, a message and a hint. ``subjects`` lists everything that was checked, so reports can show
what passed as well as what did not."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.config.findings import Finding

FAILING = ("error", "failed")
STATUS_ORDER = {"error": 0, "failed": 0, "warning": 1, "info": 2, "skipped": 3, "passed": 4}


def plural(n: int, status: str) -> str:
    """``3 errors``, ``1 warning``, ``2 failed``."""
    return f"{n} {status}s" if n != 1 and status in ("error", "warning") else f"{n} {status}"


@dataclass(frozen=True)
class Item:
    id: str
    status: str
    message: str
    subject: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None
    hint: str = ""
    duration_seconds: float | None = None

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


@dataclass(frozen=True)
class Report:
    """What was checked and what was found. ``failing`` lists the statuses that fail the run (by
    default errors and failed tests; validate adds ``warning`` when the policy fails on warnings)."""

    title: str
    tool: str = "modelops"
    items: tuple[Item, ...] = ()
    subjects: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    rules: Mapping[str, str] = field(default_factory=dict)  # id -> one-line description
    failing: tuple[str, ...] = FAILING
    subject_kind: str = "model"  # what a subject is, as reports name them ("Checked 3 model(s)")

    @property
    def failed(self) -> bool:
        return any(i.status in self.failing for i in self.items) or bool(self.summary.get("failed"))

    def items_for(self, subject: str | None) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.subject == subject)


def from_findings(title: str, findings: Iterable[Finding], *, subjects: Iterable[str] = (),
                  summary: Mapping[str, Any] | None = None, rules: Mapping[str, str] | None = None,
                  fail_on: str = "error") -> Report:
    """A report of findings; ``fail_on`` is the policy's failing severity."""
    failing = {"error": ("error",), "warning": ("error", "warning"), "info": ("error", "warning", "info")}[fail_on]
    items = tuple(
        Item(id=f.rule, status=str(f.severity), message=f.message, subject=f.model, file=f.location.file,
             line=f.location.line, column=f.location.column, path=f.location.path, hint=f.hint)
        for f in findings
    )
    return Report(title=title, items=items, subjects=tuple(subjects), summary=dict(summary or {}),
                  rules=dict(rules or {}), failing=(*failing, "failed"))
