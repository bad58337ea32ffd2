"""bandit over each model's inference code, failing at the policy's severity and confidence."""

from __future__ import annotations

from collections.abc import Iterator

from modelops.config.findings import Finding, Location
from modelops.config.model import ModelConfig
from modelops.config.workspace import ReadError
from modelops.policy import bandit_scan
from modelops.policy.context import CheckContext, reads

BANDIT = "bandit {test_id} ({severity} severity, {confidence} confidence): {text}"
BANDIT_HINT = "fix the code, or mark a reviewed false positive with '# nosec {test_id}'"


def code_files(ctx: CheckContext, model: ModelConfig) -> list[str]:
    """The model's inference code: the .py files of its source dir, else its entry point."""
    handler = model.container.handler
    ws = ctx.workspace
    if handler.source_dir and not ws.escape_reason(model.folder, handler.source_dir):
        files = [f for f in ws.walk(model.path_in_repo(handler.source_dir)) if f.endswith(".py")]
    else:
        files = []
    if handler.entry_point and not ws.escape_reason(model.folder, handler.entry_point):
        entry = model.path_in_repo(handler.entry_point)
        if entry not in files and ws.is_file(entry):
            files.append(entry)
    return files


@reads(("spec", "container", "handler"))
def check_bandit(ctx: CheckContext) -> Iterator[Finding | None]:
    if not ctx.options.get("bandit", True):
        return
    severity = ctx.severity("security.bandit")
    if severity is None:
        return
    sources: dict[str, bytes] = {}
    owner: dict[str, str] = {}
    for model in ctx.models:
        for rel in code_files(ctx, model):
            try:
                sources[rel] = ctx.workspace.read_bytes(rel)
            except ReadError:
                continue  # too large or unreadable: not inference code we can scan
            owner[rel] = model.name
    if not sources:
        return
    results = bandit_scan.scan(sources, ctx.runtime.data_dir)
    policy = ctx.policy
    for rel in sorted(results):
        for issue in results[rel]:
            if not issue.at_least(policy.bandit_severity, policy.bandit_confidence):
                continue
            yield Finding("security.bandit", severity, Location(rel, issue.line, issue.column, "$"),
                          BANDIT.format(test_id=issue.test_id, severity=issue.severity,
                                        confidence=issue.confidence, text=issue.text),
                          BANDIT_HINT.format(test_id=issue.test_id), owner[rel])
