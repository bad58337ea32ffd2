"""``djl_python.outputs.Output``: what ``handle(inputs)`` returns."""

from __future__ import annotations

import json
from typing import Any


class Output:
    """A response: status code and message, properties (response headers), content items."""

    def __init__(self, code: int = 200, message: str = "OK"):
        self.code = code
        self.message = message
        self.properties: dict[str, str] = {}
        self.content: list[tuple[str | None, bytes]] = []

    def set_code(self, code: int) -> Output:
        self.code = int(code)
        return self

    def set_message(self, message: str) -> Output:
        self.message = message
        return self

    def error(self, error: str, code: int = 424, message: str = "prediction failure") -> Output:
        self.code = code
        self.message = message
        self.add_as_json({"code": code, "error": error})
        return self

    def add_property(self, key: str, val: str) -> Output:
        self.properties[key] = str(val)
        return self

    def add(self, value: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        if isinstance(value, str):
            data = value.encode("utf-8")
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        else:
            data = json.dumps(value).encode("utf-8")
        self.content.append((key, data))
        return self

    def add_as_json(self, val: Any, key: str | None = None, batch_index: int | None = None) -> Output:
        self.content.append((key, json.dumps(val, default=_json_default).encode("utf-8")))
        if not any(name.lower() == "content-type" for name in self.properties):
            self.properties["Content-Type"] = "application/json"
        return self

    def add_as_numpy(self, np_list: list[Any], key: str | None = None) -> Output:
        import io

        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np_list[0] if len(np_list) == 1 else np.array(np_list), allow_pickle=False)
        self.content.append((key, buffer.getvalue()))
        self.properties.setdefault("Content-Type", "tensor/npy")
        return self

    def body(self) -> bytes:
        """The response body: the content items joined (DJL sends one item per request)."""
        return b"".join(data for _, data in self.content)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
