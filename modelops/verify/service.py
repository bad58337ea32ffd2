"""``run_tests``: regression cases and a load test against a model's endpoint in each region of an
environment, SLOs and the baseline, results recorded in the ledger for deploy's gates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelops import naming
from modelops.config import Cases, Environment, ModelConfig, Policy, Workspace, check_runs
from modelops.config.model import Slo
from modelops.errors import EnvironmentFailedError, InputError
from modelops.runtime import Runtime
from modelops.verify.load import LoadPlan, LoadStats, Target, run_load
from modelops.verify.regression import CaseResult, run_cases
from modelops.verify.slo import LimitCheck, baseline_checks, slo_checks

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Ledger

KINDS = ("regression", "load")
BAD_ONLY = "--only must be one of regression, load (got {only!r})"
ENDPOINT_MISSING = "endpoint {endpoint} not found in {region} ({env})"
ENDPOINT_MISSING_HINT = "deploy the model first: modelops deploy {model} --env {env}"
ENDPOINT_NOT_READY = "endpoint {endpoint} in {region} is {status}, not InService"
ENDPOINT_NOT_READY_HINT = "wait for the rollout to finish (modelops status {model}) and run the tests again"
CLOUD_LOST = ("{env}/{region}: the cloud stopped answering during the load test ({failures} of {requests} requests "
              "failed), so it says nothing about the release: {reason}")
NO_LOAD_PROFILE = "{file}: spec.tests.load is not set, so there is no load test to run"
NO_LOAD_PROFILE_HINT = "add spec.tests.load (users, spawn_rate, duration_seconds, slo) to model.yaml"
UNTAGGED = "untagged"


@dataclass(frozen=True)
class TestRequest:
    """What ``modelops test`` was asked. ``only``: ``regression`` | ``load`` | None (both);
    ``workers`` > 0 runs locust's master and that many workers; ``users``, ``spawn_rate`` and
    ``duration_seconds`` override model.yaml's load profile; ``ref`` reads configs at a git ref."""

    __test__ = False  # not a pytest class

    model: str
    environment: str = "dev"
    region: str | None = None
    only: str | None = None
    workers: int = 0
    ref: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    duration_seconds: float | None = None
    record: bool = True


@dataclass(frozen=True)
class Baseline:
    release: str
    metrics: Mapping[str, float]
    at: float = 0.0


@dataclass(frozen=True)
class LoadResult:
    """A load run and what it was held to (SLOs, then the baseline when there is one)."""

    stats: LoadStats
    plan: LoadPlan
    checks: tuple[LimitCheck, ...] = ()
    baseline: Baseline | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def summary(self) -> str:
        s = self.stats
        failed = [c.name for c in self.checks if not c.passed]
        head = (f"{s.requests} requests, {s.rps:.1f} req/s, p50 {s.p50_ms} ms, p95 {s.p95_ms} ms, "
                f"p99 {s.p99_ms} ms, errors {s.error_rate:.2%}")
        return head + (f"; failed: {', '.join(failed)}" if failed else "")

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {"p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "p99_ms": s.p99_ms, "rps": round(s.rps, 3),
                "error_rate": round(s.error_rate, 6), "passed": self.passed,
                "users": self.plan.users, "workers": self.plan.workers, "duration_seconds": s.duration_seconds,
                "checks": [c.to_dict() for c in self.checks],
                "baseline": None if self.baseline is None else {"release": self.baseline.release,
                                                                 "metrics": dict(self.baseline.metrics)},
                "stats": s.to_dict()}


@dataclass(frozen=True)
class RegionReport:
    """The tests of one region. ``regression``/``load`` are None when not run (``--only``, or no
    load profile: ``load_skipped`` says why)."""

    region: str
    endpoint: str
    release: str
    regression: tuple[CaseResult, ...] | None = None
    load: LoadResult | None = None
    load_skipped: str = ""

    @property
    def regression_passed(self) -> bool:
        return self.regression is None or all(r.passed for r in self.regression)

    @property
    def passed(self) -> bool:
        return self.regression_passed and (self.load is None or self.load.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "endpoint": self.endpoint, "release": self.release, "passed": self.passed,
                "regression": None if self.regression is None else [r.to_dict() for r in self.regression],
                "load": None if self.load is None else self.load.to_dict(), "load_skipped": self.load_skipped}


@dataclass(frozen=True)
class FailedCheck:
    """One check a test run failed, with its figures: a regression case's unmet expectation
    (``measured``: what the endpoint answered, ``threshold``: what the case expects) or a load figure
    against an SLO or the baseline (``threshold``: the limit with its comparison). ``check`` names
    it as JUnit and ``modelops test`` do (``regression.<case>``, ``slo.p95_ms``, ``baseline.rps``);
    ``where`` is the file:line that sets it."""

    region: str
    kind: str  # regression | slo | baseline
    check: str
    measured: str
    threshold: str
    detail: str = ""
    where: str = ""

    @property
    def message(self) -> str:
        """One line: ``us-east-1 slo.rps: measured 12.3 req/s, threshold >= 20.0 req/s``."""
        text = f"{self.region} {self.check}: measured {self.measured}, threshold {self.threshold}"
        return text + (f" ({self.detail})" if self.detail else "") + (f" [{self.where}]" if self.where else "")

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "kind": self.kind, "check": self.check, "measured": self.measured,
                "threshold": self.threshold, "detail": self.detail, "where": self.where, "message": self.message}


def failed_checks(region: RegionReport, *, model_file: str | None = None) -> tuple[FailedCheck, ...]:
    """What failed in one region's tests, one entry per unmet expectation or limit."""
    found: list[FailedCheck] = []
    for case in region.regression or ():
        for f in case.failures:
            line = f.line or case.line
            where = f"{case.file}:{line}" if case.file and line else (case.file or "")
            found.append(FailedCheck(region.region, "regression", f"regression.{case.case}", f.actual,
                                     f"expected {f.expected}", f.path, where))
    if region.load is not None:
        found.extend(FailedCheck(region.region, c.kind, c.name, c.measured, c.threshold, c.detail, model_file or "")
                     for c in region.load.checks if not c.passed)
    return tuple(found)


@dataclass(frozen=True)
class TestReport:
    """Everything ``modelops test`` found. ``release`` is what the endpoint's ``modelops:release``
    tag names (the first region's; each region's own is in ``regions``)."""

    __test__ = False

    model: str
    environment: str
    release: str
    regions: tuple[RegionReport, ...] = ()
    cases_file: str | None = None
    model_file: str | None = None
    slo: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.regions)

    @property
    def failed_checks(self) -> tuple[FailedCheck, ...]:
        """Every failed check of every region, with its figures (what ``deploy --through`` prints)."""
        return tuple(c for r in self.regions for c in failed_checks(r, model_file=self.model_file))

    def to_dict(self) -> dict[str, Any]:
        """The ``--output json`` document: ``passed``, ``regression`` (every case of every region),
        ``load`` (the worst region's figures: highest latencies and error rate, lowest throughput),
        and ``regions`` with the full detail."""
        regression = [{**r.to_dict(), "region": reg.region} for reg in self.regions for r in reg.regression or ()]
        loads = [reg.load for reg in self.regions if reg.load is not None]
        load: dict[str, Any] | None = None
        if loads:
            def worst(metric: str, pick: Any) -> float | None:
                values = [getattr(x.stats, metric) for x in loads if getattr(x.stats, metric) is not None]
                return pick(values) if values else None

            load = {"p50_ms": worst("p50_ms", max), "p95_ms": worst("p95_ms", max), "p99_ms": worst("p99_ms", max),
                    "rps": worst("rps", min), "error_rate": worst("error_rate", max),
                    "passed": all(x.passed for x in loads)}
        return {"passed": self.passed, "model": self.model, "environment": self.environment,
                "release": self.release, "regression": regression, "load": load,
                "failed_checks": [c.to_dict() for c in self.failed_checks],
                "regions": [r.to_dict() for r in self.regions]}


def _plan(model: ModelConfig, request: TestRequest) -> LoadPlan | None:
    profile = model.tests.load
    if profile is None:
        return None
    return LoadPlan(users=request.users or profile.users,
                    spawn_rate=request.spawn_rate or profile.spawn_rate,
                    duration_seconds=request.duration_seconds or float(profile.duration_seconds),
                    workers=request.workers)


def endpoint_release(clients: Clients, region: str, endpoint: str, *, model: str, env: str) -> str:
    """The release an endpoint serves (its ``modelops:release`` tag); errors when it is missing or
    not InService."""
    from modelops.clients import is_not_found, translate

    sm = clients.client("sagemaker", region)
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
    except Exception as exc:
        if is_not_found(exc):
            raise InputError(ENDPOINT_MISSING.format(endpoint=endpoint, region=region, env=env),
                             hint=ENDPOINT_MISSING_HINT.format(model=model, env=env)) from exc
        raise translate(exc, resource=f"{env}:{region}:{endpoint}") from exc
    status = described.get("EndpointStatus")
    if status != "InService":
        raise EnvironmentFailedError(ENDPOINT_NOT_READY.format(endpoint=endpoint, region=region, status=status),
                                     hint=ENDPOINT_NOT_READY_HINT.format(model=model))
    try:
        tags = sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags", [])
    except Exception as exc:
        raise translate(exc, resource=f"{env}:{region}:{endpoint}") from exc
    return next((t["Value"] for t in tags if t.get("Key") == naming.TAG_RELEASE), UNTAGGED)


def _regions(environment: Environment, region: str | None) -> tuple[str, ...]:
    if region is None:
        return tuple(environment.regions)
    environment.check_regions((region,))
    return (region,)


def _regression(clients: Clients, region: str, endpoint: str, cases: Cases, runtime: Runtime,
                resource: str) -> tuple[CaseResult, ...]:
    from modelops.verify.invoke import invoke

    client = clients.client("sagemaker-runtime", region)
    task = f"regression {region}"
    runtime.progress.start(task, total=len(cases))
    try:
        def advance(result: CaseResult) -> None:
            runtime.progress.advance(task, message=f"{result.case} {'ok' if result.passed else 'FAILED'}")

        return run_cases(cases.cases, lambda case: invoke(client, endpoint, case.request, runtime.clock,
                                                          resource=resource), advance)
    finally:
        runtime.progress.finish(task)


def _load(clients: Clients, region: str, endpoint: str, release: str, model: ModelConfig, cases: Cases,
          plan: LoadPlan, policy: Policy, ledger: Ledger | None, environment: str, runtime: Runtime) -> LoadResult:
    from modelops.clients import translate

    client = clients.client("sagemaker-runtime", region)
    try:
        access_key, secret_key, token = clients.signing_credentials()
        target = Target(client.meta.endpoint_url, region, endpoint, access_key, secret_key, token)
    except Exception as exc:
        raise translate(exc, resource=f"{environment}:{region}:{endpoint}") from exc
    stats = run_load(target, plan, cases.load_mix(), runtime, task=f"load {region}")
    if stats.failures:
        _check_still_reachable(clients, region, endpoint, environment, stats.failures, stats.requests)
    checks = slo_checks(stats, model.tests.load.slo if model.tests.load else Slo())
    baseline = None
    record = ledger.baseline(model.name, environment, region, exclude_release=release) if ledger else None
    if record is not None:
        baseline = Baseline(record.release, dict(record.metrics), float(record.at))
        checks = (*checks, *baseline_checks(stats, baseline.metrics, baseline.release, policy))
    return LoadResult(stats=stats, plan=plan, checks=checks, baseline=baseline)


def _check_still_reachable(clients: Clients, region: str, endpoint: str, environment: str, failures: int,
                           requests: int) -> None:
    """Requests failed during the load test: when the cloud itself no longer answers (the local cloud
    stopped, the network went), that is the environment failing (exit 3), not the release failing
    its SLOs (exit 1, recorded against it)."""
    from modelops.clients import translate

    try:
        clients.client("sagemaker", region).describe_endpoint(EndpointName=endpoint)
    except Exception as exc:
        error = translate(exc, resource=f"{environment}:{region}:{endpoint}")
        if isinstance(error, EnvironmentFailedError):
            raise EnvironmentFailedError(CLOUD_LOST.format(env=environment, region=region, failures=failures,
                                                           requests=requests, reason=error.message),
                                         hint=error.hint) from exc


def _record(ledger: Ledger | None, report: RegionReport, model: str, environment: str) -> None:
    from modelops.ledger import LOAD, REGRESSION, TestRecord

    if ledger is None or report.release == UNTAGGED:
        return
    if report.regression is not None:
        failed = [r.case for r in report.regression if not r.passed]
        summary = (f"{len(report.regression)} cases passed" if not failed
                   else f"{len(failed)} of {len(report.regression)} cases failed: {', '.join(failed)}")
        ledger.record_test(TestRecord(model, report.release, environment, report.region, REGRESSION,
                                      not failed, summary,
                                      {"cases": float(len(report.regression)), "failed": float(len(failed))}))
    if report.load is not None:
        ledger.record_test(TestRecord(model, report.release, environment, report.region, LOAD, report.load.passed,
                                      report.load.summary(), report.load.stats.metrics()))
    elif report.load_skipped:
        # No load profile: nothing to hold the release to, which is a pass for deploy's gate.
        ledger.record_test(TestRecord(model, report.release, environment, report.region, LOAD, True,
                                      report.load_skipped, {}))


def run_tests(request: TestRequest, runtime: Runtime, *, clients: Clients | None = None) -> TestReport:
    """Run the model's regression cases and load test against its endpoint in each region of the
    environment (or ``request.region``); record the results in the ledger; return the report.
    Failed tests are a report with ``passed`` False, not an exception."""
    from modelops.config import load_cases, load_environments, load_model, load_policy

    if request.only is not None and request.only not in KINDS:
        raise InputError(BAD_ONLY.format(only=request.only))
    ws = Workspace.discover(runtime.cwd)
    model = load_model(ws, request.model, request.ref)
    environment = load_environments(ws, request.ref).get(request.environment)
    policy = load_policy(ws, request.ref)
    cases = load_cases(ws, model, request.ref)
    regions = _regions(environment, request.region)
    # A model that cannot run there has no endpoint to test: say why, not "deploy it first".
    check_runs(model, environment, consequence=", so it has no endpoint there")
    run_regression = request.only in (None, "regression")
    run_load_test = request.only in (None, "load")
    plan = _plan(model, request)
    if request.only == "load" and plan is None:
        raise InputError(NO_LOAD_PROFILE.format(file=model.file), hint=NO_LOAD_PROFILE_HINT)
    # The same statement validate checks (config.tests), so a model deploy cannot test is found first.
    cannot = cases.cannot_run(model.folder, regression=run_regression, load=run_load_test and plan is not None)
    if cannot is not None:
        raise InputError(cannot[0], hint=cannot[1])
    if clients is None:
        from modelops.clients import clients_for

        clients = clients_for(environment, runtime)
    ledger = None
    if request.record:
        from modelops.ledger import open_ledger

        ledger = open_ledger(clients, runtime)
    endpoint = naming.endpoint_name(model.name, environment.name)
    reports = []
    try:
        for region in regions:
            release = endpoint_release(clients, region, endpoint, model=model.name, env=environment.name)
            runtime.progress.step(f"testing {endpoint} in {region} (release {release})")
            report = RegionReport(region=region, endpoint=endpoint, release=release)
            resource = f"{environment.name}:{region}:{endpoint}"
            if run_regression:
                report = replace(report, regression=_regression(clients, region, endpoint, cases, runtime, resource))
            if run_load_test:
                if plan is None:
                    report = replace(report, load_skipped=NO_LOAD_PROFILE.format(file=model.file))
                else:
                    report = replace(report, load=_load(clients, region, endpoint, release, model, cases, plan,
                                                        policy, ledger, environment.name, runtime))
            _record(ledger, report, model.name, environment.name)
            reports.append(report)
    finally:
        if ledger is not None:
            ledger.close()
    slo = model.tests.load.slo if model.tests.load else None
    return TestReport(model=model.name, environment=environment.name,
                      release=reports[0].release if reports else UNTAGGED, regions=tuple(reports),
                      cases_file=cases.file, model_file=model.file,
                      slo={k: float(v) for k, v in (slo.__dict__.items() if slo else ()) if v is not None})
