"""Conditions as the cheapest Go test: literal regexes as string tests, status sets as ranges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from wasmgen.backends.compiled.goident import gostr

Kind = Literal["exact", "prefix", "suffix", "contains"]
Alternative = tuple[Kind, str]
_META = set("\\.+*?()|[]{}^$")


def _literal(text: str) -> str | None:
    """The string an RE2 fragment matches when it is a plain literal (punctuation may be
    escaped), else None."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if not nxt or nxt.isalnum() or nxt.isspace() or not nxt.isascii() or nxt == "_":
                return None  # \d, \b, \x41, \Q ... are not literals
            out.append(nxt)
            i += 2
            continue
        if ch in _META:
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def _split(pattern: str) -> list[str] | None:
    """pattern split at its top-level '|'; None when it has a character class."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            return None
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*parts, pattern[start:]] if depth == 0 else None


def _ends_with_anchor(text: str) -> bool:
    """text ends with an unescaped $."""
    if not text.endswith("$"):
        return False
    slashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    return slashes % 2 == 0


def _group_body(text: str) -> str | None:
    """The inside of text when text is one (...) or (?:...) group, else None."""
    if not text.startswith("("):
        return None
    depth, close, i = 0, -1, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                close = i
                break
        i += 1
    if close != len(text) - 1:
        return None  # (a)(b), or not closed at the end
    inner = text[1:-1]
    if inner.startswith("?:"):
        return inner[2:]
    return None if inner.startswith("?") else inner


def lower_regex(pattern: str) -> tuple[Alternative, ...] | None:
    """The literal tests an RE2 search for pattern amounts to (any of them matches), or None
    when pattern needs a real regex engine. ^ and $ anchor the text (no multi-line flag)."""
    alternatives = _split(pattern)
    if alternatives is None:
        return None
    out: list[Alternative] = []
    for alt in alternatives:
        start = alt.startswith("^")
        body = alt[1:] if start else alt
        end = _ends_with_anchor(body)
        body = body[:-1] if end else body
        kind: Kind = (
            "exact" if start and end else "prefix" if start else "suffix" if end else "contains"
        )
        inner = _group_body(body)
        pieces = [body] if inner is None else _split(inner)
        if pieces is None:
            return None
        for piece in pieces:
            literal = _literal(piece)
            if literal is None:
                return None
            out.append((kind, literal))
    return tuple(out)


def string_test(kind: str, literal: str, var: str) -> str:
    """The Go test of var against literal: var == "x", hasPrefix(var, "x"), ...; "true"
    when it always holds."""
    if kind == "exact":
        return f"{var} == {gostr(literal)}"
    if not literal:
        return "true"
    helper = {"prefix": "hasPrefix", "suffix": "hasSuffix", "contains": "hasSubstr"}[kind]
    return f"{helper}({var}, {gostr(literal)})"


def any_of(tests: Sequence[str]) -> str:
    """tests joined with ||, "true" when one always holds (deduplicated, in order)."""
    unique = list(dict.fromkeys(tests))
    if "true" in unique:
        return "true"
    return " || ".join(unique)


def status_ranges(statuses: Sequence[str]) -> list[tuple[int, int]]:
    """ "5xx", "429", "200-299" as sorted, merged, inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for spec in statuses:
        if spec.endswith("xx"):
            lo = int(spec[0]) * 100
            ranges.append((lo, lo + 99))
        else:
            lo_s, _, hi_s = spec.partition("-")
            ranges.append((int(lo_s), int(hi_s or lo_s)))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def status_test(statuses: Sequence[str], var: str = "status") -> str:
    """status >= 500 && status <= 599 || status == 429 (ranges merged)."""
    parts = [
        f"{var} == {lo}" if lo == hi else f"{var} >= {lo} && {var} <= {hi}"
        for lo, hi in status_ranges(statuses)
    ]
    return " || ".join(parts)


def method_test(methods: Sequence[str], var: str = "method") -> str:
    """method == "GET" || method == "HEAD"."""
    return any_of([f"{var} == {gostr(m)}" for m in methods])
