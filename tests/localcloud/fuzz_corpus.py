"""A corpus of hostile raw-HTTP inputs for the local cloud, and the client that judges its answers.

Each :class:`Case` is the exact bytes a client writes on a fresh TCP connection: broken HTTP framing
(request lines, Content-Length, chunked bodies, oversized heads), and well-framed requests whose JSON or
CBOR bodies attack each protocol's decoding and each operation's validation (deep nesting, numbers out of
every range, NaN, wrong types, limits of the service plus one). :func:`send` writes one case, optionally
half-closes the write side as some clients do, and reads what comes back; :func:`judge` says what is
wrong with the outcome: a 5xx, no answer (a hang), or an error that is not AWS-shaped.

The rules a correct server follows, whatever the input: it answers every request it could read (an
incomplete one when the client half-closes or the header/body timeout expires), never with a 5xx, every
error carries the service's error type (``x-amzn-ErrorType`` or ``__type``) and a request id, and it
keeps serving. ``python -m tests.localcloud.fuzz_corpus URL`` runs the corpus against a running local
cloud and prints the tally (the figures of the hardening work were measured so).
"""

from __future__ import annotations

import gzip
import json
import math
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cbor2

ENDPOINT = "fuzz-echo"  # the endpoint the runtime cases call (the test creates it, an echo model)
CW_TARGET = "GraniteServiceVersion20100801"
CW_CBOR_PATH = f"/service/{CW_TARGET}/operation/"
AUTH = ("AWS4-HMAC-SHA256 Credential=fuzz/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, "
        "Signature=0")
DEEP = 100_000  # nesting depth of the deepest documents (Python's json gives up near 1,000)


@dataclass(frozen=True)
class Case:
    """One input: its name, the bytes written, and how many answers a correct server writes."""

    name: str
    raw: bytes
    answers: int = 1


@dataclass
class Outcome:
    """What came back for one case: the statuses and heads of the answers read, and whether it hung."""

    case: Case
    half_close: bool
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    hung: bool = False
    error: str = ""


# ------------------------------------------------------------------------------------------ requests


def http(method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b"", *,
         length: str | None = "auto", version: str = "HTTP/1.1") -> bytes:
    """A request as bytes; ``length`` "auto" sets Content-Length to the body's, None leaves it out."""
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def sagemaker(operation: str, body: bytes, **kw: object) -> bytes:
    return http("POST", "/", [("X-Amz-Target", f"SageMaker.{operation}"),
                              ("Content-Type", "application/x-amz-json-1.1"),
                              ("Authorization", AUTH.format(service="sagemaker"))], body, **kw)  # type: ignore[arg-type]


def cloudwatch_json(operation: str, body: bytes) -> bytes:
    return http("POST", "/", [("X-Amz-Target", f"{CW_TARGET}.{operation}"),
                              ("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-mode", "true"),
                              ("Authorization", AUTH.format(service="monitoring"))], body)


def cloudwatch_cbor(operation: str, body: bytes) -> bytes:
    return http("POST", CW_CBOR_PATH + operation, [("smithy-protocol", "rpc-v2-cbor"),
                                                   ("Content-Type", "application/cbor"), ("Accept", "application/cbor"),
                                                   ("Authorization", AUTH.format(service="monitoring"))], body)


def invoke(endpoint: str = ENDPOINT, body: bytes = b'{"x": 1}', headers: Iterable[tuple[str, str]] = (),
           **kw: object) -> bytes:
    return http("POST", f"/endpoints/{endpoint}/invocations",
                [("Content-Type", "application/json"), ("Authorization", AUTH.format(service="sagemaker")),
                 *headers], body, **kw)  # type: ignore[arg-type]


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _json_number(template: str, literal: str) -> bytes:
    """A JSON document with a number written as is (``1e400``, ``NaN``), which json.dumps cannot write."""
    return template.replace('"@"', literal).encode()


# ------------------------------------------------------------------------------------------ the corpus


def _framing() -> Iterator[Case]:
    describe = [("X-Amz-Target", "SageMaker.ListModels"), ("Content-Type", "application/x-amz-json-1.1")]
    yield Case("garbage request line", b"NONSENSE\r\n\r\n")
    yield Case("method only", b"GET\r\n\r\n")
    yield Case("unknown HTTP version", b"GET / HTTP/9.9\r\n\r\n")
    yield Case("HTTP/0.9 request", b"GET /\r\n\r\n")
    yield Case("bare LF line endings", b"POST / HTTP/1.1\nContent-Length: 2\n\n{}")
    yield Case("empty lines only", b"\r\n\r\n\r\n\r\n", answers=0)  # RFC 9112: ignored before a request line
    yield Case("control bytes", b"\x00\x01\x02\x03\r\n\r\n")
    yield Case("TLS client hello", bytes.fromhex("160301020001000001fc0303") + b"\x00" * 64)
    yield Case("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    yield Case("request line without end", b"GET / HTTP/1.1")
    yield Case("headers without end", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    yield Case("nothing at all", b"", answers=0)
    yield Case("header without colon", b"POST / HTTP/1.1\r\nX-Amz-Target SageMaker.ListModels\r\n\r\n")
    yield Case("space before colon", b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}")
    yield Case("obsolete line folding", b"POST / HTTP/1.1\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n")
    yield Case("NUL in a header value", b"POST / HTTP/1.1\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n")
    yield Case("control byte in a header name", b"POST / HTTP/1.1\r\nX\x01A: 1\r\nContent-Length: 0\r\n\r\n")
    yield Case("UTF-8 in a header value", http("POST", "/", [*describe, ("X-Note", "é")], b"{}").replace(
        b"X-Note: \xe9", "X-Note: é".encode()))
    yield Case("70 KB header in one read", http("POST", "/", [*describe, ("X-Big", "a" * 70_000)], b"{}"))
    yield Case("10,000 headers", http("POST", "/", [*describe, *[(f"X-H{i}", "v") for i in range(10_000)]], b"{}"))
    yield Case("100 KB request target", http("GET", "/" + "a" * 100_000))
    yield Case("space in the request target", b"GET /a b HTTP/1.1\r\n\r\n")
    yield Case("non-ASCII request target", b"GET /\xff\xfe HTTP/1.1\r\n\r\n")
    yield Case("absolute-form target", http("POST", "http://example.com/", describe, b"{}"))
    yield Case("asterisk target", http("OPTIONS", "*"))
    for value in ("-1", "abc", "1e3", "0x10", "+2", "2 2", "2, 2", "", "99999999999999999999999", " 2"):
        yield Case(f"Content-Length {value!r}", http("POST", "/", describe, b"{}", length=value))
    yield Case("Content-Length twice, equal", http("POST", "/", [*describe, ("Content-Length", "2")], b"{}"))
    yield Case("Content-Length twice, conflicting",
               http("POST", "/", [*describe, ("Content-Length", "5")], b"{}"))
    yield Case("Content-Length past the body", http("POST", "/", describe, b"{}", length="10"))
    yield Case("Content-Length short of the body", http("POST", "/", describe, b'{"a": 1}', length="2"), answers=2)
    yield Case("Content-Length of 65 MB", http("POST", "/", describe, b"{}", length=str(65 * 2**20)))
    yield Case("Content-Length of 7 MB to the runtime", invoke(body=b"{}", length=str(7 * 2**20)))
    yield Case("CloudWatch body over 1 MB (json)", cloudwatch_json("PutMetricData", b" " * (2**20 + 1)))
    yield Case("CloudWatch body over 1 MB (cbor)", cloudwatch_cbor("PutMetricData", b"\xa0" * (2**20 + 1)))
    chunked = [*describe, ("Transfer-Encoding", "chunked")]
    yield Case("chunked body", http("POST", "/", chunked, b"2\r\n{}\r\n0\r\n\r\n", length=None))
    yield Case("chunked body with extension and trailer",
               http("POST", "/", chunked, b"2;x=y\r\n{}\r\n0\r\nX-T: 1\r\n\r\n", length=None))
    yield Case("chunk size not hex", http("POST", "/", chunked, b"zz\r\n{}\r\n0\r\n\r\n", length=None))
    yield Case("chunk size huge", http("POST", "/", chunked, b"ffffffffffffffffff\r\n{}\r\n", length=None))
    yield Case("chunked body without last chunk", http("POST", "/", chunked, b"2\r\n{}\r\n", length=None))
    yield Case("chunk longer than its size", http("POST", "/", chunked, b"1\r\n{}\r\n0\r\n\r\n", length=None))
    yield Case("chunked and Content-Length", http("POST", "/", chunked, b"2\r\n{}\r\n0\r\n\r\n", length="7"))
    yield Case("Transfer-Encoding gzip", http("POST", "/", [*describe, ("Transfer-Encoding", "gzip")], b"{}",
                                                length=None))
    yield Case("Transfer-Encoding gzip, chunked",
               http("POST", "/", [*describe, ("Transfer-Encoding", "gzip, chunked")], b"2\r\n{}\r\n0\r\n\r\n",
                    length=None))
    yield Case("Transfer-Encoding chunked twice",
               http("POST", "/", [*chunked, ("Transfer-Encoding", "chunked")], b"2\r\n{}\r\n0\r\n\r\n", length=None))
    yield Case("Transfer-Encoding identity", http("POST", "/", [*describe, ("Transfer-Encoding", "identity")], b"{}"))
    yield Case("chunked runtime body", invoke(body=b"2\r\n{}\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")],
                                             length=None))
    put = json.dumps({"Namespace": "Fuzz", "MetricData": [{"MetricName": "gz", "Value": 1.0}]}).encode()
    gzipped = [("X-Amz-Target", f"{CW_TARGET}.PutMetricData"), ("Content-Type", "application/x-amz-json-1.0"),
               ("Content-Encoding", "gzip")]
    yield Case("gzip-compressed body", http("POST", "/", gzipped, gzip.compress(put)))
    yield Case("gzip body that is not gzip", http("POST", "/", gzipped, put))
    yield Case("gzip body cut short", http("POST", "/", gzipped, gzip.compress(put)[:-9]))
    yield Case("gzip bomb", http("POST", "/", gzipped, gzip.compress(b" " * (64 * 2**20))))
    yield Case("Content-Encoding br", http("POST", "/", [*gzipped[:2], ("Content-Encoding", "br")], put))
    yield Case("Expect 100-continue", http("POST", "/", [*describe, ("Expect", "100-continue")], b"{}"))
    yield Case("Expect something else", http("POST", "/", [*describe, ("Expect", "teapot")], b"{}"))
    yield Case("Upgrade to websocket", http("GET", "/", [("Upgrade", "websocket"), ("Connection", "Upgrade")]))
    yield Case("Upgrade to h2c", http("POST", "/", [*describe, ("Upgrade", "h2c"), ("Connection", "Upgrade")], b"{}"))
    yield Case("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    yield Case("HTTP/1.0", http("POST", "/", describe, b"{}", version="HTTP/1.0"))
    yield Case("HTTP/1.0 keep-alive", http("POST", "/", [*describe, ("Connection", "keep-alive")], b"{}",
                                           version="HTTP/1.0"))
    yield Case("Connection close", http("POST", "/", [*describe, ("Connection", "close")], b"{}"))
    yield Case("two pipelined requests", http("POST", "/", describe, b"{}") * 2, answers=2)
    yield Case("a request then garbage", http("POST", "/", describe, b"{}") + b"GARBAGE\r\n\r\n", answers=2)
    for method in ("GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE"):
        yield Case(f"{method} to the control plane", http(method, "/", describe, b"{}"))
        yield Case(f"{method} to the runtime", http(method, f"/endpoints/{ENDPOINT}/invocations", body=b"{}"))
        yield Case(f"{method} to CloudWatch over CBOR", http(method, CW_CBOR_PATH + "DescribeAlarms",
                                                               [("smithy-protocol", "rpc-v2-cbor")], b"\xa0"))
    yield Case("unknown path", http("GET", "/nothing/here"))
    yield Case("unknown target", http("POST", "/", [("X-Amz-Target", "Nope.Nothing")], b"{}"))
    yield Case("empty target", http("POST", "/", [("X-Amz-Target", "")], b"{}"))


_BODIES: list[tuple[str, bytes]] = [
    ("no body", b""),
    ("a list", b"[]"),
    ("null", b"null"),
    ("a string", b'"x"'),
    ("a number", b"1"),
    ("not JSON", b"{not json"),
    ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
    ("a byte order mark", b"\xef\xbb\xbf{}"),
    ("deeply nested lists", b"[" * DEEP + b"]" * DEEP),
    ("deeply nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    ("a 100,000-digit number", b'{"MaxResults": ' + b"9" * 100_000 + b"}"),
    ("a NaN token", b'{"MaxResults": NaN}'),
    ("duplicate keys", b'{"EndpointName": "a", "EndpointName": "b"}'),
    ("unknown members", b'{"Bogus": {"Nested": [1, 2, 3]}}'),
]

_SAGEMAKER_OPERATIONS = (
    "CreateModel", "DescribeModel", "DeleteModel", "ListModels", "CreateEndpointConfig", "DescribeEndpointConfig",
    "DeleteEndpointConfig", "ListEndpointConfigs", "CreateEndpoint", "DescribeEndpoint", "ListEndpoints",
    "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities", "DeleteEndpoint", "AddTags", "ListTags", "DeleteTags")


def _sagemaker() -> Iterator[Case]:
    for operation in _SAGEMAKER_OPERATIONS:
        for what, body in _BODIES:
            yield Case(f"SageMaker {operation}: {what}", sagemaker(operation, body))
    for member in ("CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter"):
        for literal in ("1e300", "-1e20", "1e20", "1e400", "-1e400", '"abc"', '"2024-01-01T00:00:00Z"', "true", "[]",
                        "{}", '"NaN"', '"Infinity"'):
            yield Case(f"SageMaker ListEndpoints {member} {literal}",
                       sagemaker("ListEndpoints", _json_number(f'{{"{member}": "@"}}', literal)))
    for literal in ("-1", "0", "1e20", "101", "1.5", '"5"', "1e400", "null"):
        yield Case(f"SageMaker ListModels MaxResults {literal}",
                   sagemaker("ListModels", _json_number('{"MaxResults": "@"}', literal)))
    for token in ("x" * 10_000, "-1", "99999999999999999999", "1e3", ""):
        yield Case(f"SageMaker ListModels NextToken {token[:12]!r}", sagemaker("ListModels", _json({"NextToken": token})))
    yield Case("SageMaker ListModels SortBy Bogus", sagemaker("ListModels", _json({"SortBy": "Bogus"})))
    container = {"Image": "000000000000.dkr.ecr.us-east-1.amazonaws.com/x:1"}
    for name in ("", "a" * 10_000, "bad name!", "a\u0000b", "é"):
        yield Case(f"SageMaker CreateModel name {name[:8]!r}", sagemaker("CreateModel", _json(
            {"ModelName": name, "PrimaryContainer": container})))
    yield Case("SageMaker CreateModel container as a list", sagemaker("CreateModel", _json(
        {"ModelName": "m", "PrimaryContainer": []})))
    yield Case("SageMaker CreateModel 10,000 environment entries", sagemaker("CreateModel", _json(
        {"ModelName": "m", "PrimaryContainer": {**container, "Environment": {f"K{i}": "v" * 1024 for i in range(10_000)}}})))
    variant = {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    for member, literal in (("InitialVariantWeight", '"NaN"'), ("InitialVariantWeight", "-1"),
                            ("InitialVariantWeight", "1e400"), ("InitialVariantWeight", "NaN"),
                            ("InitialInstanceCount", "0"), ("InitialInstanceCount", "-1"),
                            ("InitialInstanceCount", "1e20"), ("InitialInstanceCount", "1.5")):
        template = json.dumps({"EndpointConfigName": "c", "ProductionVariants": [{**variant, member: "@"}]})
        yield Case(f"SageMaker CreateEndpointConfig {member} {literal}",
                   sagemaker("CreateEndpointConfig", _json_number(template, literal)))
    yield Case("SageMaker CreateEndpointConfig no variants", sagemaker("CreateEndpointConfig", _json(
        {"EndpointConfigName": "c", "ProductionVariants": []})))
    yield Case("SageMaker CreateEndpointConfig 11 variants", sagemaker("CreateEndpointConfig", _json(
        {"EndpointConfigName": "c", "ProductionVariants": [{**variant, "VariantName": f"v{i}"} for i in range(11)]})))
    for memory, concurrency in ((1500, 1), (1024, 0), (100_000, 1), (2048, 10)):
        serverless = {"VariantName": "v", "ModelName": "m",
                      "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency}}
        yield Case(f"SageMaker CreateEndpointConfig serverless {memory} MB x {concurrency}",
                   sagemaker("CreateEndpointConfig", _json({"EndpointConfigName": "c", "ProductionVariants": [serverless]})))
    for literal in ('"NaN"', "-1", "1e400", "1e20"):
        template = json.dumps({"EndpointName": "e", "DesiredWeightsAndCapacities": [{"VariantName": "v",
                                                                                      "DesiredWeight": "@"}]})
        yield Case(f"SageMaker UpdateEndpointWeightsAndCapacities weight {literal}",
                   sagemaker("UpdateEndpointWeightsAndCapacities", _json_number(template, literal)))
    for size in ('{"Type": "CAPACITY_PERCENT", "Value": -1}', '{"Type": "CAPACITY_PERCENT", "Value": 1e20}',
                 '{"Type": "BOGUS", "Value": 1}', '{"Type": "INSTANCE_COUNT", "Value": "NaN"}'):
        template = ('{"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": {"BlueGreenUpdatePolicy": '
                    '{"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": "@"}}}}')
        yield Case(f"SageMaker UpdateEndpoint CanarySize {size}", sagemaker("UpdateEndpoint", _json_number(template, size)))
    for wait in ("-1", "1e20", "1e400", '"10"'):
        template = ('{"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": {"BlueGreenUpdatePolicy": '
                    '{"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": "@"}}}}')
        yield Case(f"SageMaker UpdateEndpoint wait {wait}", sagemaker("UpdateEndpoint", _json_number(template, wait)))
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model/m"
    yield Case("SageMaker AddTags 51 tags", sagemaker("AddTags", _json(
        {"ResourceArn": arn, "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]})))
    for bad_arn in ("", "arn", "arn:aws:sagemaker", "arn:aws:s3:::bucket", "arn:aws:sagemaker:us-east-1:0:bogus/x",
                    "x" * 5000):
        yield Case(f"SageMaker ListTags ARN {bad_arn[:40]!r}", sagemaker("ListTags", _json({"ResourceArn": bad_arn})))
    yield Case("SageMaker DeleteTags no keys", sagemaker("DeleteTags", _json({"ResourceArn": arn, "TagKeys": []})))


def _cloudwatch_cases(name: str, operation: str, params: dict[str, object]) -> Iterator[Case]:
    """The same parameters in both protocols: json 1.0 (non-finite floats as the strings smithy sends)
    and rpc-v2-cbor (as real floats)."""
    def smithy(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if isinstance(value, dict):
            return {k: smithy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [smithy(v) for v in value]
        return value

    yield Case(f"CloudWatch {operation} (json): {name}", cloudwatch_json(operation, _json(smithy(params))))
    yield Case(f"CloudWatch {operation} (cbor): {name}", cloudwatch_cbor(operation, cbor2.dumps(params)))


_CW_OPERATIONS = ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms", "SetAlarmState", "GetMetricStatistics",
                  "GetMetricData", "PutMetricData", "ListMetrics", "TagResource", "UntagResource",
                  "ListTagsForResource", "EnableAlarmActions", "DisableAlarmActions", "DescribeAlarmsForMetric")


def _cloudwatch() -> Iterator[Case]:
    inf, nan = math.inf, math.nan
    for operation in _CW_OPERATIONS:
        for what, body in _BODIES[:10]:
            yield Case(f"CloudWatch {operation} (json): {what}", cloudwatch_json(operation, body))
    for what, body in (("truncated", b"\xa1\x64Name"), ("a break byte", b"\xff"), ("unterminated map", b"\xbf\x61a\x01"),
                       ("a huge length", b"\x5b" + b"\xff" * 8), ("deep arrays", b"\x81" * DEEP + b"\x00"),
                       ("deep maps", b"\xa1\x61a" * DEEP + b"\x00"), ("a list", cbor2.dumps([1])),
                       ("integer keys", cbor2.dumps({1: 2})), ("a huge bignum", cbor2.dumps({"MaxRecords": 10**400})),
                       ("a half-float NaN", b"\xa1\x6aMaxRecords\xf9\x7e\x00"), ("not CBOR", b"{}"),
                       ("an undefined value", b"\xa1\x6aMaxRecords\xf7"),
                       ("a tagged timestamp string", b"\xa1\x69StartTime\xc1\x63abc")):
        for operation in ("DescribeAlarms", "GetMetricStatistics", "PutMetricData"):
            yield Case(f"CloudWatch {operation} (cbor): {what}", cloudwatch_cbor(operation, body))
    datum = {"MetricName": "m", "Value": 1.0}
    for name, data in (
        ("Value NaN", [{**datum, "Value": nan}]), ("Value Infinity", [{**datum, "Value": inf}]),
        ("Value -Infinity", [{**datum, "Value": -inf}]), ("Value 1e300", [{**datum, "Value": 1e300}]),
        ("Value -1e300", [{**datum, "Value": -1e300}]), ("Value 1e-300", [{**datum, "Value": 1e-300}]),
        ("Timestamp 1e300", [{**datum, "Timestamp": 1e300}]), ("Timestamp -1e20", [{**datum, "Timestamp": -1e20}]),
        ("Timestamp NaN", [{**datum, "Timestamp": nan}]), ("Timestamp 'abc'", [{**datum, "Timestamp": "abc"}]),
        ("1,001 metrics", [{**datum, "MetricName": f"m{i}"} for i in range(1001)]),
        ("31 dimensions", [{**datum, "Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]}]),
        ("no data", []), ("no value", [{"MetricName": "m"}]),
        ("Value and Values", [{**datum, "Values": [1.0, 2.0]}]),
        ("Value and StatisticValues", [{**datum, "StatisticValues": {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0,
                                                                    "Maximum": 1.0}}]),
        ("Values and StatisticValues", [{"MetricName": "m", "Values": [1.0], "StatisticValues": {
            "SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0}}]),
        ("SampleCount 0", [{"MetricName": "m", "StatisticValues": {"SampleCount": 0.0, "Sum": 1.0, "Minimum": 1.0,
                                                                   "Maximum": 1.0}}]),
        ("SampleCount -1", [{"MetricName": "m", "StatisticValues": {"SampleCount": -1.0, "Sum": 1.0, "Minimum": 1.0,
                                                                    "Maximum": 1.0}}]),
        ("Minimum over Maximum", [{"MetricName": "m", "StatisticValues": {"SampleCount": 2.0, "Sum": 3.0,
                                                                          "Minimum": 2.0, "Maximum": 1.0}}]),
        ("Sum NaN", [{"MetricName": "m", "StatisticValues": {"SampleCount": 1.0, "Sum": nan, "Minimum": 1.0,
                                                             "Maximum": 1.0}}]),
        ("151 values", [{"MetricName": "m", "Values": [float(i) for i in range(151)]}]),
        ("Values NaN", [{"MetricName": "m", "Values": [nan]}]),
        ("Counts longer than Values", [{"MetricName": "m", "Values": [1.0], "Counts": [1.0, 2.0]}]),
        ("Counts negative", [{"MetricName": "m", "Values": [1.0], "Counts": [-1.0]}]),
        ("StorageResolution 7", [{**datum, "StorageResolution": 7}]), ("Unit Bogus", [{**datum, "Unit": "Bogus"}]),
        ("MetricName empty", [{**datum, "MetricName": ""}]),
        ("dimension value empty", [{**datum, "Dimensions": [{"Name": "d", "Value": ""}]}]),
    ):
        yield from _cloudwatch_cases(name, "PutMetricData", {"Namespace": "Fuzz", "MetricData": data})
    for namespace in ("AWS/Fuzz", "", "a" * 300, ":", "é"):
        yield from _cloudwatch_cases(f"Namespace {namespace[:8]!r}", "PutMetricData",
                                     {"Namespace": namespace, "MetricData": [datum]})
    stats = {"Namespace": "Fuzz", "MetricName": "m", "StartTime": 1_700_000_000, "EndTime": 1_700_000_600,
             "Period": 60, "Statistics": ["Sum"]}
    for name, change in (("StartTime 1e300", {"StartTime": 1e300}), ("StartTime -1e20", {"StartTime": -1e20}),
                         ("EndTime 1e300", {"EndTime": 1e300}), ("StartTime NaN", {"StartTime": nan}),
                         ("EndTime before StartTime", {"EndTime": 1_600_000_000}), ("Period 0", {"Period": 0}),
                         ("Period -1", {"Period": -1}), ("Period 2**40", {"Period": 2**40}), ("Period 7", {"Period": 7}),
                         ("no statistics", {"Statistics": []}), ("Statistic Bogus", {"Statistics": ["Bogus"]}),
                         ("ExtendedStatistic p1000", {"Statistics": None, "ExtendedStatistics": ["p1000"]}),
                         ("both statistics kinds", {"ExtendedStatistics": ["p99"]}),
                         ("too many datapoints", {"StartTime": 0, "Period": 1}),
                         ("31 dimensions", {"Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]})):
        params = {k: v for k, v in {**stats, **change}.items() if v is not None}
        yield from _cloudwatch_cases(name, "GetMetricStatistics", params)
    query = {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "Fuzz", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}}
    window = {"StartTime": 1_700_000_000, "EndTime": 1_700_000_600}
    for name, queries, change in (
        ("501 queries", [{**query, "Id": f"m{i}"} for i in range(501)], {}),
        ("Id capitalised", [{**query, "Id": "M1"}], {}), ("Id empty", [{**query, "Id": ""}], {}),
        ("duplicate ids", [query, query], {}), ("no queries", [], {}),
        ("power operator", [query, {"Id": "e", "Expression": "m1 ** 99999"}], {}),
        ("a Python call", [query, {"Id": "e", "Expression": "__import__('os').getcwd()"}], {}),
        ("deep parentheses", [query, {"Id": "e", "Expression": "(" * 1000 + "m1" + ")" * 1000}], {}),
        ("division by zero", [query, {"Id": "e", "Expression": "m1 / 0"}], {}),
        ("an unknown id", [query, {"Id": "e", "Expression": "m1 + nope"}], {}),
        ("a dangling operator", [query, {"Id": "e", "Expression": "m1 +"}], {}),
        ("an expression of 2,049 characters", [query, {"Id": "e", "Expression": "m1" + " + m1" * 409 + "   "}], {}),
        ("a self-reference", [{"Id": "e", "Expression": "e + 1"}], {}),
        ("Stat Bogus", [{**query, "MetricStat": {**query["MetricStat"], "Stat": "Bogus"}}], {}),  # type: ignore[dict-item]
        ("Period 0", [{**query, "MetricStat": {**query["MetricStat"], "Period": 0}}], {}),  # type: ignore[dict-item]
        ("StartTime 1e300", [query], {"StartTime": 1e300}), ("EndTime -1e20", [query], {"EndTime": -1e20}),
        ("MaxDatapoints -1", [query], {"MaxDatapoints": -1}), ("ScanBy Bogus", [query], {"ScanBy": "Bogus"}),
    ):
        yield from _cloudwatch_cases(name, "GetMetricData", {**window, "MetricDataQueries": queries, **change})
    alarm = {"AlarmName": "fuzz-alarm", "Namespace": "Fuzz", "MetricName": "m", "Statistic": "Sum", "Period": 60,
             "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    for name, change in (("Period 0", {"Period": 0}), ("Period 2**40", {"Period": 2**40}), ("Period 7", {"Period": 7}),
                         ("EvaluationPeriods 0", {"EvaluationPeriods": 0}),
                         ("EvaluationPeriods 10**9", {"EvaluationPeriods": 10**9}),
                         ("Threshold NaN", {"Threshold": nan}), ("Threshold Infinity", {"Threshold": inf}),
                         ("ComparisonOperator Bogus", {"ComparisonOperator": "Bogus"}),
                         ("DatapointsToAlarm 2 of 1", {"DatapointsToAlarm": 2}),
                         ("TreatMissingData Bogus", {"TreatMissingData": "Bogus"}),
                         ("51 tags", {"Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]}),
                         ("ThresholdMetricId without Metrics", {"ThresholdMetricId": "ad1"}),
                         ("name of 256 characters", {"AlarmName": "a" * 256})):
        yield from _cloudwatch_cases(name, "PutMetricAlarm", {**alarm, **change})
    single = ("Namespace", "MetricName", "Statistic", "Period")
    math_alarm = {k: v for k, v in alarm.items() if k not in single}
    for name, metrics in (
        ("two queries return data", [query, {"Id": "e", "Expression": "m1 * 2"}]),
        ("no query returns data", [{**query, "ReturnData": False}]),
        ("deep parentheses", [{**query, "ReturnData": False}, {"Id": "e", "Expression": "(" * 1000 + "m1" + ")" * 1000}]),
        ("a Python call", [{**query, "ReturnData": False}, {"Id": "e", "Expression": "__import__('os')"}]),
        ("anomaly band without ThresholdMetricId",
         [{**query, "ReturnData": True}, {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}]),
    ):
        yield from _cloudwatch_cases(f"metric math: {name}", "PutMetricAlarm", {**math_alarm, "Metrics": metrics})
    band_alarm = {k: v for k, v in math_alarm.items() if k != "Threshold"}
    yield from _cloudwatch_cases("anomaly band with a bogus width", "PutMetricAlarm", {
        **band_alarm, "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "ThresholdMetricId": "ad1",
        "Metrics": [{**query, "ReturnData": True}, {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, -5)"}]})
    for name, params in (("StateValue Bogus", {"StateValue": "Bogus"}), ("MaxRecords 0", {"MaxRecords": 0}),
                         ("MaxRecords 101", {"MaxRecords": 101}), ("MaxRecords 2**40", {"MaxRecords": 2**40}),
                         ("NextToken garbage", {"NextToken": "garbage"}), ("AlarmTypes Bogus", {"AlarmTypes": ["Bogus"]}),
                         ("names and prefix", {"AlarmNames": ["a"], "AlarmNamePrefix": "a"}),
                         ("101 names", {"AlarmNames": [f"a{i}" for i in range(101)]})):
        yield from _cloudwatch_cases(name, "DescribeAlarms", params)
    for name, params in (("StateValue Bogus", {"AlarmName": "a", "StateValue": "Bogus", "StateReason": "x"}),
                         ("reason data not JSON", {"AlarmName": "a", "StateValue": "OK", "StateReason": "x",
                                                   "StateReasonData": "{not json"})):
        yield from _cloudwatch_cases(name, "SetAlarmState", params)
    yield from _cloudwatch_cases("101 names", "DeleteAlarms", {"AlarmNames": [f"a{i}" for i in range(101)]})
    for arn in ("", "arn", "arn:aws:cloudwatch:us-east-1:000000000000:alarm:absent",
                "arn:aws:cloudwatch:us-east-1:000000000000:dashboard/x", "arn:aws:s3:::bucket"):
        yield from _cloudwatch_cases(f"ARN {arn[:60]!r}", "ListTagsForResource", {"ResourceARN": arn})
        yield from _cloudwatch_cases(f"ARN {arn[:60]!r}", "TagResource", {"ResourceARN": arn, "Tags": [
            {"Key": "k", "Value": "v"}]})
    yield from _cloudwatch_cases("no alarm names", "EnableAlarmActions", {"AlarmNames": []})
    yield from _cloudwatch_cases("101 alarm names", "DisableAlarmActions", {"AlarmNames": [f"a{i}" for i in range(101)]})
    yield from _cloudwatch_cases("Period 7", "DescribeAlarmsForMetric", {"Namespace": "Fuzz", "MetricName": "m",
                                                                         "Period": 7})


def _runtime() -> Iterator[Case]:
    yield Case("runtime: a valid call", invoke())
    yield Case("runtime: no body", invoke(body=b""))
    yield Case("runtime: payload over 6 MB", invoke(body=b"x" * (6 * 2**20 + 1)))
    yield Case("runtime: unknown endpoint", invoke("absent"))
    yield Case("runtime: endpoint name upper case", invoke(ENDPOINT.upper()))
    for path in ("/endpoints//invocations", "/endpoints/%00/invocations", "/endpoints/%zz/invocations",
                 f"/endpoints/{ENDPOINT}/invocations/extra", f"/endpoints/{'a' * 10_000}/invocations",
                 f"/endpoints/{ENDPOINT}/invocations?x=1", "/endpoints/", "/endpoints",
                 f"/endpoints/{ENDPOINT}/../../_localcloud/health"):
        yield Case(f"runtime: path {path[:40]!r}", http("POST", path, [("Content-Type", "application/json")], b"{}"))
    for name, value in (("X-Amzn-SageMaker-Target-Variant", "absent"),
                        ("X-Amzn-SageMaker-Custom-Attributes", "a" * 2000),
                        ("X-Amzn-SageMaker-Custom-Attributes", "\u00e9t\u00e9"),
                        ("X-Amzn-SageMaker-Inference-Id", "i" * 100),
                        ("X-Amzn-SageMaker-Inference-Id", "\x7f"),
                        ("Content-Type", "a" * 2000), ("Accept", "a" * 2000),
                        ("X-Amzn-SageMaker-Target-Variant", ""),
                        ("X-Amzn-SageMaker-Enable-Explanations", "`bogus`"),
                        ("Authorization", "AWS4-HMAC-SHA256 Credential=x/1/" + "r" * 5000 + "/sagemaker/aws4_request")):
        raw = invoke(headers=[(name, value)])
        if not value.isascii():
            raw = raw.replace(value.encode("latin-1", "replace"), value.encode())
        yield Case(f"runtime: header {name} {value[:12]!r}", raw)


def corpus() -> list[Case]:
    """Every case, named uniquely."""
    cases = [*_framing(), *_sagemaker(), *_cloudwatch(), *_runtime()]
    names = [case.name for case in cases]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    return cases


# ------------------------------------------------------------------------------------------ the client


def _read_answers(sock: socket.socket, count: int, deadline: float,
                  head: bool = False) -> tuple[list[tuple[int, dict[str, str], bytes]], bool]:
    """Up to ``count`` answers (to HEAD requests when ``head``: no bodies); True as the second item
    when the deadline passed first."""
    buffer = b""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    closed = False
    while len(answers) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            lines = buffer[:end].decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = 0 if head else int(headers.get("content-length", "0"))
            if status == 100:
                buffer = buffer[end + 4:]
                continue
            if len(buffer) >= end + 4 + length:
                answers.append((status, headers, buffer[end + 4:end + 4 + length]))
                buffer = buffer[end + 4 + length:]
                continue
        if closed:
            return answers, False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return answers, True
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return answers, True
        except OSError:  # reset by the server: what was read is what came back
            return answers, False
        if not chunk:
            closed = True
        buffer += chunk
    return answers, False


def send(port: int, case: Case, *, half_close: bool, timeout: float = 20.0) -> Outcome:
    """Write ``case`` on a fresh connection (then shut the write side down when ``half_close``) and read
    its answers until they are all in, the server closes, or ``timeout`` passes (a hang)."""
    outcome = Outcome(case, half_close)
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(case.raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the server answered and closed before reading everything: fine
            outcome.error = f"send: {exc}"
        outcome.answers, outcome.hung = _read_answers(sock, max(case.answers, 1), deadline,
                                                      head=case.raw.startswith(b"HEAD "))
    return outcome


def judge(outcome: Outcome) -> list[str]:
    """What is wrong with an outcome (nothing: an empty list)."""
    problems = []
    if outcome.hung:
        problems.append("no answer before the deadline")
    if outcome.case.answers and not outcome.answers:
        problems.append("closed without an answer")
    for status, headers, body in outcome.answers:
        if status >= 500:
            problems.append(f"HTTP {status}: {body[:200]!r}")
        if status >= 400:
            shaped = "x-amzn-errortype" in headers or b"__type" in body
            if not shaped:
                problems.append(f"HTTP {status} without an AWS error type: {body[:200]!r}")
            if "x-amzn-requestid" not in headers:
                problems.append(f"HTTP {status} without a request id")
    return problems


def run(port: int, cases: list[Case], *, workers: int = 8) -> list[tuple[Outcome, list[str]]]:
    """Every case twice, plainly and half-closed, ``workers`` at a time."""
    jobs = [(case, half) for case in cases for half in (False, True)]
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda job: send(port, job[0], half_close=job[1]), jobs))
    return [(outcome, judge(outcome)) for outcome in outcomes]


def _main(url: str) -> int:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    results = run(port, corpus())
    failed = [(o, p) for o, p in results if p]
    five = sum(1 for o, _ in results for status, _, _ in o.answers if status >= 500)
    hung = sum(1 for o, _ in results if o.hung)
    unanswered = sum(1 for o, p in results if "closed without an answer" in p)
    for outcome, problems in failed:
        print(f"{outcome.case.name}{' (half-closed)' if outcome.half_close else ''}: {'; '.join(problems)[:300]}")
    print(f"inputs: {len(results) // 2} cases, {len(results)} tries (plain and half-closed); "
          f"failing tries {len(failed)}: 5xx answers {five}, hangs {hung}, unanswered {unanswered}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
