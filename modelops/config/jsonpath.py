"""A small JSONPath for regression checks: ``$``, ``.key``, ``['key']``, ``["key"]``, ``[0]``, ``[-1]``,
``[*]`` and ``.*``. Enough for pointing into model answers, with no dependency."""

from __future__ import annotations

import re
from typing import Any

BAD_PATH = "not a JSONPath (use $.key, $['key'], $[0], $[*]): {path}"

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)
      | \.\*(?P<dotstar>)
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*\*\s*\](?P<star>)
      | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]""",
    re.VERBOSE,
)

WILDCARD = object()


def parse(path: str) -> tuple[Any, ...]:
    """The steps of ``path``: keys (str), indexes (int) and :data:`WILDCARD`; ``ValueError`` when bad."""
    if not path.startswith("$"):
        raise ValueError(BAD_PATH.format(path=path))
    steps: list[Any] = []
    pos = 1
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            raise ValueError(BAD_PATH.format(path=path))
        if m.group("name") is not None:
            steps.append(m.group("name"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        elif m.group("sq") is not None:
            steps.append(re.sub(r"\\(.)", r"\1", m.group("sq")))
        elif m.group("dq") is not None:
            steps.append(re.sub(r"\\(.)", r"\1", m.group("dq")))
        else:
            steps.append(WILDCARD)
        pos = m.end()
    return tuple(steps)


def find(document: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` of ``path`` in ``document``. A path with a wildcard gives the list of the
    values it matches (found when there is at least one)."""
    steps = parse(path)
    values = [document]
    for step in steps:
        nxt: list[Any] = []
        for v in values:
            if step is WILDCARD:
                if isinstance(v, dict):
                    nxt.extend(v.values())
                elif isinstance(v, list):
                    nxt.extend(v)
            elif isinstance(step, int) and not isinstance(step, bool):
                if isinstance(v, list) and -len(v) <= step < len(v):
                    nxt.append(v[step])
            elif isinstance(v, dict) and step in v:
                nxt.append(v[step])
        values = nxt
    if any(s is WILDCARD for s in steps):
        return bool(values), values
    return (True, values[0]) if values else (False, None)


def format_path(steps: tuple[Any, ...]) -> str:
    """The JSONPath text of concrete ``steps`` (keys and indexes): ``$.predictions[3].label``; keys
    that are not plain names are quoted (``$['x y']``)."""
    out = ["$"]
    for step in steps:
        if isinstance(step, int) and not isinstance(step, bool):
            out.append(f"[{step}]")
        elif isinstance(step, str) and re.fullmatch(r"[A-Za-z_][\w-]*", step):
            out.append(f".{step}")
        else:
            out.append("['" + str(step).replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


def matches(document: Any, path: str) -> tuple[tuple[str, Any], ...]:
    """Every value ``path`` matches in ``document``, in document order, each with its concrete path
    (``$.predictions[*].label`` -> ``(("$.predictions[0].label", "setosa"), ...)``). Negative
    indexes are resolved (``$.a[-1]`` -> ``$.a[2]``). Empty when nothing matches; ``ValueError``
    when ``path`` does not parse."""
    found: list[tuple[tuple[Any, ...], Any]] = [((), document)]
    for step in parse(path):
        nxt: list[tuple[tuple[Any, ...], Any]] = []
        for at, v in found:
            if step is WILDCARD:
                if isinstance(v, dict):
                    nxt.extend(((*at, k), item) for k, item in v.items())
                elif isinstance(v, list):
                    nxt.extend(((*at, i), item) for i, item in enumerate(v))
            elif isinstance(step, int) and not isinstance(step, bool):
                if isinstance(v, list) and -len(v) <= step < len(v):
                    index = step % len(v)
                    nxt.append(((*at, index), v[index]))
            elif isinstance(v, dict) and step in v:
                nxt.append(((*at, step), v[step]))
        found = nxt
    return tuple((format_path(at), v) for at, v in found)


def has_wildcard(path: str) -> bool:
    """True when ``path`` (which parses) may match more than one value."""
    return any(step is WILDCARD for step in parse(path))
