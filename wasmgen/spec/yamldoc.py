"""YAML documents as plain dicts and lists that remember where each key and item was written.

libyaml (PyYAML's C parser; its pure-Python parser where libyaml is missing) turns the text into
events, and this module builds the document from them with the YAML 1.2 core schema: `yes`,
`on` and `0777` are strings and numbers as a reader of YAML 1.2 expects, not YAML 1.1's
booleans and octals. Building from events keeps every position, refuses duplicate keys, keeps
an alias the same object as its anchor (so alias bombs are counted, not expanded), and bounds
the nesting depth without recursion.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Final

import yaml

Position = tuple[int, int]  # 0-based line and column, as the parser's marks give them

_Parser: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(Exception):
    """The text is not a YAML document wasmgen can read; where (0-based) and what."""

    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class YamlLimit(YamlError):
    """Well-formed YAML that goes past what a spec can hold (too deep, too large a number)."""


class YamlMap(dict[Any, Any]):
    """A mapping that knows where each of its keys and values was written."""

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.keys_at: dict[Any, Position] = {}
        self.values_at: dict[Any, Position] = {}


class YamlList(list[Any]):
    """A sequence that knows where each of its items was written."""

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.items_at: list[Position] = []


_CORE_TAG: Final = "tag:yaml.org,2002:"
_NULL: Final = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL: Final = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_INT: Final = re.compile(r"[-+]?[0-9]+\Z")
_OCT: Final = re.compile(r"0o[0-7]+\Z")
_HEX: Final = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF: Final = re.compile(r"([-+]?)\.(?:inf|Inf|INF)\Z")
_NAN: Final = re.compile(r"\.(?:nan|NaN|NAN)\Z")


def core_scalar(text: str) -> Any:
    """A plain scalar as the YAML 1.2 core schema reads it (ValueError for a number Python
    will not convert, such as one of more than 4300 digits)."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if inf := _INF.match(text):
        return float(f"{inf[1]}inf")
    if _NAN.match(text):
        return float("nan")
    return text


def _tagged(tag: str, text: str, at: Position) -> Any:
    """A scalar with an explicit core tag (!!str, !!int, ...)."""
    kind = tag.removeprefix(_CORE_TAG)
    if kind == "str":
        return text
    value = core_scalar(text)
    kinds: dict[str, type | tuple[type, ...]] = {
        "int": int,
        "float": (int, float),
        "bool": bool,
        "null": type(None),
    }
    wanted = kinds.get(kind)
    if wanted is None:
        raise YamlError(f"unsupported tag {_shown(tag)}", at)
    if not isinstance(value, wanted) or (kind == "int" and isinstance(value, bool)):
        raise YamlError(f"{_shown(text)} is not a valid !!{kind}", at)
    return float(value) if isinstance(value, int) and kind == "float" else value


def _shown(text: str, limit: int = 32) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _scalar(event: Any, at: Position) -> Any:
    tag = event.tag
    if tag not in (None, "!"):
        if not tag.startswith(_CORE_TAG):
            raise YamlError(f"unsupported tag {_shown(tag)}", at)
        return _tagged(tag, event.value, at)
    if event.style or tag == "!":  # quoted, literal, folded, or the non-specific tag: a string
        return event.value
    if event.value == "<<":
        return _MERGE
    try:
        return core_scalar(event.value)
    except ValueError:  # Python refuses to convert an integer of more than 4300 digits
        digits = sys.get_int_max_str_digits()
        raise YamlLimit(
            f"a number of more than {digits} digits; no spec field takes one", at
        ) from None


class _Merge:
    """A plain `<<` scalar: as a key, it merges mappings (the merge key most YAML tools read,
    though YAML 1.2 leaves it out); anywhere else it is the string "<<"."""


_MERGE: Final = _Merge()


def _at(mark: Any) -> Position:
    return (mark.line, mark.column)


class _Builder:
    """Assembles containers from parser events on an explicit stack."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.stack: list[YamlMap | YamlList] = []
        self.pending: list[tuple[Any, Position] | None] = []  # a map's key awaiting its value
        self.merges: list[list[YamlMap]] = []  # what each open map's `<<` keys bring in
        self.anchors: dict[str, Any] = {}
        self.documents: list[Any] = []

    def add(self, value: Any, at: Position) -> None:
        key = self.pending[-1] if self.stack else None
        if value is _MERGE and not (
            self.stack and isinstance(self.stack[-1], YamlMap) and key is None
        ):
            value = "<<"
        if not self.stack:
            self.documents.append(value)
            return
        top = self.stack[-1]
        if isinstance(top, YamlList):
            top.append(value)
            top.items_at.append(at)
            return
        if key is None:
            if value is _MERGE:
                self.pending[-1] = (value, at)
                return
            if isinstance(value, dict | list):
                raise YamlError("a mapping key must be a plain value, not a mapping or list", at)
            if value in top:
                raise YamlError(f"duplicate key {_shown(str(value))}", at)
            self.pending[-1] = (value, at)
            return
        name, key_at = key
        self.pending[-1] = None
        if name is _MERGE:
            sources = value if isinstance(value, YamlList) else [value]
            if not sources or not all(isinstance(v, YamlMap) for v in sources):
                raise YamlError("a merge key (<<) takes a mapping or a list of mappings", at)
            self.merges[-1].extend(sources)
            return
        top[name] = value
        top.keys_at[name] = key_at
        top.values_at[name] = at

    def open(self, container: YamlMap | YamlList, anchor: str | None) -> None:
        if len(self.stack) >= self.max_depth:
            raise YamlLimit(
                f"the document nests deeper than a spec can (more than {self.max_depth} levels)",
                container.start,
            )
        if anchor is not None:
            self.anchors[anchor] = container
        self.stack.append(container)
        self.pending.append(None)
        self.merges.append([])

    def close(self) -> None:
        container = self.stack.pop()
        self.pending.pop()
        for source in self.merges.pop():  # keys written here win, then earlier sources
            assert isinstance(container, YamlMap)
            for name, value in source.items():
                if name not in container:
                    container[name] = value
                    container.keys_at[name] = source.keys_at[name]
                    container.values_at[name] = source.values_at[name]
        self.add(container, container.start)


def parse_documents(text: str, max_depth: int) -> list[Any]:
    """Every document in text, built with positions; YamlError names the first problem."""
    builder = _Builder(max_depth)
    parser = _Parser(text)
    try:
        while parser.check_event():
            event = parser.get_event()
            kind = type(event).__name__
            at = _at(event.start_mark)
            if kind == "ScalarEvent":
                value = _scalar(event, at)
                if event.anchor is not None:
                    builder.anchors[event.anchor] = value
                builder.add(value, at)
            elif kind == "MappingStartEvent":
                builder.open(YamlMap(at), event.anchor)
            elif kind == "SequenceStartEvent":
                builder.open(YamlList(at), event.anchor)
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                builder.close()
            elif kind == "AliasEvent":
                if event.anchor not in builder.anchors:
                    raise YamlError(f"unknown alias *{event.anchor}", at)
                builder.add(builder.anchors[event.anchor], at)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        raise YamlError(message, _at(mark) if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc), None) from None
    finally:
        parser.dispose()
    return builder.documents
