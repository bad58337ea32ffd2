"""``modelops validate``: every problem in every selected config, as findings.

The pipeline: find the repository, select models (paths, ``--changed-since``), read
``pipelines/environments.yaml``, ``pipelines/policy.yaml``, ``pipelines/access.yaml`` and every
selected ``model.yaml`` leniently, then run the checkers (a list of functions, each yielding findings; other modules add
theirs with :func:`register_checker`). Severity comes from the policy; the result's exit status is
2 when some input could not be read, 1 when a finding reaches the policy's failing severity, else 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.config.access import read_access
from modelops.config.findings import Finding, Severity
from modelops.config.loading import read_environments, read_model, read_policy
from modelops.config.policy import Policy
from modelops.config.workspace import MODEL_FILE, MODELS_DIR, PIPELINES_DIR, Workspace
from modelops.errors import ExitStatus, InputError
from modelops.policy import capacity, code_checks, model_checks, rollout, security
from modelops.policy.context import CheckContext, Checker, ModelRef, model_ref, runs_on
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.policy.results import ParseCache

NO_SUCH_PATH = "{path} does not exist"
NOT_A_MODEL_PATH = "{path} is not a model folder, models/, pipelines/ or the repository root"
NOT_A_MODEL_PATH_HINT = "pass a folder under models/ holding a model.yaml, or nothing to validate everything"
OUTSIDE_REPO = "{path} is outside the repository {root}"
NO_MODEL_FILE = "{path} holds no model.yaml"

#: Checkers that look at one model at a time (validate may run them on shares of the models in
#: several processes).
_MODEL_CHECKERS: list[Checker] = [
    model_checks.check_paths,
    model_checks.check_cases,
    model_checks.check_answers,
    model_checks.check_name_matches_folder,
    model_checks.check_environment_overrides,
    model_checks.check_container,
    model_checks.check_dlc,
    model_checks.check_resources,
    model_checks.check_clouds,
    security.check_image,
    security.check_secrets,
    security.check_artifacts,
    security.check_environments,
    capacity.check_capacity,
    rollout.check_model_rollouts,
    code_checks.check_bandit,
]
#: Checkers of the repository as a whole: run once, with ``ctx.models`` empty and
#: ``ctx.all_models`` listing every loaded model.
_REPO_CHECKERS: list[Checker] = [
    model_checks.check_unique_names,
    model_checks.check_policy_file,
    rollout.check_environment_rollouts,
]

#: Below this many models per process, forking costs more than it saves.
MODELS_PER_PROCESS = 150


def register_checker(checker: Checker, *, scope: str = "model") -> Checker:
    """Add a checker to every validate run. ``scope`` "model": it looks at ``ctx.models`` one by one
    (and may run in a worker process); "repository": it runs once over the whole repository.
    Register the rules it reports with :func:`modelops.policy.rules.register_rule`."""
    target = _MODEL_CHECKERS if scope == "model" else _REPO_CHECKERS
    if checker not in target:
        target.append(checker)
    return checker


def checkers() -> tuple[Checker, ...]:
    return (*_MODEL_CHECKERS, *_REPO_CHECKERS)


@dataclass(frozen=True)
class ValidateRequest:
    """What to validate: ``paths`` (model folders, ``models/``, ``pipelines/`` or the repo root;
    empty: the repo around the working directory), at ``ref`` (None: the working tree), limited to
    models changed since ``changed_since``; ``bandit`` False skips the code scan."""

    paths: tuple[Path, ...] = ()
    ref: str | None = None
    changed_since: str | None = None
    bandit: bool = True


@dataclass(frozen=True)
class ModelSummary:
    name: str
    folder: str
    file: str
    valid: bool  # loaded and passed its schema
    clouds: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()  # where it deploys (environments on a cloud it supports)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "file": self.file, "valid": self.valid,
                "clouds": list(self.clouds), "environments": list(self.environments)}


@dataclass(frozen=True)
class ValidationResult:
    root: Path
    ref: str | None
    commit: str | None
    models: tuple[ModelSummary, ...]
    findings: tuple[Finding, ...]
    files: tuple[str, ...]
    fail_on: Severity = Severity.error
    rules: dict[str, str] = field(default_factory=dict)  # rule id -> summary, for reports

    @property
    def fatal(self) -> bool:
        return any(f.fatal for f in self.findings)

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(self.fail_on))

    @property
    def exit_status(self) -> ExitStatus:
        if self.fatal:
            return ExitStatus.BAD_INPUT
        return ExitStatus.GATE_FAILED if self.failed else ExitStatus.OK

    def counts(self) -> dict[str, int]:
        counts = {str(s): 0 for s in (Severity.error, Severity.warning, Severity.info)}
        for f in self.findings:
            counts[str(f.severity)] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "models": len(self.models),
            "files": len(self.files),
            "findings": len(self.findings),
            **self.counts(),
            "fail_on": str(self.fail_on),
            "failed": bool(self.failed) or self.fatal,
            "exit_status": int(self.exit_status),
            "ref": self.ref,
            "commit": self.commit,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {
            "models": [m.to_dict() for m in self.models],
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.summary(),
        }


def _select(ws: Workspace, request: ValidateRequest, runtime: Runtime) -> tuple[str, ...]:
    """The model folders the request names (repo-relative)."""
    if not request.paths:
        selected: list[str] = list(ws.model_folders())
    else:
        selected = []
        for path in request.paths:
            absolute = path if path.is_absolute() else runtime.cwd / path
            if ws.ref is None and not absolute.exists():
                raise InputError(NO_SUCH_PATH.format(path=path))
            try:
                rel = absolute.resolve().relative_to(ws.root.resolve()).as_posix()
            except ValueError as exc:
                raise InputError(OUTSIDE_REPO.format(path=path, root=ws.root)) from exc
            rel = "" if rel == "." else rel
            if rel.endswith("/" + MODEL_FILE):
                rel = rel[: -len(MODEL_FILE) - 1]
            parts = rel.split("/") if rel else []
            if not parts or parts == [MODELS_DIR]:
                selected.extend(ws.model_folders())
            elif parts[0] == PIPELINES_DIR:
                continue
            elif parts[0] == MODELS_DIR and len(parts) == 2:
                if not ws.exists(f"{rel}/{MODEL_FILE}"):
                    raise InputError(NO_MODEL_FILE.format(path=path), hint=NOT_A_MODEL_PATH_HINT)
                selected.append(rel)
            else:
                raise InputError(NOT_A_MODEL_PATH.format(path=path), hint=NOT_A_MODEL_PATH_HINT)
    if request.changed_since is not None:
        changed = set(ws.changed_models(request.changed_since))
        selected = [f for f in selected if f in changed]
    return tuple(dict.fromkeys(selected))


def validate(request: ValidateRequest, runtime: Runtime,
             extra_checkers: Sequence[Checker] = ()) -> ValidationResult:
    """Validate what ``request`` selects; never raises for problems in the configs (they are
    findings), only :class:`InputError` for bad usage (a path or ref that does not exist...)."""
    start = request.paths[0] if request.paths else runtime.cwd
    if not start.is_absolute():
        start = runtime.cwd / start
    ws = Workspace.discover(start if start.exists() else runtime.cwd)
    if request.ref is not None:
        ws = ws.at(request.ref)
    folders = _select(ws, request, runtime)
    runtime.progress.step(f"validating {len(folders)} model(s) in {ws.root}" + (f" at {ws.ref}" if ws.ref else ""))

    envs = read_environments(ws)
    pol = read_policy(ws)
    acc = read_access(ws, envs.value)
    policy = pol.value or Policy()
    base = CheckContext(ws, runtime, (), envs.value, policy, {"bandit": request.bandit})
    results = _results(base, folders, tuple(extra_checkers))
    findings: list[Finding] = [*envs.findings, *pol.findings, *acc.findings]
    findings.extend(f for folder in folders for f in results[folder].findings)
    summaries = [results[folder].summary for folder in folders]
    refs = [r for folder in folders if (r := results[folder].ref) is not None]
    files: list[str] = [envs.file, *((pol.file,) if policy.file else ()),
                        *((acc.file,) if acc.value is None or acc.value.file else ()), *(s.file for s in summaries)]
    repo_ctx = replace(base, all_models=tuple(refs))
    findings.extend(run_checkers(repo_ctx, _REPO_CHECKERS))
    findings = _apply_policy(findings, policy)
    from modelops.policy.rules import RULES

    return ValidationResult(
        root=ws.root,
        ref=ws.ref,
        commit=ws.commit,
        models=tuple(summaries),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        files=tuple(files),
        fail_on=policy.fail_on,
        rules={f.rule: RULES[f.rule].summary for f in findings if f.rule in RULES},
    )


@dataclass(frozen=True)
class _ModelResult:
    """What checking one model folder gives (small: it crosses processes and lives in the cache)."""

    folder: str
    findings: tuple[Finding, ...]
    summary: ModelSummary
    ref: ModelRef | None
    cacheable: bool = True

    def to_row(self) -> dict[str, Any]:
        s, r = self.summary, self.ref
        return {"findings": [f.to_row() for f in self.findings],
                "summary": [s.name, s.file, s.valid, list(s.clouds), list(s.environments)],
                "ref": None if r is None else [r.name, r.file]}

    @classmethod
    def from_row(cls, folder: str, row: dict[str, Any]) -> _ModelResult:
        name, file, valid, clouds, environments = row["summary"]
        ref = row["ref"]
        return cls(folder, tuple(Finding.from_row(f) for f in row["findings"]),
                   ModelSummary(name, folder, file, valid, tuple(clouds), tuple(environments)),
                   None if ref is None else ModelRef(ref[0], folder, ref[1]))


def _results(base: CheckContext, folders: Sequence[str], extra: tuple[Checker, ...]) -> dict[str, _ModelResult]:
    """Every folder's results: from the results cache where nothing they depend on changed
    (:mod:`modelops.policy.results`), checked (in several processes when many) otherwise."""
    from modelops.policy.results import ParseCache, ResultsCache
    from modelops.policy.rules import RULES

    cache = ResultsCache(base.runtime.data_dir, base.workspace, checkers=(*_MODEL_CHECKERS, *extra), rules=RULES,
                         options=base.options)
    keys = cache.keys(folders)
    found: dict[str, _ModelResult] = {}
    for folder, key in keys.items():
        row = cache.get(key) if key is not None else None
        if row is not None:
            found[folder] = _ModelResult.from_row(folder, row)
    todo = [f for f in folders if f not in found]
    if todo:
        parser = ParseCache(base.runtime.data_dir)
        shares = _share(todo, base.workspace)
        parts = (_in_processes(base, shares, extra, parser) if len(shares) > 1
                 else [_check_models(base, todo, extra, parser)])
        for part in parts:
            for result in part:
                found[result.folder] = result
                key = keys.get(result.folder)
                if key is not None and result.cacheable:
                    cache.put(key, result.to_row())
        cache.save()
    return found


def _check_models(base: CheckContext, folders: Sequence[str], extra: tuple[Checker, ...],
                  parser: ParseCache) -> tuple[_ModelResult, ...]:
    """Load ``folders`` and run the model checkers over them: every checker over the models that
    load, and over what is usable of those that fail their schema (``Loaded.partial``) wherever
    the values the checker reads are intact, so one run reports every problem."""
    loaded = [read_model(base.workspace, folder, parser=parser) for folder in folders]
    parser.save()
    models = tuple(m.value for m in loaded if m.value is not None)
    partial = [m for m in loaded if m.value is None and m.partial is not None]
    ctx = replace(base, models=models)
    findings = [f for m in loaded for f in m.findings]
    for checker in (*_MODEL_CHECKERS, *extra):
        usable = tuple(m.partial for m in partial if m.partial is not None and runs_on(checker, m.broken))
        findings.extend(run_checkers(replace(ctx, models=models + usable) if usable else ctx, (checker,)))
    for m in loaded:
        if m.value is None and m.source is not None:
            name = next((f.model for f in m.findings if f.model), None)
            findings.extend(f for f in security.secrets_in_document(ctx, m.file, name, m.document, m.source) if f)
            if m.partial is not None and runs_on(model_checks.check_paths, m.broken):
                continue  # check_paths looked at them
            located = {f.location.path for f in m.findings}
            findings.extend(f for f in model_checks.paths_in_document(ctx, m.file, m.file.rsplit("/", 1)[0], name,
                                                                      m.document, m.source, located) if f)
    # Each finding to its model's folder (checkers see all of them at once): by its file (models/<name>/...),
    # else by its model's name. One that belongs to none stays with the first, which is then not cached.
    by_name = {m.value.name: folder for folder, m in zip(folders, loaded, strict=True) if m.value is not None}
    owned: dict[str, list[Finding]] = {folder: [] for folder in folders}
    loose = False
    for f in findings:
        top = "/".join(f.location.file.split("/", 2)[:2])
        owner = top if top in owned else by_name.get(f.model or "")
        loose = loose or owner is None
        owned[owner or folders[0]].append(f)
    out = []
    for folder, m in zip(folders, loaded, strict=True):
        model = m.value
        summary = ModelSummary(
            name=model.name if model else folder.rsplit("/", 1)[-1],
            folder=folder,
            file=m.file,
            valid=model is not None,
            clouds=model.clouds if model else (),
            environments=tuple(e.name for e in ctx.deploy_targets(model)) if model else (),
        )
        out.append(_ModelResult(folder, tuple(owned[folder]), summary, model_ref(model) if model else None,
                                cacheable=not (loose and folder == folders[0])))
    return tuple(out)


def _share(folders: Sequence[str], ws: Workspace) -> list[tuple[str, ...]]:
    """Split the models over the CPUs when there are enough to pay for a fork. Only for the working
    tree: reading a git ref goes through git subprocesses a fork must not share."""
    import os

    n = min(_cpus(), len(folders) // MODELS_PER_PROCESS)
    if n < 2 or ws.commit is not None or not hasattr(os, "fork"):
        return [tuple(folders)]
    # Interleaved, so that each share gets a like mix of models (folders sort by name, and similar
    # models have similar names).
    return [tuple(folders[i::n]) for i in range(n)]


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_JOB: tuple[CheckContext, list[tuple[str, ...]], tuple[Checker, ...], ParseCache] | None = None


def _run_share(index: int) -> tuple[_ModelResult, ...]:
    assert _JOB is not None, "set before the fork"
    base, shares, extra, parser = _JOB
    return _check_models(base, shares[index], extra, parser)


def _in_processes(base: CheckContext, shares: list[tuple[str, ...]], extra: tuple[Checker, ...],
                  parser: ParseCache) -> list[tuple[_ModelResult, ...]]:
    """Check the first share here and the others in forked processes (which inherit everything
    loaded so far, so nothing but the results is pickled)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _JOB
    # Warm what every share needs, so the forks inherit it instead of each building it again.
    from modelops.config import catalog, schema

    schema.is_valid("model", {})
    catalog.instance_type_names()
    catalog.frameworks()
    _JOB = (base, shares, extra, parser)
    try:
        with ProcessPoolExecutor(len(shares) - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_run_share, i) for i in range(1, len(shares))]
            first = _check_models(base, shares[0], extra, parser)
            return [first, *(f.result() for f in futures)]
    finally:
        _JOB = None


def run_checkers(ctx: CheckContext, checker_list: Iterable[Checker]) -> list[Finding]:
    out: list[Finding] = []
    for checker in checker_list:
        out.extend(f for f in checker(ctx) if f is not None)
    return out


def _apply_policy(findings: list[Finding], policy: Policy) -> list[Finding]:
    """Loading findings carry default severities; the policy may change or silence them. Fatal
    findings (unreadable input) are never silenced."""
    from modelops.policy.rules import RULES

    out = []
    for f in findings:
        rule = RULES.get(f.rule)
        if rule is None or f.fatal:
            out.append(f)
            continue
        severity = policy.severity_of(f.rule, rule.severity)
        if severity is None:
            continue
        out.append(f if severity == f.severity else replace(f, severity=severity))
    return out

