"""Moving a release through the promotion order: ``deploy`` (build, gates, the rollout of an
environment's waves, ``--through`` with the tests between stages), ``promote`` (a release that passed
the previous environment) and ``approve``. Each takes a frozen request and the
:class:`~modelops.runtime.Runtime`. Rollback lives in :mod:`~modelops.deploy.rollback`; status,
history, plan and sync in :mod:`~modelops.deploy.inspection`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

from modelops.config import Environment, Environments, ModelConfig, check_runs, load_model
from modelops.config.access import DEPLOY
from modelops.deploy import gates, judged, specs
from modelops.deploy.api import (
    TESTS_FAILED,
    ApprovalResult,
    ApproveRequest,
    DeployRequest,
    DeployResult,
    PromoteRequest,
    overall,
    why,
)
from modelops.deploy.repo import (
    Repo,
    find_release,
    ledger_key,
    open_repo,
    opened,
    poll_seconds,
    target_for_release,
    watch_seconds,
)
from modelops.deploy.review import review_answers
from modelops.deploy.rollout import (
    SUCCEEDED,
    EnvironmentRollout,
    RegionOutcome,
    halt_reason,
    reconcile_environment,
    time_limit,
)
from modelops.errors import ExitStatus, InputError, ModelopsError
from modelops.ledger.locks import region_locks
from modelops.runtime import NullProgress, Runtime

if TYPE_CHECKING:
    from pathlib import Path

    from modelops.clients import Clients
    from modelops.config.cases import CaseRequest
    from modelops.ledger import Ledger
    from modelops.verify import TestReport

BOTH_ENV_AND_THROUGH = "give --env or --through, not both"
REGION_WITH_THROUGH = "--region deploys regions of one environment: give --env, not --through"
NOT_IN_PROMOTION = "environment {environment} is not in the promotion order ({order})"
NO_IMAGE = "the build of {release} has no image for {environment}/{region}"
TESTS_FAILED_MESSAGE = ("tests of {release} failed in {environment} ({count} failed check(s)); not promoting to "
                        "{next}; `modelops test {model} --env {environment}` runs them again")
RELEASE_MISMATCH = "release {release} was built from commit {commit}, but that commit now builds {rebuilt}"
RELEASE_MISMATCH_HINT = "the build is not reproducible; deploy the model with --ref {commit} instead"
COMMIT_MISSING = "release {release} was built from commit {commit}, which this clone does not have"
COMMIT_MISSING_HINT = "fetch it (git fetch origin), or promote from a clone that has it"
INTERRUPTED = "interrupted (Ctrl-C): {regions}"
INTERRUPTED_HINT = ("follow it: modelops watch {model} --env {environment}; roll it back now: modelops rollout abort "
                    "{model} --env {environment}; or run the same command again to resume")
UPDATE_GOES_ON = ("{where}: the update to {release} goes on in SageMaker: it will reach 100% unwatched unless an "
                  "alarm fires{traffic}")
CREATE_GOES_ON = "{where}: SageMaker goes on creating the endpoint with {release}"
ROLLING_BACK_GOES_ON = "{where}: SageMaker goes on rolling the update back"
BUILT_UNCOMMITTED = "release {release} was built from uncommitted changes (on top of commit {commit})"
BUILT_UNCOMMITTED_HINT = ("a promoted release must be one a commit builds: commit the changes, then deploy that "
                          "commit (modelops deploy {model} --through {environment})")


def _chain(envs: Environments, request: DeployRequest) -> tuple[Environment, ...]:
    if request.environment and request.through:
        raise InputError(BOTH_ENV_AND_THROUGH)
    if request.regions and request.through:
        raise InputError(REGION_WITH_THROUGH)
    if request.through is None:
        return (envs.get(request.environment or (envs.promotion[0] if envs.promotion else "dev")),)
    last = envs.get(request.through)
    if last.name not in envs.promotion:
        raise InputError(NOT_IN_PROMOTION.format(environment=last.name, order=", ".join(envs.promotion)))
    return envs.in_promotion_order()[: envs.promotion.index(last.name) + 1]


# -- deploy ---------------------------------------------------------------------------------------


def deploy(request: DeployRequest, runtime: Runtime) -> DeployResult:
    """Deploy a model to one environment, or through the promotion order; gates before each."""
    repo = open_repo(runtime, request.ref)
    model = load_model(repo.ws, request.model, ref=request.ref)
    chain = _chain(repo.envs, request)
    for env in chain:
        check_runs(model, env)
        env.check_regions(request.regions)
    replay = _captured(request.replay)
    gates.check_policy(repo.ws, model, request.ref, runtime)
    outcomes: list[RegionOutcome] = []
    tests: list[TestReport] = []
    release = ""
    for i, env in enumerate(chain):
        runtime.progress.step(f"{env.name}: deploying {model.name}")
        result = deploy_environment(model, env, repo, request.ref, runtime, regions=request.regions, replay=replay)
        outcomes.extend(result.deployments)
        release = result.release
        reached = tuple(e.name for e in chain[: i + 1])
        if result.result != SUCCEEDED:
            return DeployResult(model.name, release, result.result, tuple(outcomes), result.message, reached,
                                tuple(tests))
        following = chain[i + 1] if i + 1 < len(chain) else _next_in_promotion(repo, env, request)
        report = _tests_gate(model, env, request.ref, release, runtime) if following is not None else None
        if report is not None:
            tests.append(report)
            if not report.passed:
                assert following is not None
                message = TESTS_FAILED_MESSAGE.format(release=release, environment=env.name, next=following.name,
                                                      count=len(report.failed_checks), model=model.name)
                return DeployResult(model.name, release, TESTS_FAILED, tuple(outcomes), message, reached,
                                    tuple(tests))
    return DeployResult(model.name, release, SUCCEEDED, tuple(outcomes), "", tuple(e.name for e in chain),
                        tuple(tests))


def _next_in_promotion(repo: Repo, last: Environment, request: DeployRequest) -> Environment | None:
    """After ``--through ENV``: the environment ENV promotes to, whose gate needs ENV's tests (run now, so
    ``promote --to`` it does not fail for tests nobody ran); None for a single ``--env`` deploy (CI runs
    its tests as a stage of their own) and for the last environment."""
    if request.through is None or last.name not in repo.envs.promotion:
        return None
    index = repo.envs.promotion.index(last.name)
    return repo.envs.get(repo.envs.promotion[index + 1]) if index + 1 < len(repo.envs.promotion) else None


def _captured(path: Path | None) -> tuple[CaseRequest, ...]:
    """The requests of ``--replay FILE``, read before anything deploys (a bad line: path:line)."""
    if path is None:
        return ()
    from modelops.config.cases import load_replay_file

    return load_replay_file(path)


def deploy_environment(model: ModelConfig, env: Environment, repo: Repo, ref: str | None,
                       runtime: Runtime, *, regions: tuple[str, ...] = (),
                       replay: tuple[CaseRequest, ...] = ()) -> DeployResult:
    """Build (cache hit when built before), pass the gates, and roll out to every region in waves
    (or only ``regions``: the same gates; see :func:`~modelops.deploy.rollback.roll_back_other_regions`
    for a rollback). A judged canary mirrors ``replay`` (captured requests) besides the model's inputs.

    Locks: an environment-wide deploy holds the (model, environment) lock, so two never run at once,
    and then every region's lock; a ``regions`` deploy holds only its regions' locks, so the regions
    of a wave deploy in parallel from separate processes (CI). Region locks are waited for (with a
    progress line) up to the longest a region's rollout may take; the environment lock is not."""
    from modelops.build import BuildRequest, build, verify_artifacts

    gates.check_clean_tree(repo.ws, model, env, repo.envs, ref)
    access = gates.access_rules(repo.ws)
    with opened(env, runtime) as (clients, ledger):
        identity = gates.acting_identity(runtime, repo.ws, clients)
        gates.check_permission(access, identity, DEPLOY, env.name)
        built = build(BuildRequest(model=model.folder or model.name, environment=env.name, ref=ref), runtime,
                      clients=clients)
        release = built.release
        gates.check_ledger(ledger, model.name, (release,))
        verify_artifacts(model, repo.ws.at(ref), environment=env, runtime=runtime)
        gates.check_not_blocked(ledger, release, env)
        previous = repo.envs.previous(env.name) if env.name in repo.envs.promotion else None
        _check_tests_in(previous, release, model, env, runtime, ledger)
        record = ledger.release(release)
        author = gates.release_author(record, repo.ws) if record is not None else None
        gates.check_approval(ledger, release, env, author, access)
        images = {img.region: img for img in built.images}
        targets: dict[str, specs.RegionTarget] = {}
        for region in env.regions:
            img = images.get(region)
            if img is None:
                raise InputError(NO_IMAGE.format(release=release, environment=env.name, region=region))
            targets[region] = specs.RegionTarget(
                model=model, environment=env, region=region, release=release, commit=built.commit,
                config_digest=built.config_digest, image_uri=img.image_uri, model_data_url=img.model_data_url)
        # Refuse a policy SageMaker would refuse before anything is created.
        any_target = next(iter(targets.values()))
        specs.validate_policy(any_target.policy, environment=env.name, instance_count=any_target.instance_count)
        rollout = EnvironmentRollout(
            targets=targets,
            previous_targets=lambda region, rel: target_for_release(model, env, region, rel, ledger, repo.ws),
            roll_back_completed_regions=repo.envs.roll_back_completed_regions,
            actor=str(identity),
            judge=judged.setup(model, env, repo.ws, ref, captured=replay),
        )
        from modelops.deploy.traffic import traffic_starter
        from modelops.ledger.records import LockHolder

        holder = LockHolder.current(identity.name)
        wanted = tuple(r for r in env.regions if r in regions) if regions else env.regions
        wait = time_limit(any_target.policy)
        with ExitStack() as locks:
            if not regions:
                locks.enter_context(ledger.lock(model.name, env.name, holder))
            locks.enter_context(region_locks(ledger, model.name, env.name, wanted, holder, runtime, wait,
                                             poll=poll_seconds(env)))
            traffic = traffic_starter(model, env, repo.ws, ref, runtime)
            try:
                outcomes = reconcile_environment(rollout, clients=clients, ledger=ledger, runtime=runtime,
                                                 traffic=traffic, poll_seconds=poll_seconds(env),
                                                 watch_seconds=watch_seconds(env), regions=wanted)
            except KeyboardInterrupt:
                raise interrupted(rollout, wanted, clients, synthetic_traffic=traffic is not None) from None
        reason = halt_reason(outcomes)
        if regions and reason is not None and rollout.roll_back_completed_regions:
            from modelops.deploy.rollback import roll_back_other_regions

            outcomes += roll_back_other_regions(rollout, env, release, wanted, clients, ledger, holder, runtime,
                                                wait=wait, reason=reason)
    result = overall(outcomes)
    return DeployResult(model.name, release, result, outcomes, why(outcomes), (env.name,))


def _check_tests_in(previous: Environment | None, release: str, model: ModelConfig, env: Environment,
                    runtime: Runtime, ledger: Ledger) -> None:
    if previous is None:
        return
    if ledger_key(previous) == ledger_key(env):
        gates.check_tests(ledger, release, model.name, env, previous)
        return
    with opened(previous, runtime) as (_, prev_ledger):
        gates.check_ledger(prev_ledger, model.name, (release,))
        gates.check_tests(prev_ledger, release, model.name, env, previous)


def _tests_gate(model: ModelConfig, env: Environment, ref: str | None, release: str,
                runtime: Runtime) -> TestReport | None:
    """Between stages of ``--through``: the release's tests in ``env`` (run unless they passed already:
    None); the report's ``failed_checks`` are what the result says when they failed."""
    with opened(env, runtime) as (clients, ledger):
        if ledger.tests_passed(release, env.name, regions=env.regions):
            runtime.progress.step(f"{env.name}: tests of {release} passed before")
            return None
        from modelops.verify import TestRequest, run_tests

        runtime.progress.step(f"{env.name}: testing {release}")
        report = run_tests(TestRequest(model=model.folder or model.name, environment=env.name, ref=ref), runtime,
                           clients=clients)
    return report


def promote(request: PromoteRequest, runtime: Runtime) -> DeployResult:
    """Deploy an existing release (built before, tests passed before) to the next environment."""
    repo = open_repo(runtime)
    env = repo.envs.get(request.to)
    record = find_release(request.release, repo, runtime)
    from modelops.build.service import DIRTY_SUFFIX

    if record.commit.endswith(DIRTY_SUFFIX):
        raise InputError(BUILT_UNCOMMITTED.format(release=request.release,
                                                  commit=record.commit.removesuffix(DIRTY_SUFFIX)[:12]),
                         hint=BUILT_UNCOMMITTED_HINT.format(model=record.model, environment=env.name))
    try:
        repo.ws.at(record.commit)
    except InputError as err:
        raise InputError(COMMIT_MISSING.format(release=request.release, commit=record.commit[:12]),
                         hint=COMMIT_MISSING_HINT) from err
    # The release this commit builds now, before anything is deployed: a promotion that rolled out
    # something else and only then said so would have changed the environment it refused.
    model = load_model(repo.ws, record.model, ref=record.commit)
    rebuilt, _ = desired_release(model, env, record.commit, runtime)
    if rebuilt != request.release:
        raise InputError(RELEASE_MISMATCH.format(release=request.release, commit=record.commit[:12], rebuilt=rebuilt),
                         hint=RELEASE_MISMATCH_HINT.format(commit=record.commit[:12]))
    return deploy(DeployRequest(model=record.model, environment=env.name, ref=record.commit, replay=request.replay),
                  runtime)


# -- approve --------------------------------------------------------------------------------------


def approve(request: ApproveRequest, runtime: Runtime) -> ApprovalResult:
    """Record who approves a release for an environment: someone pipelines/access.yaml lets approve
    there and, with four-eyes, not its author (see :func:`~modelops.deploy.gates.check_approver`).
    The result carries the release's answer diff against what serves there
    (:func:`~modelops.deploy.review.review_answers`); ``request.show`` returns only that."""
    from modelops.ledger.records import Approval

    repo = open_repo(runtime)
    env = repo.envs.get(request.environment)
    record = find_release(request.release, repo, runtime)
    access = gates.access_rules(repo.ws)
    with opened(env, runtime) as (clients, ledger):
        answers = review_answers(record, env, repo, runtime, ledger)
        if request.show:
            return ApprovalResult(record.model, request.release, env.name, "", False, answers=answers, shown_only=True)
        who = gates.acting_identity(runtime, repo.ws, clients)
        decision = gates.check_approver(who, gates.release_author(record, repo.ws), access, release=request.release,
                                        commit=record.commit, environment=env)
        recorded = ledger.record_approval(Approval(
            model=record.model, release=request.release, environment=env.name, by=who.name, comment=request.comment,
            source=who.source, authenticated=who.authenticated, principal=who.principal or ""))
    return ApprovalResult(record.model, request.release, env.name, who.name, recorded, who.source, who.authenticated,
                          decision.rule.where if decision.rule.file else "", answers)


def desired_release(model: ModelConfig, env: Environment, ref: str | None, runtime: Runtime) -> tuple[str, str | None]:
    """The release a deploy would roll out: the build's digests, from its rendered context only
    (nothing is built, pushed or recorded)."""
    import tempfile
    from pathlib import Path

    from modelops.build import BuildRequest, build

    # Quietly: build's "wrote the build context to /tmp/modelops-plan-..." named a folder that is gone
    # by the time the user reads it, from a command that says it changes nothing.
    quiet = replace(runtime, progress=NullProgress())
    with tempfile.TemporaryDirectory(prefix="modelops-plan-") as tmp:
        found = build(BuildRequest(model=model.folder or model.name, environment=env.name, ref=ref,
                                   context_only=Path(tmp) / "context"), quiet)
    return found.release, found.commit


def interrupted(rollout: EnvironmentRollout, regions: Sequence[str], clients: Clients, *,
                synthetic_traffic: bool) -> ModelopsError:
    """Ctrl-C during a rollout: what the cloud will now do without this process, region by region (a
    SageMaker update goes on), and how to follow or stop it. Exit 130."""
    from modelops.deploy.cloud import RegionCloud
    from modelops.deploy.machine import CREATING, ROLLING_BACK, UPDATING

    lines = []
    for region in regions:
        target = rollout.targets[region]
        where = f"{target.environment.name}/{region}"
        try:
            ep = RegionCloud(clients, region).endpoint(target.endpoint_name, with_tags=False)
        except ModelopsError:
            lines.append(f"{where}: could not ask the cloud what it does now")
            continue
        if ep is None:
            continue
        if ep.status == UPDATING and ep.pending_config == target.endpoint_config_name:
            lines.append(UPDATE_GOES_ON.format(where=where, release=target.release, traffic=(
                " (the synthetic traffic stopped with this run: the alarms see real traffic only)"
                if synthetic_traffic else "")))
        elif ep.status == CREATING and ep.config_name == target.endpoint_config_name:
            lines.append(CREATE_GOES_ON.format(where=where, release=target.release))
        elif ep.status == ROLLING_BACK:
            lines.append(ROLLING_BACK_GOES_ON.format(where=where))
    any_target = next(iter(rollout.targets.values()))
    return ModelopsError(
        INTERRUPTED.format(regions="; ".join(lines) or "nothing is changing in the cloud"),
        hint=INTERRUPTED_HINT.format(model=any_target.model.name, environment=any_target.environment.name),
        exit_status=ExitStatus.INTERRUPTED)
