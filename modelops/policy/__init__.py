"""Security and capacity rules over configs, and bandit over inference code. Each result is a Finding.

Public API:

- :class:`Finding`, :class:`Location`, :class:`Severity` (defined in ``modelops.config.findings``,
  re-exported here);
- :func:`validate` ``(ValidateRequest, Runtime) -> ValidationResult`` (``.findings``, ``.models``,
  ``.exit_status``, ``.to_dict()`` = the ``--output json`` document);
- checkers: a checker is ``Callable[[CheckContext], Iterable[Finding | None]]``; add one to every
  validate run with ``register_checker(checker, scope="model"|"repository")`` and declare its rule
  ids with :func:`register_rule` (e.g. build's hadolint findings). Model-scope checkers look at
  ``ctx.models`` (validate may run them in forked processes on shares of the models; return
  picklable findings); repository-scope ones run once with ``ctx.all_models`` (light refs).
  ``CheckContext.at(model, rule, path, message, hint)`` makes a finding at a model config value,
  ``CheckContext.in_file(file, source, rule, path, ...)`` anywhere else, both with the policy's
  severity (None when the policy turns the rule off);
- :data:`RULES`: the rule catalog (id -> :class:`Rule` with default severity and summary).
"""

from modelops.config.findings import Finding, Location, Severity
from modelops.policy.context import CheckContext, Checker
from modelops.policy.rules import RULES, Rule, register_rule
from modelops.policy.validation import (
    ModelSummary,
    ValidateRequest,
    ValidationResult,
    register_checker,
    validate,
)

__all__ = [
    "RULES",
    "CheckContext",
    "Checker",
    "Finding",
    "Location",
    "ModelSummary",
    "Rule",
    "Severity",
    "ValidateRequest",
    "ValidationResult",
    "register_checker",
    "register_rule",
    "validate",
]
