"""DLC image resolution, deterministic build contexts and their digests, builders, artifact manifests."""
