"""build's terminal summary keeps the image URI and the model data URL whole, one per line."""

from __future__ import annotations

from modelops.build import BuildImage, BuildResult
from modelops.cli.build import image_lines


def test_image_and_model_data_uris_are_whole_one_per_line() -> None:
    image = "000000000000.dkr.ecr.ap-southeast-2.amazonaws.com/modelops/minilm-embeddings:3557bb9e6ebfbc50"
    data = "s3://modelops-model-artifacts-000000000000-ap-southeast-2/minilm-embeddings/minilm-embeddings-983d7a54f4/model.tar.gz"
    result = BuildResult(release="minilm-embeddings-983d7a54f4", model="minilm-embeddings", environment="prod",
                         commit="0" * 40, digest="sha256:" + "3" * 64, config_digest="sha256:" + "4" * 64,
                         manifest_digest="sha256:" + "5" * 64, builder="local", cache_hit=True,
                         images=(BuildImage("ap-southeast-2", image, data),))
    lines = image_lines(result)
    assert [line.split()[-1] for line in lines] == [image, data], lines  # each whole on its own line
    assert lines[0].split()[0] == "ap-southeast-2" and "model data" in lines[1], lines
