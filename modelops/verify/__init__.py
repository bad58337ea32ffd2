"""Regression cases and load tests against endpoints through the SageMaker runtime API; SLOs, baselines.

Public API (names load lazily: ``python -m modelops.verify.loadrun`` imports this package before
gevent patches the process, so nothing heavy may load here)::

    TestRequest(model, environment="dev", region=None, only=None, workers=0, ref=None,
                users=None, spawn_rate=None, duration_seconds=None, record=True)
    run_tests(request, runtime, *, clients=None) -> TestReport
        # TestReport: model, environment, release (the endpoint's modelops:release tag), passed,
        #   regions: RegionReport(region, endpoint, release, regression: tuple[CaseResult] | None,
        #   load: LoadResult | None (stats, plan, checks, baseline), load_skipped: why no load test ran);
        #   .failed_checks: FailedCheck(region, kind, check, measured, threshold, detail, where) per failure;
        #   .to_dict() is --output json.
        # Records a TestRecord per (region, kind) in the environment's ledger.
    send_traffic(clients, region, endpoint, cases, *, rate, runtime) -> TrafficSender
        # synthetic traffic for deploy's bake periods: the regression requests at `rate` per second
        # in a background thread; .stop() -> TrafficStats(sent, errors, by_status); also a context manager.
    modelops.verify.invoke.invoke(client, endpoint, CaseRequest, clock, *, resource,
                                  raise_service_errors=False) -> Invocation
        # the one InvokeEndpoint seam: regression cases, synthetic traffic, and deploy's `invoke` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.verify.service import (
        FailedCheck,
        LoadResult,
        RegionReport,
        TestReport,
        TestRequest,
        run_tests,
    )
    from modelops.verify.traffic import TrafficSender, TrafficStats, send_traffic

__all__ = ["FailedCheck", "LoadResult", "RegionReport", "TestReport", "TestRequest", "TrafficSender", "TrafficStats",
           "run_tests", "send_traffic"]

_HOMES = {
    "FailedCheck": "service", "LoadResult": "service", "RegionReport": "service", "TestReport": "service", "TestRequest": "service",
    "run_tests": "service", "TrafficSender": "traffic", "TrafficStats": "traffic", "send_traffic": "traffic",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"modelops.verify.{home}"), name)
