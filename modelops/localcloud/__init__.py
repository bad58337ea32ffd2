"""The local cloud: an embedded, SageMaker-compatible server (control plane, runtime, CloudWatch).

Client-side code (the boto3 client factory, the CLI, the local builder) reaches the local cloud only
through the functions below; the server itself (``python -m modelops.localcloud``) is a separate
process. This module stays light to import: the server, botocore and the image store are imported
inside the functions that need them.

Lifecycle::

    info = ensure_running(data_dir)          # starts a detached server when none runs, waits for it
    ensure_running(data_dir, timing=timing("aws", 0.05))  # SageMaker's phase lengths, scaled (timing.py)
    boto3.client("sagemaker", endpoint_url=info.url, region_name="eu-west-1", ...)  # any key, any region
    status(data_dir)                          # LocalCloudInfo, or None (stale records are cleaned)
    stop(data_dir)                            # True when a server was stopped
    log_path(data_dir)                        # the server's log file

Image store and model data (filled by the ``local`` builder)::

    add_image(data_dir, digest=..., image_uris=[...], code_dir=..., requirements=..., contract=...,
              environment={...}) -> LocalImage
    has_image(data_dir, digest) -> bool
    put_model_data(data_dir, "s3://bucket/key.tar.gz", archive) -> url

Every ARN the local cloud hands out carries :data:`LOCAL_ACCOUNT` and the request's region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.localcloud.lifecycle import (
    LOCAL_ACCOUNT,
    LocalCloudInfo,
    ensure_running,
    log_path,
    status,
    stop,
)
from modelops.localcloud.timing import PROFILES, Timing, timing

if TYPE_CHECKING:
    from modelops.localcloud.images import LocalImage
    from modelops.runtime import Progress

__all__ = [
    "LOCAL_ACCOUNT",
    "PROFILES",
    "LocalCloudInfo",
    "LocalImage",
    "Timing",
    "add_image",
    "botocore_session",
    "ensure_running",
    "has_image",
    "log_path",
    "prune",
    "put_model_data",
    "status",
    "stop",
    "timing",
]


def botocore_session() -> Any:
    """A botocore session that reads none of the user's AWS configuration.

    The local cloud needs botocore's service models, and its clients need endpoints and explicit
    credentials, never a profile: with ``AWS_PROFILE`` naming a profile that ~/.aws/config lacks (a
    CI agent with credentials in variables), botocore's default session raises ProfileNotFound on
    first use, which stopped the server from starting at all.
    """
    import botocore.session

    return botocore.session.Session(session_vars={"profile": (None, None, None, None)})


def add_image(data_dir: Path, *, digest: str, image_uris: Sequence[str], code_dir: Path,
              requirements: Path | None, contract: str, environment: Mapping[str, str],
              progress: Progress | None = None) -> LocalImage:
    """Put an image in the local cloud's image store (idempotent by digest); see ``images.add_image``."""
    from modelops.localcloud import images

    return images.add_image(data_dir, digest=digest, image_uris=image_uris, code_dir=code_dir,
                            requirements=requirements, contract=contract, environment=environment,
                            progress=progress)


def has_image(data_dir: Path, digest: str) -> bool:
    """Whether the image store holds an image with this digest."""
    from modelops.localcloud import images

    return images.has_image(data_dir, digest)


def put_model_data(data_dir: Path, url: str, archive: Path) -> str:
    """Store a model.tar.gz under an ``s3://bucket/key.tar.gz`` URL for CreateModel's ModelDataUrl."""
    from modelops.localcloud import objects

    return objects.put_model_data(data_dir, url, archive)


def prune(data_dir: Path, *, keep_image_uris: set[str], keep_model_data_urls: set[str], older_than: float,
          dry_run: bool = False) -> list[tuple[str, str, int]]:
    """Free the image and model data stores of what no kept URI names and was stored before
    ``older_than`` (epoch seconds): ``(kind, name, bytes)`` per image (``image``, its digest) and model
    data key (``model-data``, its URL) removed."""
    from modelops.localcloud import images, objects

    return ([("image", digest, size) for digest, size in
             images.prune_images(data_dir, keep_image_uris, older_than=older_than, dry_run=dry_run)]
            + [("model-data", url, size) for url, size in
               objects.prune_model_data(data_dir, keep_model_data_urls, older_than=older_than, dry_run=dry_run)])


def __getattr__(name: str) -> Any:
    # LocalImage lives with the image store; importing it lazily keeps this module light.
    if name == "LocalImage":
        from modelops.localcloud.images import LocalImage

        return LocalImage
    raise AttributeError(name)
