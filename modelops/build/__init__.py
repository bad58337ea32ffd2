"""DLC image resolution, deterministic build contexts and their digests, builders, artifact manifests.

Public API (stable; changes are additive)::

    build(BuildRequest(model, environment="dev", ref=None, context_only=None, builder=None, sign_key=None),
          runtime, *, clients=None) -> BuildResult
        # BuildResult: release, model, environment, commit, digest ("sha256:..."), config_digest,
        #   manifest_digest, builder, cache_hit, images: tuple[BuildImage(region, image_uri, model_data_url)],
        #   base_images {region: DLC URI}, context_dir, signed; .to_dict() is the --output json document.
        # Records the release and one build record per region in the environment's ledger.
    verify_artifacts(model, workspace, *, environment, policy=None, runtime=None, public_key=None) -> Manifest
        # before deploy: artifact files vs their pins, the cached model data archive, the manifest
        # signature (required where policy.signed_artifacts.required_in says); GateError naming the file.
    config_digest(model) -> "sha256:..."

Modules: :mod:`~modelops.build.dlc` (sagemaker-core ``image_uris``, imported lazily and cached),
:mod:`~modelops.build.context` (rendering and the digest: what it covers is documented there),
:mod:`~modelops.build.artifacts` (manifest, model data archive, model-signing),
:mod:`~modelops.build.builders` (local, docker, codebuild), :mod:`~modelops.build.lint` (hadolint
checker for validate; imported by the CLI, not here, so that importing this package stays light).
"""

from modelops.build.artifacts import Manifest
from modelops.build.service import (
    BuildImage,
    BuildRequest,
    BuildResult,
    build,
    config_digest,
    verify_artifacts,
)

__all__ = ["BuildImage", "BuildRequest", "BuildResult", "Manifest", "build", "config_digest", "verify_artifacts"]
