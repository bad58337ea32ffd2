"""What every deploy command works on: the repository and its environments at a ref, the models that
load there, and per environment the clients and ledger it opens. Shared by deploy, rollback and the
inspection commands (status, history, plan, sync)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelops.config import Environment, Environments, ModelConfig, Workspace, load_environments, load_model
from modelops.deploy import gates, specs
from modelops.errors import ModelopsError
from modelops.runtime import Runtime

if TYPE_CHECKING:
    from modelops.clients import Clients
    from modelops.ledger import Ledger
    from modelops.ledger.records import ReleaseRecord


@dataclass(frozen=True)
class Repo:
    """The repository (``ws``) and its environments as read at one ref."""

    ws: Workspace
    envs: Environments


def open_repo(runtime: Runtime, ref: str | None = None) -> Repo:
    ws = Workspace.discover(runtime.cwd)
    return Repo(ws, load_environments(ws, ref=ref))


def poll_seconds(env: Environment) -> float:
    """How often a rollout looks at the cloud: the local cloud answers at once, AWS in minutes."""
    return 0.5 if env.is_local else 15.0


def watch_seconds(env: Environment) -> float | None:
    """How often a waiting rollout asks DescribeEndpoint alone between its passes, so it takes its next
    step as soon as the endpoint changes (``rollout.wait_for_change``). The local cloud moves an
    endpoint on a 0.1 s tick and throttles nothing; AWS (None) throttles DescribeEndpoint and moves
    it in minutes, so the pass every ``poll_seconds`` is all it is asked."""
    return 0.1 if env.is_local else None


@contextmanager
def opened(env: Environment, runtime: Runtime) -> Iterator[tuple[Clients, Ledger]]:
    """The environment's clients and its ledger (closed afterwards)."""
    from modelops.clients import clients_for
    from modelops.ledger import open_ledger

    clients = clients_for(env, runtime)
    ledger = open_ledger(clients, runtime)
    try:
        yield clients, ledger
    finally:
        ledger.close()


def ledger_key(env: Environment) -> tuple[str, str]:
    """Which ledger an environment writes to: local environments share one; an aws one is its
    account's, in its first region (what ``open_ledger`` picks unless $MODELOPS_LEDGER_REGION says)."""
    return ("local", "") if env.is_local else (env.account, env.regions[0])


def distinct_ledgers(repo: Repo) -> list[Environment]:
    """One environment per distinct ledger (local environments share one)."""
    first: dict[tuple[str, str], Environment] = {}
    for env in repo.envs.in_promotion_order() or tuple(repo.envs):
        first.setdefault(ledger_key(env), env)
    return list(first.values())


def find_release(release: str, repo: Repo, runtime: Runtime) -> ReleaseRecord:
    """The ledger's record of ``release``, from whichever ledger holds it."""
    for env in distinct_ledgers(repo):
        with opened(env, runtime) as (_, ledger):
            record = ledger.release(release)
        if record is not None:
            return record
    raise gates.unknown_release(release)


def models_named(repo: Repo, name: str | None, ref: str | None = None) -> list[ModelConfig]:
    """The model ``name`` at ``ref``, or every model that loads there (None)."""
    if name is not None:
        return [load_model(repo.ws, name, ref=ref)]
    return loadable_models(repo, ref)[0]  # validate reports broken models; status shows the ones that load


def loadable_models(repo: Repo, ref: str | None) -> tuple[list[ModelConfig], list[str]]:
    """Every model at ``ref`` that loads, and one error line per model folder that does not."""
    models, broken = [], []
    for folder in repo.ws.at(ref).model_folders():
        try:
            models.append(load_model(repo.ws, folder, ref=ref))
        except ModelopsError as err:
            broken.append(err.message if err.message.startswith(f"{folder}/") else f"{folder}: {err.message}")
    return models, broken


def target_for_release(model: ModelConfig, env: Environment, region: str, release: str, ledger: Ledger,
                       ws: Workspace) -> specs.RegionTarget:
    """The target of an earlier release (a rollback): its build and its config at its commit. Its
    model and endpoint config normally still exist, so only UpdateEndpoint is needed. The ledger's
    entries of that release are verified first: a forged build record would name another image."""
    gates.check_ledger(ledger, model.name, (release,))
    record = ledger.release(release)
    builds = {b.region: b for b in ledger.builds(release, env.name)}
    at = model
    if record is not None:
        try:
            at = load_model(ws, model.folder or model.name, ref=record.commit)
        except ModelopsError:
            at = model  # the commit is gone (a dev build of a dirty tree): its resources still exist
    b = builds.get(region)
    return specs.RegionTarget(
        model=at, environment=env, region=region, release=release,
        commit=record.commit if record else "", config_digest=record.config_digest if record else "",
        image_uri=b.image_uri if b else "", model_data_url=b.model_data_url if b else None)
