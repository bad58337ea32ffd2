"""What a checker sees, and the one way it makes findings (severity from the policy)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelops.config.environments import Environment, Environments
from modelops.config.findings import Finding, Location, Severity, json_path
from modelops.config.model import ModelConfig
from modelops.config.policy import Policy
from modelops.config.workspace import Workspace
from modelops.policy.rules import RULES
from modelops.runtime import Runtime


@dataclass(frozen=True)
class ModelRef:
    """A light reference to a loaded model, for checks across models (validate may load models in
    several processes; these refs are what comes back)."""

    name: str
    folder: str
    file: str


@dataclass(frozen=True)
class CheckContext:
    """Everything a checker may look at: the repository, the models that loaded, the environments
    and policy (environments None when they failed to load), and the runtime (for caches).

    ``models`` are the models this checker run covers; when validate splits the work over several
    processes, that is a share of them, and ``all_models`` still lists every loaded model."""

    workspace: Workspace
    runtime: Runtime
    models: tuple[ModelConfig, ...]
    environments: Environments | None
    policy: Policy
    options: dict[str, Any] = field(default_factory=dict)
    all_models: tuple[ModelRef, ...] = ()

    def severity(self, rule_id: str) -> Severity | None:
        rule = RULES[rule_id]
        return self.policy.severity_of(rule_id, rule.severity)

    def enforced_in(self, rule_id: str, environment: str) -> bool:
        """True when the environment-scoped rule applies in ``environment``."""
        rule = RULES[rule_id]
        default = rule.environments if rule.environments is not None else ()
        return environment in self.policy.environments_of(rule_id, default)

    def deploy_targets(self, model: ModelConfig) -> tuple[Environment, ...]:
        """The environments ``model`` deploys to: those on a cloud it supports."""
        return self.environments.deploy_targets(model.clouds) if self.environments is not None else ()

    def at(self, model: ModelConfig, rule_id: str, path: Sequence[str | int], message: str, hint: str = "", *,
           key: bool = False) -> Finding | None:
        """A finding of ``rule_id`` about ``model`` at the value ``path`` (None when the policy turns
        the rule off)."""
        severity = self.severity(rule_id)
        if severity is None:
            return None
        pos = model.source.position(path, key=key)
        return Finding(rule_id, severity, Location(model.file, pos.line, pos.column, json_path(tuple(path))),
                       message, hint, model.name)

    def in_file(self, file: str, source: Any, rule_id: str, path: Sequence[str | int], message: str,
                hint: str = "", *, key: bool = False, model: str | None = None) -> Finding | None:
        """A finding in a non-model file (environments.yaml, policy.yaml, a code file)."""
        severity = self.severity(rule_id)
        if severity is None:
            return None
        if source is not None:
            pos = source.position(path, key=key)
            line, column = pos.line, pos.column
        else:
            line = column = None
        return Finding(rule_id, severity, Location(file, line, column, json_path(tuple(path))), message, hint, model)


def model_ref(model: ModelConfig) -> ModelRef:
    return ModelRef(model.name, model.folder, model.file)


#: A checker: looks at the context and yields findings (None entries are skipped, so checkers can
#: pass on what :meth:`CheckContext.at` returns).
Checker = Callable[[CheckContext], Iterable[Finding | None]]

Path = tuple[str | int, ...]
_READS: dict[Checker, tuple[Path, ...]] = {}


def reads(*paths: Path) -> Callable[[Checker], Checker]:
    """Declare the parts of ``model.yaml`` a model checker reads (JSON paths under the document
    root; ``*`` stands for any key, e.g. each environment override). A model that fails its schema
    is still checked by every checker whose parts are intact in it (validate reports every problem at
    once); a checker that declares nothing runs on valid models only."""
    def declare(checker: Checker) -> Checker:
        _READS[checker] = paths
        return checker
    return declare


def runs_on(checker: Checker, broken: frozenset[Path]) -> bool:
    """Whether ``checker`` may look at a model whose ``broken`` JSON paths failed the schema: it
    declared what it reads, and none of that is broken (or holds, or is held by, a broken value)."""
    paths = _READS.get(checker)
    if paths is None:
        return False
    return not any(_overlap(b, r) for b in broken for r in paths)


def _overlap(broken: Path, read: Path) -> bool:
    """One path holds the other (or is it): a read of ``a.*.b`` overlaps ``a.x.b.c`` and ``a``."""
    return all(r == "*" or r == b for b, r in zip(broken, read, strict=False))
