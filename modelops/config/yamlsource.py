"""Safe YAML with source positions.

Documents are composed into nodes (the C parser when pyyaml has it) and turned into plain JSON-like
data by hand, which lets us keep the line and column of every value and key, and refuse what a
config file has no business holding:

- files over :data:`MAX_BYTES`, bytes that are not UTF-8, more than one document;
- duplicate keys (YAML says they are an error; pyyaml silently keeps the last one);
- alias bombs ("billion laughs"): aliases share composed nodes, so composing is cheap, but expanding
  them is not; we count expanded nodes and stop at :data:`MAX_NODES`;
- nesting deeper than :data:`MAX_DEPTH`, tags other than the YAML core schema's.

Merge keys (``<<: *defaults``) are supported, as YAML 1.1 and most CI configs use them: the mapping's
own keys win, and merged values keep the lines they are written on.

Positions are 1-based (as editors show them). Problems come back as :class:`YamlProblem`; only
:class:`YamlError` (raised) means the document could not be read at all.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from modelops.config.findings import json_path

MAX_BYTES = 1024 * 1024  # a model config is a few KiB; 1 MiB is generous and bounds the work
MAX_NODES = 100_000  # expanded nodes (after aliases); bounds alias bombs
MAX_DEPTH = 64

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IMPLICIT = _BaseLoader.yaml_implicit_resolvers


class _Loader(_BaseLoader):
    """The safe loader with a leaner ``resolve`` (the parser calls it for every node): same tags as
    the YAML core schema resolver, without its path-resolver machinery, which configs never use."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[0] if value else "", ()):
                    if regexp.match(value):
                        return str(tag)
            return "tag:yaml.org,2002:str"
        return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"

# Messages (tests assert on them).
TOO_LARGE = "file is {size} bytes, more than the {limit} bytes a config may have"
NOT_UTF8 = "file is not UTF-8: byte 0x{byte:02x} cannot be decoded"
ALIAS_BOMB = "document expands to more than {limit} nodes (an alias bomb?)"
TOO_DEEP = "document nests deeper than {limit} levels"
DUPLICATE_KEY = "duplicate key '{key}' (first at line {line})"
BAD_KEY = "mapping keys must be strings, numbers or booleans"
BAD_TAG = "unsupported YAML tag {tag}"
BAD_MERGE = "a merge key (<<) takes a mapping or a list of mappings (an alias such as *defaults)"
MULTIPLE_DOCUMENTS = "file holds more than one YAML document"

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based place in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SourceMap:
    """Where each value of a document came from: JSON path (a tuple of keys and indexes) to the
    position of the value, and of the key that holds it.

    ``text`` instead of the tables: they are made from it when first asked for (a document read from
    the parse cache has its data; most are never asked where a value is)."""

    __slots__ = ("_keys", "_text", "_values", "file")

    def __init__(self, file: str, values: dict[Path, tuple[int, int]] | None = None,
                 keys: dict[Path, tuple[int, int]] | None = None, *, text: bytes | str | None = None):
        self.file = file
        lazy = text is not None and values is None
        self._text = text if lazy else None
        self._values: dict[Path, tuple[int, int]] | None = None if lazy else (values if values is not None else {})
        self._keys: dict[Path, tuple[int, int]] | None = None if lazy else (keys if keys is not None else {})

    def _tables(self) -> None:
        assert self._text is not None
        source = parse(self._text, self.file).source
        self._values, self._keys, self._text = source.values, source.keys, None

    @property
    def values(self) -> dict[Path, tuple[int, int]]:
        if self._values is None:
            self._tables()
        assert self._values is not None
        return self._values

    @property
    def keys(self) -> dict[Path, tuple[int, int]]:
        if self._keys is None:
            self._tables()
        assert self._keys is not None
        return self._keys

    def __repr__(self) -> str:
        return f"SourceMap({self.file!r})"

    def position(self, path: Sequence[str | int] = (), *, key: bool = False) -> Position:
        """The position of the value at ``path`` (or of its key, with ``key=True``). A path that is
        not in the document (a missing key) falls back to its nearest ancestor that is."""
        parts = tuple(path)
        while True:
            table = self.keys if key and parts in self.keys else self.values
            found = table.get(parts)
            if found is not None:
                return Position(self.file, found[0], found[1])
            if not parts:
                return Position(self.file, 1, 1)
            parts = parts[:-1]
            key = False

    def has(self, path: Sequence[str | int]) -> bool:
        return tuple(path) in self.values


@dataclass(frozen=True)
class YamlProblem:
    """Something wrong in a readable document (e.g. a duplicate key)."""

    rule: str
    message: str
    line: int | None
    column: int | None
    path: str = "$"


class YamlError(Exception):
    """The document cannot be read at all. ``rule`` is one of the ``yaml.*`` rule ids."""

    def __init__(self, rule: str, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class ParsedYaml:
    data: Any
    source: SourceMap
    problems: tuple[YamlProblem, ...] = ()

    def to_row(self) -> list[Any]:
        """A JSON form for caches: the data and the problems. The positions are left out (they are
        most of the size, and rarely asked for): :meth:`from_row` makes them from the text if asked."""
        return [self.data, [[p.rule, p.message, p.line, p.column, p.path] for p in self.problems]]

    @classmethod
    def from_row(cls, row: list[Any], file: str, text: bytes | str) -> ParsedYaml:
        data, problems = row
        return cls(data, SourceMap(file, text=text), tuple(YamlProblem(*p) for p in problems))


def decode(data: bytes) -> str:
    """Strict UTF-8 (a BOM is allowed); the error names the line and column of the first bad byte."""
    if len(data) > MAX_BYTES:
        raise YamlError("yaml.too-large", TOO_LARGE.format(size=len(data), limit=MAX_BYTES))
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
        before = data[:offset]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise YamlError("yaml.encoding", NOT_UTF8.format(byte=data[offset]), line, column) from exc


def parse(data: bytes | str, file: str) -> ParsedYaml:
    """Parse one YAML document into JSON-like data and its source map.

    Raises :class:`YamlError` when the document cannot be read (the rule says why)."""
    text = decode(data) if isinstance(data, bytes) else data
    if len(text) > MAX_BYTES:
        raise YamlError("yaml.too-large", TOO_LARGE.format(size=len(text.encode()), limit=MAX_BYTES))
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "malformed YAML"
        if "expected a single document" in message:
            message = MULTIPLE_DOCUMENTS
        raise YamlError(
            "yaml.syntax",
            message,
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        raise YamlError("yaml.syntax", str(exc).splitlines()[0]) from exc
    finally:
        loader.dispose()
    builder = _Builder(file)
    value = None if node is None else builder.build(node, (), 0)
    return ParsedYaml(value, builder.source, tuple(builder.problems))


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_AS_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", _STR}


class _Builder:
    def __init__(self, file: str):
        self.source = SourceMap(file)
        self.problems: list[YamlProblem] = []
        self._count = 0
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        # Hot path (every node of every config): plain string scalars are handled inline, without a
        # call, and attribute lookups are hoisted.
        self._count += 1
        if self._count > MAX_NODES:
            raise YamlError("yaml.alias-bomb", ALIAS_BOMB.format(limit=MAX_NODES))
        mark = node.start_mark
        if depth > MAX_DEPTH:
            raise YamlError("yaml.too-deep", TOO_DEEP.format(limit=MAX_DEPTH), mark.line + 1, mark.column + 1)
        values = self.source.values
        values[path] = (mark.line + 1, mark.column + 1)
        kind = type(node)
        if kind is yaml.ScalarNode:
            return node.value if node.tag == _STR else self._scalar(node)
        if kind is yaml.SequenceNode:
            if node.tag != _SEQ:
                self._bad_tag(node)
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if kind is not yaml.MappingNode:
            raise YamlError("yaml.syntax", f"unexpected YAML node {kind.__name__}")  # pragma: no cover
        if node.tag != _MAP:
            self._bad_tag(node)
        keys = self.source.keys
        result: dict[str, Any] = {}
        merged: set[str] = set()
        if any(k.tag == _MERGE for k, _ in node.value):
            merged = self._merge(node, path, depth, result)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if type(key_node) is not yaml.ScalarNode:
                km = key_node.start_mark
                raise YamlError("yaml.syntax", BAD_KEY, km.line + 1, km.column + 1)
            if key_node.tag == _STR:
                key = key_node.value
            else:
                key_value = self._scalar(key_node)
                if isinstance(key_value, bool):
                    key = str(key_value).lower()
                else:
                    key = key_node.value if key_value is None else str(key_value)
            kmark = key_node.start_mark
            key_pos = (kmark.line + 1, kmark.column + 1)
            child = (*path, key)
            if key in merged:
                merged.discard(key)  # this mapping's own key overrides the merged one, as YAML says
            elif key in result:
                first = keys.get(child, (0, 0))[0]
                self.problems.append(YamlProblem("yaml.duplicate-key", DUPLICATE_KEY.format(key=key, line=first),
                                                 key_pos[0], key_pos[1], json_path(child)))
            keys[child] = key_pos
            if type(value_node) is yaml.ScalarNode and value_node.tag == _STR:
                self._count += 1
                vmark = value_node.start_mark
                values[child] = (vmark.line + 1, vmark.column + 1)
                result[key] = value_node.value
                continue
            result[key] = self.build(value_node, child, depth + 1)
            if type(value_node) is not yaml.ScalarNode:
                # A block mapping or list starts on the line after its key; the key is where an
                # editor should land.
                values[child] = key_pos
        return result

    def _merge(self, node: yaml.Node, path: tuple[Any, ...], depth: int, result: dict[str, Any]) -> set[str]:
        """YAML merge keys (``<<: *defaults``, or a list of anchors): their keys go into ``result``
        first, so this mapping's own keys override them; merged values keep the lines they are
        written on (in the anchored mapping). Returns the merged keys."""
        own_position = self.source.values.get(path)
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if type(value_node) is yaml.SequenceNode else [value_node]
            # The first mapping listed wins, as in YAML's merge spec: apply them last to first.
            for source in reversed(sources):
                if type(source) is not yaml.MappingNode:
                    mark = source.start_mark
                    raise YamlError("yaml.syntax", BAD_MERGE, mark.line + 1, mark.column + 1)
                for key, value in self.build(source, path, depth).items():
                    result[key] = value
                    merged.add(key)
        if own_position is not None:
            self.source.values[path] = own_position
        return merged

    def _scalar(self, node: Any) -> Any:
        tag = node.tag
        if tag in _AS_TEXT:
            return node.value
        try:
            if tag == _INT:
                return self._constructor.construct_yaml_int(node)
            if tag == _FLOAT:
                return self._constructor.construct_yaml_float(node)
            if tag == _BOOL:
                return self._constructor.construct_yaml_bool(node)
            if tag == _NULL:
                return None
        except (ValueError, yaml.constructor.ConstructorError) as exc:
            mark = node.start_mark
            raise YamlError("yaml.syntax", f"cannot read {node.value!r:.40} as {tag.rsplit(':', 1)[-1]}",
                            mark.line + 1, mark.column + 1) from exc
        self._bad_tag(node)
        return None  # pragma: no cover

    @staticmethod
    def _bad_tag(node: yaml.Node) -> None:
        mark = node.start_mark
        raise YamlError("yaml.syntax", BAD_TAG.format(tag=node.tag), mark.line + 1, mark.column + 1)
