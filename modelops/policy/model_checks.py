"""Checks of each model's config beyond its schema: referenced files, names, handler and framework,
autoscaling, overrides of environments that exist, and the policy file's own references."""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from modelops.config import catalog
from modelops.config.findings import Finding, Location, json_path
from modelops.config.model import ModelConfig
from modelops.policy.context import CheckContext, reads
from modelops.policy.rules import RULES

# Bumped when the cases checks change, so cached answers for unchanged files are asked again.
# 2: JSONPaths and regexes must parse; 3: expect.model_error, status 424 without it; 4: the counts deploy's
# tests need are kept too.
CASES_CHECKS = 4
MISSING_PATH = "{what} '{path}' does not exist in {folder}"
LINK_OUT_HINT = "build packages no symlinks: copy the file into the model folder"
LINK_INSIDE = "'{path}' is a symlink; build packs regular files only, so the image would not have it"
LINK_INSIDE_HINT = "replace the link with a copy of the file, or import the module it points to"
DUPLICATE_NAME = "model name '{name}' is also used by {other}"
NAME_MISMATCH = "metadata.name '{name}' differs from the folder name '{folder}'"
UNKNOWN_ENV = "override for environment '{name}', which pipelines/environments.yaml does not define{suggestion}"
DJL_CONTRACT = "the djl-python contract needs a DJL container (framework djl-lmi or djl-cpu, or a DJL image), not {framework}"
TOOLKIT_CONTRACT = "the inference-toolkit contract does not run on a DJL container ({framework}); use contract djl-python"
UNKNOWN_VERSION = "{framework} {version} is not a known DLC version{suggestion}"
AUTOSCALING_BOUNDS = "autoscaling min_instances {min} is more than max_instances {max}"
COUNT_OUTSIDE = "instance_count {count} is outside autoscaling's {min}..{max}"
CAPTURE_DESTINATION = "data capture is enabled but has no destination"
POLICY_RULE = "policy.yaml configures rule '{rule}', which does not exist{suggestion}"
POLICY_ENV = "policy.yaml names environment '{name}', which pipelines/environments.yaml does not define"
TESTS_NEEDED = "{why}: {environment} takes only releases whose tests passed in {previous}, so deploy stops there"
TRAFFIC_NEEDED = "{why}: deploy sends them to {environment} while an update bakes, and would stop there"
JUDGE_NEEDED = ("{why}: the judged canary in {environment} mirrors them to both releases, and would stop there "
                "(or give spec.tests.replay a file of requests)")
GAP = ("{environment} takes only releases whose tests passed in {previous}, and {model} does not run on {previous}'s "
       "{cloud} cloud: no release of it can reach {environment}")
GAP_HINT = "add {cloud} to spec.clouds, or give the environments on the model's clouds their own promotion order"


def _paths(model: ModelConfig) -> Iterator[tuple[tuple[str | int, ...], str, str, bool]]:
    """(json path, relative path, what, must be a folder) for every path the config names."""
    c = model.container
    if c.handler.entry_point:
        yield ("spec", "container", "handler", "entry_point"), c.handler.entry_point, "entry point", False
    if c.handler.source_dir:
        yield ("spec", "container", "handler", "source_dir"), c.handler.source_dir, "source dir", True
    if c.requirements:
        yield ("spec", "container", "requirements"), c.requirements, "requirements file", False
    if model.tests.cases:
        yield ("spec", "tests", "cases"), model.tests.cases, "cases file", False
    if model.tests.replay:
        yield ("spec", "tests", "replay"), model.tests.replay, "replay file", False
    for i, a in enumerate(model.artifacts):
        if a.path:
            yield ("spec", "artifacts", i, "path"), a.path, "artifact", False
        if a.generated_by:
            yield ("spec", "artifacts", i, "generated_by"), a.generated_by, "generator script", False


@reads(("spec", "container", "handler"), ("spec", "container", "requirements"), ("spec", "tests"),
       ("spec", "artifacts"))
def check_paths(ctx: CheckContext) -> Iterator[Finding | None]:
    """Paths stay inside the model folder (symlinks included) and the files exist (artifacts with a
    generator may be absent: the artifact checks handle them)."""
    ws = ctx.workspace
    for model in ctx.models:
        for path, rel, what, folder in _paths(model):
            reason = ws.escape_reason(model.folder, rel)
            if reason:
                yield ctx.at(model, "security.path-escape", path, reason,
                             "keep code, artifacts and cases inside the model folder")
                continue
            if what == "artifact":
                continue
            full = model.path_in_repo(posixpath.normpath(rel))
            exists = ws.is_dir(full) if folder else ws.is_file(full)
            if not exists:
                yield ctx.at(model, "config.missing-path", path,
                             MISSING_PATH.format(what=what, path=rel, folder=model.folder))
            elif folder:
                # A symlink in the code folder that leads out passed validate, and build left it out
                # of the image without a word: the container failed at import time.
                for link in ws.links(full):
                    inside = link[len(model.folder) + 1:]
                    reason = ws.escape_reason(model.folder, inside)
                    if reason:
                        yield ctx.at(model, "security.path-escape", path, reason, LINK_OUT_HINT)
                    else:  # the same silence for a link that stays inside
                        yield ctx.at(model, "config.symlink", path, LINK_INSIDE.format(path=inside), LINK_INSIDE_HINT)


_DOCUMENT_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("spec", "container", "handler", "entry_point"), ("spec", "container", "handler", "source_dir"),
    ("spec", "container", "requirements"), ("spec", "tests", "cases"), ("spec", "tests", "replay"))


def paths_in_document(ctx: CheckContext, file: str, folder: str, model: str | None, document: Any,
                      source: Any, located: set[str]) -> Iterator[Finding | None]:
    """The path-escape check on a raw document, for configs that failed their schema (no typed model):
    a path out of the model folder is reported whatever else is wrong (as secrets are). Values that
    already have a finding at their JSON path (``located``) are left to it."""
    spec = document.get("spec") if isinstance(document, dict) else None
    artifacts = spec.get("artifacts") if isinstance(spec, dict) else None
    paths = list(_DOCUMENT_PATHS)
    if isinstance(artifacts, list):
        paths += [("spec", "artifacts", i, key) for i in range(len(artifacts)) for key in ("path", "generated_by")]
    for path in paths:
        value: Any = document
        for part in path:  # the artifact indexes come from the list itself, so they exist
            if isinstance(value, dict):
                value = value.get(part)
            else:
                value = value[part] if isinstance(value, list) and isinstance(part, int) else None
        if not isinstance(value, str) or json_path(path) in located:
            continue
        reason = ctx.workspace.escape_reason(folder, value)
        if reason:
            yield ctx.in_file(file, source, "security.path-escape", path, reason,
                              "keep code, artifacts and cases inside the model folder", model=model)


@reads(("spec", "tests"), ("spec", "clouds"), ("spec", "rollout"), ("spec", "environments", "*", "rollout"))
def check_cases(ctx: CheckContext) -> Iterator[Finding | None]:
    """The regression cases file (``spec.tests.cases``, else ``tests/cases.yaml`` when present) parses
    and matches its schema, located at its file:line: a broken one passed the pull-request check and
    stopped ``modelops test`` (exit 2) after the deploy to dev."""
    from modelops.config.cases import cases_file, read_cases

    ws = ctx.workspace
    cache = _cases_cache(ctx)
    for model in ctx.models:
        named = model.tests.cases
        if named and (ws.escape_reason(model.folder, named) or not ws.is_file(model.path_in_repo(named))):
            continue  # check_paths reports it
        file = cases_file(model)
        identity = ws.identity(file)
        key = f"{model.name}\0{file}\0{identity}"
        cached = cache.get(key) if identity is not None else None
        if cached is not None:
            findings = [Finding.from_row(row) for row in cached["findings"]]
            counts = cached["counts"]
        else:
            loaded = read_cases(ws, model)
            findings = list(loaded.findings)
            cases = loaded.value
            counts = None if cases is None else [len(cases), len(cases.load_mix()), cases.file]
            if identity is not None and not _names_body_files(loaded.document):
                # The findings depend on this file alone (no request.file to look up): cache them by its
                # identity, so a re-run over 1,000 models costs a stat each, not a parse (~0.35 ms).
                cache.put(key, {"findings": [f.to_row() for f in findings], "counts": counts})
        yield from findings
        if counts is not None:  # the cases load: can deploy's tests (and synthetic traffic) use them?
            total, mix, where = counts
            yield from _tests_runnable(ctx, model, where or model.folder, total, mix)
    cache.save()


def _tests_runnable(ctx: CheckContext, model: ModelConfig, file: str, total: int, mix: int) -> Iterator[Finding | None]:
    """What deploy needs of the cases: tests it can run before every environment that takes only
    tested releases, and requests to send as synthetic traffic where an update bakes."""
    from modelops.config.cases import cannot_run
    from modelops.config.effective import effective
    from modelops.config.rollout import JUDGED

    envs = ctx.environments
    if envs is None:
        return
    for env in ctx.deploy_targets(model):
        previous = envs.previous(env.name) if env.name in envs.promotion else None
        if previous is not None:
            cannot = cannot_run(file, cases=total, load_mix=mix, regression=True, load=model.tests.load is not None)
            if cannot is not None:
                yield ctx.at(model, "config.tests", _tests_at(model), TESTS_NEEDED.format(
                    why=cannot[0], environment=env.name, previous=previous.name), cannot[1])
                return
        if not mix and model.tests.replay is None and effective(model, env).rollout.strategy == JUDGED:
            cannot = cannot_run(file, cases=total, load_mix=mix, regression=False, load=True)
            if cannot is not None:
                yield ctx.at(model, "config.tests", _tests_at(model), JUDGE_NEEDED.format(
                    why=cannot[0], environment=env.name), cannot[1])
                return
        if effective(model, env).synthetic_traffic_rate is not None and not mix:
            cannot = cannot_run(file, cases=total, load_mix=mix, regression=False, load=True)
            if cannot is not None:
                yield ctx.at(model, "config.tests", _tests_at(model), TRAFFIC_NEEDED.format(why=cannot[0], environment=env.name),
                             cannot[1])
                return


def _tests_at(model: ModelConfig) -> tuple[str | int, ...]:
    return next(p for p in (("spec", "tests", "cases"), ("spec", "tests"), ("spec",)) if model.source.has(p) or p == ("spec",))


@reads(("spec", "clouds"))
def check_clouds(ctx: CheckContext) -> Iterator[Finding | None]:
    """Where a model runs (``spec.clouds``) against the promotion order: deploy refuses an
    environment whose previous one the model never reaches (it never has tests passed there). A
    model that runs on no environment's cloud at all (the AWS-only example in a local repository)
    is the model's choice: its summary lists no environments, and deploy says why per environment."""
    envs = ctx.environments
    if envs is None:
        return
    for model in ctx.models:
        for env in ctx.deploy_targets(model):
            previous = envs.previous(env.name) if env.name in envs.promotion else None
            if previous is not None and not model.supports_cloud(previous.cloud):
                at = ("spec", "clouds") if model.source.has(("spec", "clouds")) else ("metadata", "name")
                yield ctx.at(model, "config.environment-gap", at, GAP.format(
                    environment=env.name, previous=previous.name, model=model.name, cloud=previous.cloud),
                    GAP_HINT.format(cloud=previous.cloud))
                break


def _cases_cache(ctx: CheckContext) -> Any:
    import hashlib

    from modelops import __version__
    from modelops.config.schema import schema_text
    from modelops.policy.jsoncache import JsonCache

    schema = hashlib.sha256(schema_text("cases").encode()).hexdigest()[:16]
    return JsonCache(ctx.runtime.data_dir / "cache" / "cases.json", namespace=f"cases {__version__} {schema} {CASES_CHECKS}")


def _names_body_files(document: Any) -> bool:
    cases = document.get("cases") if isinstance(document, dict) else None
    return not isinstance(cases, list) or any(
        isinstance(c, dict) and isinstance(c.get("request"), dict) and "file" in c["request"] for c in cases)


@reads(("spec", "answers"), ("spec", "tests"))
def check_answers(ctx: CheckContext) -> Iterator[Finding | None]:
    """The answer rules' JSONPaths parse (a judgment could not apply them), and each line of the
    replay file (``spec.tests.replay``) is a request, located at file:line."""
    from modelops.config.answers import bad_rules
    from modelops.config.cases import read_replay

    ws = ctx.workspace
    for model in ctx.models:
        for i, message in bad_rules(model.answers):
            yield ctx.at(model, "schema.invalid", ("spec", "answers", "rules", i, "path"), message,
                         "use $.key, $['key'], $[0], $[*] or .*")
        named = model.tests.replay
        if named is None or ws.escape_reason(model.folder, named) or not ws.is_file(model.path_in_repo(named)):
            continue  # check_paths reports it
        severity = ctx.severity("cases.replay")
        for f in read_replay(ws, model).findings:
            if f.rule != "cases.replay":
                yield f
            elif severity is not None:
                yield replace(f, severity=severity)


@reads(("metadata", "name"))
def check_name_matches_folder(ctx: CheckContext) -> Iterator[Finding | None]:
    for model in ctx.models:
        folder = posixpath.basename(model.folder)
        if folder and folder != model.name:
            yield ctx.at(model, "config.name-mismatch", ("metadata", "name"),
                         NAME_MISMATCH.format(name=model.name, folder=folder),
                         "rename the folder or the model so that both say the same")


def check_unique_names(ctx: CheckContext) -> Iterator[Finding | None]:
    """Across every loaded model (a repository-scope check)."""
    seen: dict[str, str] = {}
    for ref in ctx.all_models:
        other = seen.setdefault(ref.name, ref.folder)
        if other != ref.folder:
            severity = ctx.severity("config.duplicate-name")
            if severity is not None:
                # Where the name is written, found now (most runs have no duplicate to place).
                from modelops.config.loading import read_model

                source = read_model(ctx.workspace, ref.folder).source
                at = source.position(("metadata", "name")) if source is not None else None
                yield Finding("config.duplicate-name", severity,
                              Location(ref.file, at.line if at else None, at.column if at else None,
                                       "$.metadata.name"),
                              DUPLICATE_NAME.format(name=ref.name, other=other), "", ref.name)


@reads(("spec", "environments"))
def check_environment_overrides(ctx: CheckContext) -> Iterator[Finding | None]:
    if ctx.environments is None:
        return
    names = ctx.environments.names
    for model in ctx.models:
        for env in model.environments:
            if env not in names:
                close = difflib.get_close_matches(env, names, n=1)
                yield ctx.at(model, "config.unknown-environment", ("spec", "environments", env),
                             UNKNOWN_ENV.format(name=env, suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
                             f"environments: {', '.join(names)}", key=True)


@reads(("spec", "container"))
def check_container(ctx: CheckContext) -> Iterator[Finding | None]:
    frameworks = catalog.frameworks()
    for model in ctx.models:
        c = model.container
        contract_path = ("spec", "container", "handler", "contract")
        is_djl = (c.framework or "").startswith("djl") or (c.image is not None and "djl-inference" in c.image)
        if c.handler.contract == "djl-python" and not is_djl:
            yield ctx.at(model, "config.handler", contract_path, DJL_CONTRACT.format(framework=c.framework or c.image))
        if c.handler.contract == "inference-toolkit" and is_djl:
            yield ctx.at(model, "config.handler", contract_path, TOOLKIT_CONTRACT.format(framework=c.framework or c.image))
        if c.framework and c.framework_version:
            known = frameworks.get(c.framework)
            if known is not None and c.framework_version not in known.versions:
                close = difflib.get_close_matches(c.framework_version, known.versions, n=1, cutoff=0.5)
                yield ctx.at(model, "config.framework-version", ("spec", "container", "framework_version"),
                             UNKNOWN_VERSION.format(framework=c.framework, version=c.framework_version,
                                                    suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
                             f"known versions: {', '.join(known.versions[-8:])}")


@reads(("spec", "container"), ("spec", "clouds"), ("spec", "resources", "instance_type"),
       ("spec", "environments", "*", "resources", "instance_type"))
def check_dlc(ctx: CheckContext) -> Iterator[Finding | None]:
    """The Deep Learning Container build resolves exists for the processor of the model's instance
    type in each region of each environment it deploys to (sagemaker-core's answers, shipped as the
    catalog's availability table: validate does not import sagemaker-core). Models with an explicit
    image are build's to check."""
    for model in ctx.models:
        c = model.container
        if not c.framework or not c.framework_version:
            continue
        at = ("spec", "container", "framework_version")
        for env in ctx.deploy_targets(model):
            itype = catalog.instance_type(model.resources_for(env.name).instance_type)
            if itype is None:
                continue  # capacity.unknown-instance-type says so
            found = catalog.dlc_availability(c.framework, c.framework_version, "gpu" if itype.gpus else "cpu",
                                             c.python_version)
            kw = {"where": env.name, "framework": c.framework, "version": c.framework_version}
            if isinstance(found, str):
                yield ctx.at(model, "config.dlc", at, catalog.DLC_REFUSED.format(**kw, region=env.regions[0],
                                                                                 detail=found), catalog.DLC_HINT)
                break
            missing = [r for r in env.regions if found and r not in found]
            if missing:
                yield ctx.at(model, "config.dlc", at, catalog.UNKNOWN_REGION.format(
                    **kw, region=missing[0], known=", ".join(sorted(found or ()))), catalog.DLC_HINT)


def _autoscaling_at(model: ModelConfig, base: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return (*base, "autoscaling") if model.source.has((*base, "autoscaling")) else ("spec", "resources", "autoscaling")


@reads(("spec", "resources"), ("spec", "environments", "*", "resources"), ("spec", "security", "data_capture"))
def check_resources(ctx: CheckContext) -> Iterator[Finding | None]:
    for model in ctx.models:
        places: list[tuple[tuple[str | int, ...], str | None]] = [(("spec", "resources"), None)]
        places += [(("spec", "environments", env, "resources"), env) for env in model.environments]
        for base, env in places:
            res = model.resources_for(env) if env else model.resources
            scaling = res.autoscaling
            if scaling is None:
                continue
            if scaling.min_instances > scaling.max_instances:
                yield ctx.at(model, "config.autoscaling", _autoscaling_at(model, base),
                             AUTOSCALING_BOUNDS.format(min=scaling.min_instances, max=scaling.max_instances))
            elif not scaling.min_instances <= res.instance_count <= scaling.max_instances:
                yield ctx.at(model, "config.autoscaling", _autoscaling_at(model, base), COUNT_OUTSIDE.format(
                    count=res.instance_count, min=scaling.min_instances, max=scaling.max_instances))
        capture = model.security.data_capture
        if capture is not None and capture.enabled and not capture.destination:
            yield ctx.at(model, "config.data-capture", ("spec", "security", "data_capture"), CAPTURE_DESTINATION)


def check_policy_file(ctx: CheckContext) -> Iterator[Finding | None]:
    policy = ctx.policy
    if policy.file is None:
        return
    for rule_id in policy.rules:
        if rule_id not in RULES:
            close = difflib.get_close_matches(rule_id, list(RULES), n=1)
            yield ctx.in_file(policy.file, policy.source, "policy.unknown-rule", ("rules", rule_id),
                              POLICY_RULE.format(rule=rule_id, suggestion=f" (did you mean '{close[0]}'?)" if close else ""),
                              "modelops validate --list-rules shows the rules", key=True)
    if ctx.environments is None:
        return
    names = set(ctx.environments.names)
    refs: list[tuple[tuple[str | int, ...], str]] = [(("instance_types", env), env) for env in policy.instance_types]
    for rule_id, setting in policy.rules.items():
        refs += [(("rules", rule_id, "environments", i), env) for i, env in enumerate(setting.environments or ())]
    refs += [(("signed_artifacts", "required_in", i), env) for i, env in enumerate(policy.signed_artifacts_required_in)]
    refs += [(("judgment", "agreement", "environments", env), env) for env in policy.judgment.agreement_by_environment]
    for path, env in refs:
        if env not in names:
            yield ctx.in_file(policy.file, policy.source, "policy.unknown-environment", path,
                              POLICY_ENV.format(name=env), key=path[0] in ("instance_types", "judgment"))
