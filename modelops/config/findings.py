"""Findings: what a check reports about a config, with where it is.

These types live in the config layer because loading itself reports problems (bad YAML, schema
errors) as findings; ``modelops.policy`` re-exports them and adds the rule checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is. Ordered: ``info < warning < error``."""

    info = "info"
    warning = "warning"
    error = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Severity) -> bool:
        """True when this severity is ``other`` or worse."""
        return self.rank >= other.rank


_RANK = {Severity.info: 0, Severity.warning: 1, Severity.error: 2}


@dataclass(frozen=True, order=True)
class Location:
    """Where a finding points: a repo-relative file, 1-based line and column, and a JSON path
    (``$.spec.resources.instance_type``; ``$`` for the whole file). Line and column are None when
    the finding is about a file as a whole (or a file that could not be read)."""

    file: str
    line: int | None = None
    column: int | None = None
    path: str = "$"

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about a config or a model's code.

    ``rule`` is a stable id such as ``security.kms-required``; ``message`` is one line saying what
    is wrong (never a secret's value); ``hint`` says what to do. ``model`` names the model the
    finding belongs to, when there is one; ``fatal`` marks input that could not be read at all
    (malformed YAML, bad encoding, a file too large), which makes validate exit 2."""

    rule: str
    severity: Severity
    location: Location
    message: str
    hint: str = ""
    model: str | None = None
    fatal: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``--output json``."""
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.location.path,
            "message": self.message,
            "hint": self.hint,
            "model": self.model,
        }

    def to_row(self) -> list[Any]:
        """A compact JSON form for caches (:meth:`from_row` reads it back)."""
        loc = self.location
        return [self.rule, str(self.severity), loc.file, loc.line, loc.column, loc.path, self.message, self.hint,
                self.model, self.fatal]

    @classmethod
    def from_row(cls, row: list[Any]) -> Finding:
        rule, severity, file, line, column, path, message, hint, model, fatal = row
        return cls(rule, Severity(severity), Location(file, line, column, path), message, hint, model, fatal)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.file, self.location.line or 0, self.location.column or 0, self.rule)


def json_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """``("spec", "artifacts", 0, "sha256")`` -> ``$.spec.artifacts[0].sha256``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.replace("_", "").replace("-", "").isalnum() and not part[:1].isdigit():
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)
