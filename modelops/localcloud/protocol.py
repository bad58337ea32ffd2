"""Wire-protocol facts shared by the local cloud's APIs: the region of a request, error shapes,
request validation against botocore's own service models, and output shaping.

Errors are raised as :class:`ServiceError` anywhere below the HTTP layer and rendered by the API
that owns the request (json 1.1 for SageMaker, rest-json for the runtime), so no handler ever
answers with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import socket
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

DEFAULT_REGION = "us-east-1"
_CREDENTIAL = re.compile(r"Credential=[^/,\s]*/\d{8}/([a-z0-9-]+)/")

Response = tuple[int, list[tuple[str, str]], bytes]


class ServiceError(Exception):
    """An error the real service would answer with: its code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, *, extra: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def validation_error(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def region_of(headers: Mapping[str, str]) -> str:
    """The region of a request, from its SigV4 credential scope (any access key is accepted)."""
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    return match.group(1) if match else DEFAULT_REGION


# Request ids are UUID-shaped like the service's: a random prefix per process and a counter, so the
# runtime's hot path pays a string format instead of a uuid4 (an os.urandom call) per request.
_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_numbers = itertools.count()


def request_id() -> str:
    """A fresh ``x-amzn-RequestId`` value (unique within this server process and across restarts)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFFFFFF:012x}"


def json_error(err: ServiceError, content_type: str = "application/x-amz-json-1.1") -> Response:
    """A json-protocol error: ``__type`` and ``message`` in the body, the type in ``x-amzn-ErrorType``."""
    body = {"__type": err.code, "message": err.message, **err.extra}
    headers = [("Content-Type", content_type), ("x-amzn-ErrorType", err.code),
               ("x-amzn-RequestId", request_id()), *err.headers.items()]
    return err.status, headers, json.dumps(body).encode()


@lru_cache(maxsize=4)
def service_model(name: str) -> Any:
    """botocore's model of a service (loaded once per server)."""
    from modelops.localcloud import botocore_session

    return botocore_session().get_service_model(name)


# ---------------------------------------------------------------- validation against the input shape


def _member_path(parts: list[str]) -> str:
    return ".".join(parts)


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    return f"'{json.dumps(value, default=str)}'"


def _constraint_errors(shape: Any, value: Any, path: list[str], errors: list[str]) -> None:
    """The service-side constraints botocore's ParamValidator leaves out: patterns, maximum lengths,
    ranges and enums, in the message form the service uses."""
    meta = shape.metadata
    where = _member_path(path)
    if value is None:
        return
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for member in shape.required_members:
            if value.get(member) is None:
                errors.append(f"Value null at '{_member_path([*path, _lower_camel(member)])}' failed to "
                              "satisfy constraint: Member must not be null")
        for key, member_value in value.items():
            if key in shape.members:
                _constraint_errors(shape.members[key], member_value, [*path, _lower_camel(key)], errors)
        return
    if kind == "list" and isinstance(value, list):
        _length_errors(meta, len(value), value, where, errors)
        for index, item in enumerate(value, start=1):
            _constraint_errors(shape.member, item, [*path, str(index), "member"], errors)
        return
    if kind == "map" and isinstance(value, dict):
        _length_errors(meta, len(value), value, where, errors)
        for key, item in value.items():
            _constraint_errors(shape.key, key, [*path, "key"], errors)
            _constraint_errors(shape.value, item, [*path, key], errors)
        return
    if kind == "string" and isinstance(value, str):
        _length_errors(meta, len(value), value, where, errors)
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must "
                          f"satisfy regular expression pattern: {pattern}")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must "
                          f"satisfy enum value set: [{', '.join(enum)}]")
        return
    if kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must have "
                          f"value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must have "
                          f"value less than or equal to {meta['max']}")


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    try:
        return re.compile(pattern)
    except re.error:
        # The models use Java regexes; Unicode classes like \\p{L} need the `regex` package. Without it
        # such a pattern is not checked (the service would; botocore does not either).
        try:
            import regex

            return regex.compile(pattern)
        except Exception:
            return None


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def _length_errors(meta: Mapping[str, Any], length: int, value: Any, where: str, errors: list[str]) -> None:
    if "min" in meta and length < meta["min"]:
        errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must have "
                      f"length greater than or equal to {meta['min']}")
    if "max" in meta and length > meta["max"]:
        errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must have "
                      f"length less than or equal to {meta['max']}")


def _timestamps_to_datetimes(shape: Any, value: Any) -> Any:
    """json 1.1 sends timestamps as epoch numbers; botocore's validator wants datetimes."""
    kind = shape.type_name
    if value is None:
        return None
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if kind == "structure" and isinstance(value, dict):
        return {k: (_timestamps_to_datetimes(shape.members[k], v) if k in shape.members else v)
                for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_timestamps_to_datetimes(shape.member, v) for v in value]
    return value


def validate_input(service: str, operation: str, params: Any) -> dict[str, Any]:
    """Validate ``params`` against the operation's input shape; returns them with timestamps as epoch.

    botocore's ParamValidator checks types, required members and minimum lengths; the service's own
    constraints (patterns, maximum lengths, ranges, enums) follow in the service's message form.
    """
    from botocore.validate import ParamValidator

    model = service_model(service).operation_model(operation)
    shape = model.input_shape
    if not isinstance(params, dict):
        raise ServiceError("SerializationException", "Start of structure or map found where not expected.")
    if shape is None:
        return params
    report = ParamValidator().validate(_timestamps_to_datetimes(shape, params), shape)
    if report.has_errors():
        raise validation_error(report.generate_report().replace("\n", " "))
    errors: list[str] = []
    _constraint_errors(shape, params, [], errors)
    if errors:
        count = len(errors)
        raise validation_error(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors))
    return params


@lru_cache(maxsize=8)
def _header_members(service: str, operation: str) -> tuple[tuple[str, str, Any], ...]:
    shape = service_model(service).operation_model(operation).input_shape
    return tuple((member.serialization["name"].lower(), _lower_camel(name), member)
                 for name, member in shape.members.items() if member.serialization.get("location") == "header")


def header_errors(service: str, operation: str, headers: Mapping[str, str]) -> str | None:
    """The service's message for request headers that break their members' constraints (lengths,
    patterns), or None. For a rest-json operation whose parameters travel in headers: botocore checks
    only minimum lengths on the client, the service checks the rest. A sensitive member's value is not
    echoed."""
    errors: list[str] = []
    for header, where, shape in _header_members(service, operation):
        value = headers.get(header)
        if value is None:
            continue
        found: list[str] = []
        _constraint_errors(shape, value, [where], found)
        if shape.metadata.get("sensitive"):
            found = [e.replace(f"Value {_show(value)} at", "Value at", 1) for e in found]
        errors += found
    if not errors:
        return None
    count = len(errors)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors)


# ---------------------------------------------------------------- output shaping


def shape_output(shape: Any, value: Any) -> Any:
    """Keep only what the output shape declares (internal bookkeeping never leaks); timestamps as
    epoch seconds, as json 1.1 sends them."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        out = {}
        for key, member in shape.members.items():
            if key in value and value[key] is not None:
                out[key] = shape_output(member, value[key])
        return out
    if kind == "list":
        return [shape_output(shape.member, v) for v in value]
    if kind == "map":
        return {k: shape_output(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return value.timestamp()
        return float(value)
    return value


def tcp_transport(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """A new connection's transport, with Nagle off (small request/response pairs, both ways).

    A cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return cast(asyncio.Transport, transport)
