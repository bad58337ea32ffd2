"""Deterministic SageMaker resource names and tags, shared by build, deploy and verify.

A release is content-addressed: ``<model>-<10 hex>`` from the build digest and the config digest, so
a commit that does not touch a model yields the same release (no needless rollout). One endpoint per
(model, environment) in each region keeps its name across releases (blue/green updates it in place);
models and endpoint configs carry the release so re-running a deploy finds what it already made.
SageMaker names: at most 63 characters of ``[a-zA-Z0-9](-*[a-zA-Z0-9])*``.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
TAG_RELEASE = "modelops:release"
TAG_MODEL = "modelops:model"
TAG_COMMIT = "modelops:git-commit"
TAG_CONFIG_DIGEST = "modelops:config-digest"
TAG_ENVIRONMENT = "modelops:environment"

_INVALID = re.compile(r"[^a-zA-Z0-9]+")


def _clean(text: str) -> str:
    return _INVALID.sub("-", text).strip("-")


def _fit(name: str) -> str:
    """Names longer than SageMaker allows keep their head and gain a hash of the whole."""
    name = _clean(name)
    if len(name) <= MAX_NAME:
        return name
    suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{suffix}"


def release_id(model: str, build_digest: str, config_digest: str) -> str:
    """``<model>-<10 hex>``: the same build and config give the same release on any machine."""
    both = hashlib.sha256(f"{build_digest}\n{config_digest}".encode()).hexdigest()
    return _fit(f"{model[:50]}-{both[:10]}")


def release_suffix(release: str) -> str:
    """The hex tail of a release id (``iris-0123456789`` -> ``0123456789``)."""
    return release.rsplit("-", 1)[-1]


def endpoint_name(model: str, environment: str) -> str:
    """The endpoint of a model in one environment; the same name in each of its regions."""
    return _fit(f"{model}-{environment}")


def model_name(model: str, environment: str, release: str) -> str:
    """The SageMaker Model of a release in one environment."""
    return _fit(f"{model[:40]}-{environment[:10]}-{release_suffix(release)}")


def endpoint_config_name(model: str, environment: str, release: str) -> str:
    """The endpoint config of a release in one environment."""
    return _fit(f"{model[:38]}-{environment[:10]}-{release_suffix(release)}-ec")


def judging_config_name(model: str, environment: str, release: str) -> str:
    """The endpoint config of a judged canary of a release: the serving release and the candidate side by side."""
    return _fit(f"{model[:38]}-{environment[:10]}-{release_suffix(release)}-jc")


# A blue/green update must keep the variant names of the endpoint (the spec), so every release serves
# from the same one; the release it runs is in the endpoint config's name and the endpoint's tags.
PRIMARY_VARIANT = "primary"


def alarm_name(model: str, environment: str, kind: str) -> str:
    """CloudWatch alarm made by modelops for an endpoint (kind: ``p99-latency`` | ``5xx-rate``)."""
    return f"modelops-{_clean(model)}-{_clean(environment)}-{_clean(kind)}"
