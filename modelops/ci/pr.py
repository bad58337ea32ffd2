"""``modelops ci pr``: the pull-request check in one call.

Validate the models the change touches (every model when ``pipelines/`` changed), compare their
findings with the base (what the change adds, what it fixes), plan what each would change per
environment and region (:mod:`modelops.ci.plan`), and build the reports: a Markdown PR comment, SARIF
and JUnit. The check fails (exit 1) when a gate would: a finding at the policy's failing severity in a
changed model or the pipelines, or a cloud plan that says a deploy would be refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from modelops.ci.access import RULE as ACCESS_RULE
from modelops.ci.access import AccessReview, review_access
from modelops.ci.plan import (
    CREATE,
    RELEASE,
    REMOVE,
    UNCHANGED,
    UPDATE,
    CloudPlanner,
    CloudVerdict,
    PlanRow,
    config_plan,
    default_cloud_planner,
    release_changed,
    with_cloud,
)
from modelops.config.environments import Environments
from modelops.config.findings import Finding, Severity
from modelops.config.loading import read_environments, read_model, read_policy
from modelops.config.model import ModelConfig
from modelops.config.policy import Policy
from modelops.config.workspace import MODEL_FILE, MODELS_DIR, PIPELINES_DIR, Workspace
from modelops.errors import ExitStatus
from modelops.policy.rules import RULES
from modelops.policy.validation import ValidateRequest, ValidationResult, validate
from modelops.report import Item, Report, from_findings, render_markdown
from modelops.runtime import Runtime

TITLE = "modelops ci pr"
PLAN_RULE = "ci.plan"
MAX_PLAN_ROWS = 60  # PR comments have a size limit
NO_CHANGES = "No model or pipeline file changed since {base}: nothing to check."


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


@dataclass(frozen=True)
class PrRequest:
    """Check the working tree (a PR's head checked out) against ``base`` (the target branch, e.g.
    ``origin/main``; compared from the merge base). ``bandit`` scans inference code; ``plan`` False
    leaves the plan out; ``cloud_plan`` False keeps it to the config plan (no cloud calls)."""

    base: str
    bandit: bool = True
    plan: bool = True
    cloud_plan: bool = True


def _key(f: Finding) -> tuple[str, str | None, str, str]:
    # Line numbers move when a file is edited; rule + model + file + JSON path say "the same problem".
    return (f.rule, f.model, f.location.file, f.location.path if f.location.path != "$" else f.message)


@dataclass(frozen=True)
class PrResult:
    """Everything the check found. ``new``/``fixed``/``kept`` compare the findings with the base's
    for the same models; ``plan`` holds a row per (model, environment, region)."""

    base: str
    base_commit: str | None
    head_commit: str | None
    validation: ValidationResult
    base_findings: tuple[Finding, ...]
    plan: tuple[PlanRow, ...] = ()
    verdicts: tuple[tuple[str, str, CloudVerdict], ...] = ()  # (model, environment, verdict)
    planned: bool = True
    files: tuple[str, ...] = field(default_factory=tuple)
    removed: tuple[tuple[str, str], ...] = ()  # (folder, model name): models the change deletes
    access: AccessReview | None = None  # the change edits pipelines/access.yaml: whose review it needs
    access_finding: Finding | None = None  # that, as a finding (severity from the policy; None: turned off)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.validation.models)

    @property
    def new(self) -> tuple[Finding, ...]:
        before = {_key(f) for f in self.base_findings}
        return tuple(f for f in self.findings if _key(f) not in before)

    @property
    def fixed(self) -> tuple[Finding, ...]:
        after = {_key(f) for f in self.validation.findings}
        return tuple(f for f in self.base_findings if _key(f) not in after)

    @property
    def kept(self) -> tuple[Finding, ...]:
        before = {_key(f) for f in self.base_findings}
        return tuple(f for f in self.validation.findings if _key(f) in before)

    @property
    def refused(self) -> tuple[tuple[str, str, CloudVerdict], ...]:
        """Cloud plans saying a deploy would be refused by a gate."""
        return tuple(v for v in self.verdicts if v[2].gate_failed)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Validate's findings, and the access review's when the change edits access.yaml."""
        return self.validation.findings + ((self.access_finding,) if self.access_finding else ())

    @property
    def exit_status(self) -> ExitStatus:
        status = self.validation.exit_status
        access_fails = self.access_finding is not None and self.access_finding.severity.at_least(
            self.validation.fail_on)
        if status is ExitStatus.OK and (self.refused or access_fails):
            return ExitStatus.GATE_FAILED
        return status

    @property
    def failed(self) -> bool:
        return self.exit_status is not ExitStatus.OK

    def report(self) -> Report:
        """The generic report (findings and refused plans) the JUnit and SARIF renderers take."""
        v = self.validation
        rules = {**v.rules, **({ACCESS_RULE: RULES[ACCESS_RULE].summary} if self.access_finding else {})}
        base = from_findings(TITLE, self.findings, subjects=self.models, summary=self.summary(), rules=rules,
                             fail_on=str(v.fail_on))
        # Located at the model's config: code scanning (SARIF) takes no result without a location.
        files = {m.name: m.file for m in v.models}
        refused = tuple(Item(PLAN_RULE, "failed", f"{env}: {verdict.message}", subject=model, file=files.get(model))
                        for model, env, verdict in self.refused)
        rules = dict(base.rules)
        if refused:
            rules[PLAN_RULE] = "a deploy of the change would be refused"
        return replace(base, items=base.items + refused, rules=rules)

    def summary(self) -> dict[str, Any]:
        return {
            **self.validation.summary(),
            "base": self.base,
            "base_commit": self.base_commit,
            "head_commit": self.head_commit,
            "new": len(self.new),
            "fixed": len(self.fixed),
            "refused_plans": len(self.refused),
            "failed": self.failed,
            "exit_status": int(self.exit_status),
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {
            "base": self.base,
            "base_commit": self.base_commit,
            "head_commit": self.head_commit,
            "passed": not self.failed,
            "exit_status": int(self.exit_status),
            "models": [m.to_dict() for m in self.validation.models],
            "findings": [f.to_dict() for f in self.findings],
            "new": [f.to_dict() for f in self.new],
            "fixed": [f.to_dict() for f in self.fixed],
            "plan": [r.to_dict() for r in self.plan],
            "removed": [{"folder": folder, "name": name} for folder, name in self.removed],
            "access": self.access.to_dict() if self.access else None,
            "summary": self.summary(),
        }

    def markdown(self) -> str:
        """The pull-request comment."""
        return render_pr_markdown(self)


def check_pr(request: PrRequest, runtime: Runtime, *, cloud_planner: CloudPlanner | None = None) -> PrResult:
    """Run the pull-request check of the working tree against ``request.base``. Raises
    :class:`~modelops.errors.InputError` for a base ref that does not exist or a folder outside git;
    problems in the configs are findings, never exceptions."""
    ws = Workspace.discover(runtime.cwd)
    base_ws = ws.at(request.base)
    folders = ws.changed_models(request.base)
    files = ws.changed_files(request.base)
    runtime.progress.step(f"{len(folders)} model(s) changed since {request.base}")
    result = validate(ValidateRequest(changed_since=request.base, bandit=request.bandit), runtime)
    # The same models (those that existed) and the pipeline files at the base: what was already wrong.
    at_base = tuple(f for f in folders if base_ws.is_file(f"{f}/{MODEL_FILE}")) or (PIPELINES_DIR,)
    runtime.progress.step(f"validating the same models at {request.base}")
    before = validate(ValidateRequest(paths=tuple(ws.root / f for f in at_base), ref=request.base,
                                      bandit=request.bandit), runtime)
    base_findings = before.findings
    plan: list[PlanRow] = []
    verdicts: list[tuple[str, str, CloudVerdict]] = []
    if request.plan:
        plan, verdicts = _plan(ws, base_ws, folders, files, request, runtime,
                               cloud_planner or default_cloud_planner)
    access = review_access(ws, base_ws, files, runtime.environ)
    severity = (read_policy(ws).value or read_policy(base_ws).value or Policy()).severity_of(
        ACCESS_RULE, Severity.warning)
    return PrResult(request.base, base_ws.commit, ws.head_commit, result, base_findings, tuple(plan),
                    tuple(verdicts), planned=request.plan, files=files, removed=_removed(ws, base_ws, files),
                    access=access, access_finding=access.finding(severity) if access and severity else None)


def _removed(ws: Workspace, base_ws: Workspace, files: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Model folders whose ``model.yaml`` the change deletes, with the model's name at the base; a
    model that lives on under another folder (a rename) is not removed."""
    gone = sorted({f.rsplit("/", 1)[0] for f in files if f.startswith(MODELS_DIR + "/") and f.count("/") == 2
                   and f.endswith("/" + MODEL_FILE)} - set(ws.model_folders()))
    if not gone:
        return ()
    kept = _models_by_name(ws)
    out = []
    for folder in gone:
        model = read_model(base_ws, folder).value if base_ws.is_file(f"{folder}/{MODEL_FILE}") else None
        name = model.name if model is not None else folder.rsplit("/", 1)[-1]
        if name not in kept:
            out.append((folder, name))
    return tuple(out)


def _plan(ws: Workspace, base_ws: Workspace, folders: Iterable[str], files: tuple[str, ...], request: PrRequest,
          runtime: Runtime, planner: CloudPlanner) -> tuple[list[PlanRow], list[tuple[str, str, CloudVerdict]]]:
    """Config plan of every changed model that loads, and the cloud plan where it is safe."""
    envs: Environments | None = read_environments(ws).value
    if envs is None:
        return [], []  # validate reports why; nothing can be planned without environments
    base_envs = read_environments(base_ws).value
    rows: list[PlanRow] = []
    verdicts: dict[tuple[str, str], CloudVerdict] = {}
    base_by_name: dict[str, ModelConfig] | None = None  # read once, for the first folder new at the head
    for folder in folders:
        model = read_model(ws, folder).value
        if model is None:
            continue
        if base_ws.is_file(f"{folder}/{MODEL_FILE}"):
            before = read_model(base_ws, folder).value
        else:
            # A renamed folder: the same model at the base under another folder; its endpoints are
            # named after the model, so they exist already and are not a ``create``.
            base_by_name = _models_by_name(base_ws) if base_by_name is None else base_by_name
            before = base_by_name.get(model.name)
        model_rows = config_plan(model, before, envs, base_envs, files_changed=release_changed(model, before, files))
        rows.extend(model_rows)
        if request.cloud_plan:
            for env_name in dict.fromkeys(r.environment for r in model_rows if r.action != REMOVE):
                runtime.progress.step(f"planning {model.name} in {env_name}")
                verdicts[(model.name, env_name)] = planner(model, envs.get(env_name), None, runtime)
    return with_cloud(rows, verdicts), [(m, e, v) for (m, e), v in verdicts.items()]


def _models_by_name(ws: Workspace) -> dict[str, ModelConfig]:
    """Every model of ``ws`` that loads, by its name (the first folder's, if two share one)."""
    out: dict[str, ModelConfig] = {}
    for folder in ws.model_folders():
        model = read_model(ws, folder).value
        if model is not None:
            out.setdefault(model.name, model)
    return out


_ACTION_ICON = {CREATE: "🆕", RELEASE: "🚀", UPDATE: "✏️", REMOVE: "🗑️", UNCHANGED: "·"}


def render_pr_markdown(result: PrResult) -> str:
    """Markdown for the PR comment: verdict, what changed, findings (the report's table), what the
    change fixes, and the plan per model, environment and region."""
    v = result.validation
    verdict = "❌ failed" if result.failed else "✅ passed"
    short = (result.base_commit or "")[:10]
    lines = [f"## {TITLE}: {verdict}", ""]
    models = ", ".join(f"`{m}`" for m in result.models) or "none"
    lines.append(f"Compared with `{_cell(result.base)}`" + (f" ({short})" if short else "")
                 + f": {len(result.models)} model(s) to check: {models}.")
    if not result.models and not v.findings and not result.files:
        lines += ["", NO_CHANGES.format(base=_cell(result.base))]
    lines += ["", f"**{len(result.new)} new**, **{len(result.fixed)} fixed**, {len(result.kept)} already there "
                  f"(failing at `{v.fail_on}` and above)."]
    if result.access is not None:
        review = result.access
        lines += ["", "### 🔐 Access control changed", "",
                  f"This change {'adds' if review.status == 'added' else 'deletes' if review.status == 'removed' else 'edits'} "
                  f"`{review.file}`: who may deploy, approve, roll back and unblock. It needs review by "
                  f"{_cell(review.needs)}" + (" (a new file: the owners are its own)" if review.status == "added" else "")
                  + (f"; opened by `{_cell(review.changed_by)}`" if review.changed_by else "") + "."]
        lines += [""] + [f"- {_cell(change)}" for change in review.changes]
    if result.refused:
        lines += ["", "**A deploy would be refused:**"]
        lines += [f"- `{m}` in `{e}`: {_cell(verdict_.message)}" for m, e, verdict_ in result.refused]
    body = render_markdown(result.report())
    # The generic report's own heading and verdict are replaced by ours.
    findings = body.split("\n", 2)[2] if body.startswith("### ") else body
    lines += ["", "### Findings", "", findings.rstrip()]
    if result.fixed:
        lines += ["", "### Fixed by this change", "", "| Rule | Model | Location | Message |", "| --- | --- | --- | --- |"]
        for f in result.fixed[:MAX_PLAN_ROWS]:
            lines.append(f"| `{f.rule}` | `{f.model or '-'}` | `{_cell(str(f.location))}` | {_cell(f.message)} |")
    if result.removed:
        lines += ["", "### Removed by this change", ""]
        lines += [f"- `{_cell(folder)}` (`{_cell(name)}`): modelops deletes no endpoints; those of `{_cell(name)}` "
                  "keep serving (and costing) in every environment until they are deleted by hand"
                  for folder, name in result.removed]
    if result.planned:
        lines += ["", "### Plan", ""]
        if not result.plan:
            lines.append("Nothing to plan (no changed model loads).")
        else:
            asked = any(r.cloud_status in ("planned", "failed") for r in result.plan)
            lines += ["| Model | Environment | Region | Wave | Action | Changes |" + (" Cloud |" if asked else ""),
                      "| --- | --- | --- | --- | --- | --- |" + (" --- |" if asked else "")]
            for row in result.plan[:MAX_PLAN_ROWS]:
                changes = "<br>".join(_cell(c) for c in row.changes) or "-"
                cloud = ""
                if asked:
                    cloud = (f" {row.cloud_status}: {_cell(row.cloud or '')} |" if row.cloud_status == "planned"
                             or row.cloud_status == "failed" else f" {row.cloud_status or '-'} |")
                lines.append(f"| `{row.model}` | {row.environment} | {row.region} | {row.wave or '-'} | "
                             f"{_ACTION_ICON.get(row.action, '')} {row.action} | {changes} |{cloud}")
            if len(result.plan) > MAX_PLAN_ROWS:
                lines += ["", f"... and {len(result.plan) - MAX_PLAN_ROWS} more rows (see the JSON report)."]
        skipped: dict[str, list[str]] = {}
        for model, env, answer in result.verdicts:
            if answer.status == "skipped":
                skipped.setdefault(answer.message, []).append(f"`{model}` in {env}")
        for reason, where in skipped.items():
            lines += ["", f"Cloud plan skipped ({', '.join(where)}): {_cell(reason)}."]
    return "\n".join(lines) + "\n"
