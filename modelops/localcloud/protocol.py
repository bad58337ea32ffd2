"""Wire-protocol facts shared by the local cloud's services: how requests and errors look on the wire,
request validation against botocore's own service models, and output shaping.

Errors are raised as :class:`ServiceError` anywhere below the HTTP layer and rendered by the
:class:`Wire` of the request, so no handler ever answers with a traceback and every error, the HTTP
layer's own included, carries the service's error type:

- SageMaker's control plane speaks json 1.1 (``__type`` and ``x-amzn-ErrorType``), the runtime
  rest-json (the same error document);
- CloudWatch speaks json 1.0 and smithy-rpc-v2-cbor and is "query compatible": an error also carries
  the query protocol's code in ``x-amzn-query-error`` (``ResourceNotFound;Sender``), which botocore
  reports, and its ``__type`` is the error's shape name (``com.amazonaws.cloudwatch#ResourceNotFound``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import re
import socket
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

DEFAULT_REGION = "us-east-1"
_CREDENTIAL = re.compile(r"Credential=[^/,\s]*/\d{8}/([a-z0-9-]+)/")
SAGEMAKER_TARGET = "SageMaker."
CLOUDWATCH_SERVICE = "GraniteServiceVersion20100801"
CLOUDWATCH_CBOR_PREFIX = f"/service/{CLOUDWATCH_SERVICE}/operation/"
RUNTIME_PREFIX = "/endpoints/"

Response = tuple[int, list[tuple[str, str]], bytes]

# The errors of the HTTP layer itself, common to every AWS service (AWS's "Common Errors").
MALFORMED = "MalformedHttpRequestException"
TOO_LARGE = "RequestEntityTooLargeException"
TIMED_OUT = "RequestTimeoutException"
UNAVAILABLE = "ServiceUnavailable"
SERIALIZATION = "SerializationException"

# Python's datetime reaches from year 1 to 9999; a timestamp outside cannot be a time at all here.
_EPOCH_RANGE = (-62135596800.0, 253402300799.0)
_INTEGER_RANGES = {"integer": 2**31, "long": 2**63}  # smithy's integer and long are 32- and 64-bit signed


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
    """SageMaker's ValidationException (CloudWatch's is ``ValidationError``)."""
    return ServiceError("ValidationException", message)


def region_of(headers: Mapping[str, str]) -> str:
    """The region of a request, from its SigV4 credential scope (any access key is accepted)."""
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    return match.group(1) if match else DEFAULT_REGION


@lru_cache(maxsize=64)
def partition_of(region: str) -> str:
    """The ARN partition of a region as botocore's endpoint data says (``aws-cn`` for cn-north-1,
    ``aws-us-gov`` for us-gov-west-1, ...); ``aws`` for a region it does not know."""
    from botocore.exceptions import UnknownRegionError

    from modelops.localcloud import botocore_session

    try:
        return str(botocore_session().get_partition_for_region(region))
    except UnknownRegionError:
        return "aws"


# Request ids are UUID-shaped like the service's: a random prefix per process and a counter, so the
# runtime's hot path pays a string format instead of a uuid4 (an os.urandom call) per request.
_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_numbers = itertools.count()


def request_id() -> str:
    """A fresh ``x-amzn-RequestId`` value (unique within this server process and across restarts)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFFFFFF:012x}"


@lru_cache(maxsize=4)
def service_model(name: str) -> Any:
    """botocore's model of a service (loaded once per server)."""
    from modelops.localcloud import botocore_session

    return botocore_session().get_service_model(name)


# ---------------------------------------------------------------- the wire


class Wire:
    """One protocol's documents on the wire: decoding requests, encoding answers and errors (JSON here)."""

    def __init__(self, content_type: str = "application/json"):
        self.content_type = content_type

    def decode(self, body: bytes) -> Any:
        """The request document (SerializationException when the body is not one)."""
        if not body:
            return {}
        try:
            return json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise ServiceError(SERIALIZATION, f"The request body is not valid JSON: {_reason(exc)}") from None

    def encode(self, document: Any) -> bytes:
        return json.dumps(document, default=_json_default, separators=(",", ":")).encode()

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), ("x-amzn-RequestId", request_id())]

    def answer(self, document: Any) -> Response:
        return 200, self.headers(), self.encode(document)

    def error(self, err: ServiceError) -> Response:
        body = {"__type": err.code, "message": err.message, **err.extra}
        return err.status, [*self.headers(), ("x-amzn-ErrorType", err.code), *err.headers.items()], self.encode(body)


class CborWire(Wire):
    """smithy-rpc-v2-cbor: timestamps as epoch seconds under tag 1."""

    def __init__(self) -> None:
        super().__init__("application/cbor")

    def decode(self, body: bytes) -> Any:
        import cbor2

        if not body:
            return {}
        try:
            return cbor2.loads(body)
        except Exception as exc:  # cbor2 raises several kinds (CBORDecodeError, ValueError, RecursionError, ...)
            raise ServiceError(SERIALIZATION, f"The request body is not valid CBOR: {_reason(exc)}") from None

    def encode(self, document: Any) -> bytes:
        import cbor2

        return bytes(cbor2.dumps(_cbor_ready(document)))

    def headers(self) -> list[tuple[str, str]]:
        return [*super().headers(), ("smithy-protocol", "rpc-v2-cbor")]


class QueryCompatible(Wire):
    """A protocol of a query-compatible service (CloudWatch): the error's query code travels in
    ``x-amzn-query-error``, its ``__type`` is the error's shape, and its status comes from the model."""

    def __init__(self, inner: Wire, service: str, namespace: str):
        super().__init__(inner.content_type)
        self.inner = inner
        self.service = service
        self.namespace = namespace

    def decode(self, body: bytes) -> Any:
        return self.inner.decode(body)

    def encode(self, document: Any) -> bytes:
        return self.inner.encode(document)

    def headers(self) -> list[tuple[str, str]]:
        return self.inner.headers()

    def error(self, err: ServiceError) -> Response:
        shape, status = _query_errors(self.service).get(err.code, (err.code, err.status))
        side = "Sender" if status < 500 else "Receiver"
        body = {"__type": f"{self.namespace}#{shape}", "message": err.message, **err.extra}
        return status, [*self.headers(), ("x-amzn-query-error", f"{err.code};{side}"), ("x-amzn-ErrorType", shape),
                        *err.headers.items()], self.encode(body)


SAGEMAKER_JSON = Wire("application/x-amz-json-1.1")
RUNTIME_JSON = Wire()
CLOUDWATCH_JSON = QueryCompatible(Wire("application/x-amz-json-1.0"), "cloudwatch", "com.amazonaws.cloudwatch")
CLOUDWATCH_CBOR = QueryCompatible(CborWire(), "cloudwatch", "com.amazonaws.cloudwatch")


def wire_of(path: str, headers: Mapping[str, str]) -> Wire:
    """The protocol a request speaks, from its path and headers (what the HTTP layer could read of them)."""
    target = headers.get("x-amz-target", "")
    if target.startswith(SAGEMAKER_TARGET):
        return SAGEMAKER_JSON
    if path.startswith(CLOUDWATCH_CBOR_PREFIX):
        return CLOUDWATCH_CBOR
    if target.startswith(CLOUDWATCH_SERVICE + "."):
        return CLOUDWATCH_JSON
    if path.startswith(RUNTIME_PREFIX) or not target:
        return RUNTIME_JSON
    return SAGEMAKER_JSON


@lru_cache(maxsize=4)
def _query_errors(service: str) -> dict[str, tuple[str, int]]:
    """Query code -> (error shape, HTTP status), from the model's error shapes (``awsQueryError``)."""
    errors: dict[str, tuple[str, int]] = {}
    for shape in service_model(service).error_shapes:
        meta = shape.metadata.get("error") or {}
        errors.setdefault(meta.get("code", shape.name), (shape.name, int(meta.get("httpStatusCode", 400))))
    return errors


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(type(value).__name__)


def _cbor_ready(value: Any) -> Any:
    import cbor2

    if isinstance(value, dt.datetime):
        return cbor2.CBORTag(1, value.timestamp())  # epoch-seconds timestamps, as rpc-v2-cbor wants
    if isinstance(value, dict):
        return {k: _cbor_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cbor_ready(v) for v in value]
    return value


# ---------------------------------------------------------------- validation against the input shape


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{number_text(value)}'"
    return f"'{json.dumps(value, default=str)}'"


def number_text(value: float) -> str:
    """A number as the services write it in messages: NaN and Infinity by name (as smithy sends them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _constraint_errors(shape: Any, value: Any, path: list[str], errors: list[str], finite: bool) -> None:
    """The service-side constraints botocore's ParamValidator leaves out (patterns, maximum lengths,
    ranges, enums, required members), in the message form of the service's validation."""
    meta = shape.metadata
    where = ".".join(path)
    if value is None:
        return
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for member in shape.required_members:
            if value.get(member) is None:
                errors.append(f"Value null at '{'.'.join([*path, _lower_camel(member)])}' failed to "
                              "satisfy constraint: Member must not be null")
        for key, member_value in value.items():
            if key in shape.members:
                _constraint_errors(shape.members[key], member_value, [*path, _lower_camel(key)], errors, finite)
        return
    if kind == "list" and isinstance(value, list):
        _length_errors(meta, len(value), value, where, errors)
        for index, item in enumerate(value, start=1):
            _constraint_errors(shape.member, item, [*path, str(index), "member"], errors, finite)
        return
    if kind == "map" and isinstance(value, dict):
        _length_errors(meta, len(value), value, where, errors)
        for key, item in value.items():
            _constraint_errors(shape.key, key, [*path, "key"], errors, finite)
            _constraint_errors(shape.value, item, [*path, str(key)], errors, finite)
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
    if kind in ("integer", "long", "float", "double") and isinstance(value, int | float) and not isinstance(value, bool):
        if finite and isinstance(value, float) and not math.isfinite(value):
            # Inferred: the service's JSON reader takes "NaN" and "Infinity" for a float member (smithy),
            # and no SageMaker float (a variant weight, a capacity share) can be one.
            errors.append(f"Value {_show(value)} at '{where}' failed to satisfy constraint: Member must be a "
                          "finite number")
            return
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


def _from_wire(shape: Any, value: Any) -> Any:
    """What a JSON or CBOR reader makes of the values: epoch-second timestamps as datetimes (what
    botocore's validator checks), the strings smithy sends for non-finite floats as floats. A number
    that fits no timestamp or no integer of its member's width fails to deserialize, as on the service
    (inferred: its readers are Java's, whose types have these widths)."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        if not _EPOCH_RANGE[0] <= value <= _EPOCH_RANGE[1]:  # NaN fails this test too
            raise ServiceError(SERIALIZATION, f"The value {_show(value)[1:-1]} cannot be converted to a timestamp.")
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if kind == "timestamp" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if kind == "timestamp" and isinstance(value, str):  # ISO 8601, as botocore takes it
        from botocore.utils import parse_timestamp

        try:
            parsed = parse_timestamp(value)
        except Exception:  # dateutil raises several kinds
            raise ServiceError(SERIALIZATION, f"The value {_show(value)} cannot be converted to a timestamp.") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if kind in ("float", "double") and value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    if kind in _INTEGER_RANGES and isinstance(value, int) and not isinstance(value, bool):
        limit = _INTEGER_RANGES[kind]
        if not -limit <= value < limit:
            raise ServiceError(SERIALIZATION, f"The value {value if len(str(value)) < 40 else 'given'} cannot be "
                               f"converted to {'an Integer' if kind == 'integer' else 'a Long'}.")
        return value
    if kind == "structure" and isinstance(value, dict):
        return {k: (_from_wire(shape.members[k], v) if k in shape.members else v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_from_wire(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _from_wire(shape.value, v) for k, v in value.items()}
    return value


def _count(errors: list[str]) -> str:
    return f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} detected: " + "; ".join(errors)


def validate_input(service: str, operation: str, params: Any, *, code: str = "ValidationException",
                   finite_floats: bool = True) -> dict[str, Any]:
    """Validate ``params`` against the operation's input shape, as the service does before anything else.

    Returns them as the handlers use them: timestamps as timezone-aware datetimes, non-finite floats
    as floats. Raises ``ServiceError(code)`` with the service's "N validation errors detected: ..."
    text: botocore's ParamValidator for types and unknown members (in its words), then the constraints
    it leaves out (required members, patterns, lengths, ranges, enums) in the service's own words.
    ``finite_floats``: a NaN or infinite float breaks a constraint (CloudWatch leaves that to each
    operation, which answers InvalidParameterValue).
    """
    from botocore.validate import ParamValidator

    model = service_model(service).operation_model(operation)
    shape = model.input_shape
    if not isinstance(params, dict):
        raise ServiceError(SERIALIZATION, "Start of structure or map found where not expected.")
    if shape is None:
        return params
    try:
        params = _from_wire(shape, params)
        report = ParamValidator().validate(params, shape)
        errors = [line.strip() for line in report.generate_report().splitlines()
                  if line.strip() and not line.strip().startswith("Missing required parameter")]
        _constraint_errors(shape, params, [], errors, finite_floats)
    except RecursionError:
        raise ServiceError(SERIALIZATION, "The request body is nested too deeply.") from None
    if errors:
        raise ServiceError(code, _count(errors))
    return cast(dict[str, Any], params)


@lru_cache(maxsize=8)
def _located_members(service: str, operation: str) -> tuple[tuple[str, str, str, Any], ...]:
    """(location, wire name, path in messages, shape) of an operation's members in headers and the URI."""
    shape = service_model(service).operation_model(operation).input_shape
    return tuple((member.serialization["location"], member.serialization["name"].lower(), _lower_camel(name), member)
                 for name, member in shape.members.items()
                 if member.serialization.get("location") in ("header", "uri"))


def header_errors(service: str, operation: str, headers: Mapping[str, str],
                  uri: Mapping[str, str] | None = None) -> str | None:
    """The service's message for request headers (and URI parameters, by their lower-cased names) that
    break their members' constraints (lengths, patterns), or None. For a rest-json operation whose
    parameters travel in headers and the path: botocore checks only minimum lengths on the client, the
    service checks the rest. A sensitive member's value is not echoed."""
    errors: list[str] = []
    for location, name, where, shape in _located_members(service, operation):
        value = headers.get(name) if location == "header" else (uri or {}).get(name)
        if value is None:
            continue
        found: list[str] = []
        _constraint_errors(shape, value, [where], found, True)
        if shape.metadata.get("sensitive"):
            found = [e.replace(f"Value {_show(value)} at", "Value at", 1) for e in found]
        errors += found
    return _count(errors) if errors else None


def epoch(value: Any) -> float:
    """Seconds since the epoch of a validated timestamp (a datetime, or a string botocore accepted)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    from botocore.utils import parse_timestamp

    return float(parse_timestamp(value).timestamp())


# ---------------------------------------------------------------- output shaping


def shape_output(shape: Any, value: Any) -> Any:
    """Keep only what the output shape declares (internal bookkeeping never leaks); timestamps as
    datetimes, which each wire writes its way (epoch seconds in JSON, tag 1 in CBOR)."""
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
    if kind == "timestamp" and not isinstance(value, dt.datetime):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    return value


def tcp_transport(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """A new connection's transport, with Nagle off (small request/response pairs, both ways).

    A cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return cast(asyncio.Transport, transport)
