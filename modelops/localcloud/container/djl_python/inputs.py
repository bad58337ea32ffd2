"""``djl_python.inputs.Input``: one request as DJL's Python engine hands it to ``handle(inputs)``."""

from __future__ import annotations

import json
from typing import Any


class Input:
    """A request: properties (request headers, lower-cased, plus ``model_dir`` and the model's
    settings) and one content item (the body). The initialization call is an empty Input."""

    def __init__(self, properties: dict[str, str] | None = None, body: bytes | None = None):
        self.properties: dict[str, str] = dict(properties or {})
        self._body = body

    @property
    def content_type(self) -> str | None:
        return self.get_property("content-type")

    def get_properties(self) -> dict[str, str]:
        return self.properties

    def get_property(self, key: str) -> str | None:
        if key in self.properties:
            return self.properties[key]
        lowered = key.lower()
        for name, value in self.properties.items():
            if name.lower() == lowered:
                return value
        return None

    def is_empty(self) -> bool:
        return self._body is None

    def contains_key(self, key: str) -> bool:
        return key == "data" and self._body is not None

    def is_batch(self) -> bool:
        return False

    def get_batch_size(self) -> int:
        return 1

    def get_batches(self) -> list[Input]:
        return [self]

    def get_as_bytes(self, key: str | None = None) -> bytes:
        return self._body or b""

    def get_as_string(self, key: str | None = None) -> str:
        return self.get_as_bytes(key).decode("utf-8")

    def get_as_json(self, key: str | None = None) -> Any:
        return json.loads(self.get_as_bytes(key))

    def get_as_csv(self, key: str | None = None) -> list[list[str]]:
        import csv
        import io

        return list(csv.reader(io.StringIO(self.get_as_string(key))))

    def get_as_numpy(self, key: str | None = None) -> list[Any]:
        import io

        import numpy as np

        return [np.load(io.BytesIO(self.get_as_bytes(key)), allow_pickle=False)]

    def get_data(self, key: str | None = None) -> Any:
        """The body decoded by its content type (JSON, text), else the bytes."""
        content_type = (self.content_type or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return self.get_as_json(key)
        if content_type.startswith("text/"):
            return self.get_as_string(key)
        return self.get_as_bytes(key)
