"""CloudWatch metric math, the part the local cloud evaluates: arithmetic over query ids.

An expression such as ``100 * errors / invocations`` names other queries of the same request (or
alarm) by id. Supported: numbers, ids, ``+ - * / ^``, unary minus, parentheses, ``ABS(x)``, and
``ANOMALY_DETECTION_BAND(id, width)`` as the threshold of an anomaly-detection alarm. Other functions
of CloudWatch's language are refused as not emulated, plainly. Expressions are parsed here, not by
Python: an id may be any CloudWatch id (``in`` and ``if`` included) and nothing but arithmetic runs.

Values are series, ``{timestamp or window: value}``; an operation on two series keeps the points
both have, a number applies to every point, and a point that divides by zero or leaves the finite
numbers is dropped (CloudWatch returns no datapoint for it).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelops.localcloud.protocol import ServiceError

MAX_DEPTH = 64  # nesting of parentheses and unary minus
BAND = "ANOMALY_DETECTION_BAND"
FUNCTIONS = ("ABS", BAND)
_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[-+*/^(),]))")
_BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": operator.pow,
}

Node = tuple[Any, ...]  # ("number", v) | ("id", name) | ("neg", node) | (op, left, right) | ("call", name, args)
Series = dict[Any, float]

INVALID = "Invalid metric math expression {expression!r}: {reason}."
NOT_EMULATED = ("Metric math function {name} is not emulated by the local cloud (it evaluates arithmetic, ABS and "
                "ANOMALY_DETECTION_BAND).")


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its tree, the ids it reads, and its anomaly band (metric id, width) if
    it is one."""

    text: str
    tree: Node
    ids: frozenset[str]
    band: tuple[str, float] | None


def parse(text: str, *, code: str = "ValidationError") -> Expression:
    """Parse ``text`` (a ServiceError with ``code`` when it is no expression this module evaluates)."""
    tokens = _tokens(text, code)
    parser = _Parser(text, tokens, code)
    tree = parser.expression(0)
    if parser.position != len(tokens):
        raise ServiceError(code, INVALID.format(expression=_short(text), reason=f"unexpected {tokens[parser.position][1]!r}"))
    band = None
    if tree[0] == "call" and tree[1] == BAND:
        band = _band(text, tree[2], code)
    elif BAND in _calls(tree):
        raise ServiceError(code, INVALID.format(expression=_short(text), reason=f"{BAND} must be the whole expression"))
    return Expression(text, tree, frozenset(_ids(tree)), band)


def evaluate(expression: Expression, series: Mapping[str, Series]) -> Series:
    """The expression at every point where the series it reads all have a value."""
    value = _evaluate(expression.tree, series)
    if isinstance(value, dict):
        return value
    return {}  # an expression of numbers alone has no timestamps


def _tokens(text: str, code: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text_end = len(text.rstrip())
    while position < text_end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise ServiceError(code, INVALID.format(expression=_short(text), reason=f"unexpected {text[position:].strip()[:1]!r}"))
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise ServiceError(code, INVALID.format(expression=_short(text), reason="it is empty"))
    return tokens


class _Parser:
    """Precedence climbing over the tokens: + - below * / below unary minus below ^."""

    _PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}

    def __init__(self, text: str, tokens: list[tuple[str, str]], code: str):
        self.text = text
        self.tokens = tokens
        self.code = code
        self.position = 0
        self.depth = 0

    def fail(self, reason: str) -> ServiceError:
        return ServiceError(self.code, INVALID.format(expression=_short(self.text), reason=reason))

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("it ends too early")
        self.position += 1
        return token

    def expression(self, minimum: int) -> Node:
        left = self.unary()
        while (token := self.peek()) is not None and token[0] == "op" and token[1] in self._PRECEDENCE:
            precedence = self._PRECEDENCE[token[1]]
            if precedence < minimum:
                break
            self.take()
            # ^ is right-associative; the others left-associative
            right = self.expression(precedence if token[1] == "^" else precedence + 1)
            left = (token[1], left, right)
        return left

    def unary(self) -> Node:
        token = self.peek()
        if token == ("op", "-") or token == ("op", "+"):
            self.take()
            with self.nested():
                inner = self.expression(3)
            return ("neg", inner) if token[1] == "-" else inner
        return self.atom()

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise self.fail(f"{value} is not a finite number")
            return ("number", number)
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(value)
            return ("id", value)
        if value == "(":
            with self.nested():
                inner = self.expression(0)
            if self.take() != ("op", ")"):
                raise self.fail("a parenthesis is not closed")
            return inner
        raise self.fail(f"unexpected {value!r}")

    def call(self, name: str) -> Node:
        if name.upper() not in FUNCTIONS:
            raise ServiceError(self.code, NOT_EMULATED.format(name=name))
        self.take()  # (
        args: list[Node] = []
        with self.nested():
            while True:
                args.append(self.expression(0))
                token = self.take()
                if token == ("op", ")"):
                    break
                if token != ("op", ","):
                    raise self.fail(f"unexpected {token[1]!r} in the arguments of {name}")
        if name.upper() == "ABS" and len(args) != 1:
            raise self.fail("ABS takes one argument")
        return ("call", name.upper(), tuple(args))

    def nested(self) -> _Depth:
        return _Depth(self)


class _Depth:
    def __init__(self, parser: _Parser):
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_DEPTH:
            raise self.parser.fail(f"it nests deeper than {MAX_DEPTH} levels")

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _band(text: str, args: tuple[Node, ...], code: str) -> tuple[str, float]:
    if len(args) != 2 or args[0][0] != "id" or args[1][0] != "number" or args[1][1] <= 0:
        raise ServiceError(code, INVALID.format(expression=_short(text), reason=f"{BAND} takes a query id and a positive "
                                                                        "number of standard deviations"))
    return args[0][1], float(args[1][1])


def _ids(node: Node) -> set[str]:
    if node[0] == "id":
        return {node[1]}
    if node[0] == "number":
        return set()
    if node[0] == "neg":
        return _ids(node[1])
    if node[0] == "call":
        return set().union(*(_ids(arg) for arg in node[2]))
    return _ids(node[1]) | _ids(node[2])


def _calls(node: Node) -> set[str]:
    if node[0] in ("id", "number"):
        return set()
    if node[0] == "neg":
        return _calls(node[1])
    if node[0] == "call":
        return {node[1]}.union(*(_calls(arg) for arg in node[2]))
    return _calls(node[1]) | _calls(node[2])


def _evaluate(node: Node, series: Mapping[str, Series]) -> float | Series:
    kind = node[0]
    if kind == "number":
        return float(node[1])
    if kind == "id":
        return dict(series.get(node[1], {}))
    if kind == "neg":
        return _apply(lambda a, _: -a, _evaluate(node[1], series), 0.0)
    if kind == "call":  # ABS (the band is the alarm's to evaluate, never a value)
        return _apply(lambda a, _: abs(a), _evaluate(node[2][0], series), 0.0)
    return _apply(_BINARY[kind], _evaluate(node[1], series), _evaluate(node[2], series))


def _apply(op: Callable[[float, float], float], left: float | Series, right: float | Series) -> float | Series:
    if not isinstance(left, dict) and not isinstance(right, dict):
        value = _point(op, left, right)
        return math.nan if value is None else value  # a NaN number drops every point it meets
    out: Series = {}
    if isinstance(left, dict) and isinstance(right, dict):
        pairs = ((k, left[k], right[k]) for k in left.keys() & right.keys())
    elif isinstance(left, dict):
        pairs = ((k, v, right) for k, v in left.items())  # type: ignore[misc]
    else:
        assert isinstance(right, dict)
        pairs = ((k, left, v) for k, v in right.items())
    for key, a, b in pairs:
        value = _point(op, a, b)
        if value is not None:
            out[key] = value
    return out


def _point(op: Callable[[float, float], float], a: float, b: float) -> float | None:
    try:
        value = op(a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if isinstance(value, complex) or not math.isfinite(value):
        return None
    return float(value)
