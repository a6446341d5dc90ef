"""Find a short string an RE2 pattern matches, to build test traffic for regex conditions."""

from __future__ import annotations

import re._constants as sre_c  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from typing import Any

from wasmgen.spec.names import compile_regex


def sample_regex(expr: str) -> str | None:
    """A short string the regex finds, or None when the pattern is beyond this sampler."""
    try:
        parsed = sre_parse.parse(expr)
        text = _sample(list(parsed))
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, sre_c.error):
        return None
    return text if compile_regex(expr).search(text) else None


def _sample(items: list[Any]) -> str:
    out = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "ANY":
            out.append("a")
        elif name == "NOT_LITERAL":
            out.append("a" if chr(av) != "a" else "b")
        elif name == "IN":
            out.append(_class_char(av))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _hi, sub = av
            out.append(_sample(list(sub)) * max(lo, 0))
        elif name == "SUBPATTERN":
            out.append(_sample(list(av[-1])))
        elif name == "BRANCH":
            out.append(_sample(list(av[1][0])))
        elif name == "AT":
            continue
        else:
            raise ValueError(name)
    return "".join(out)


def _class_char(items: list[Any]) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in items)
    if negate:
        for ch in "az09_-":
            if not _in_class(items, ch):
                return ch
        raise ValueError("class")
    op, av = items[0]
    name = str(op)
    if name == "LITERAL":
        return chr(av)
    if name == "RANGE":
        return chr(av[0])
    if name == "CATEGORY":
        return {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " ", "CATEGORY_WORD": "a"}.get(
            str(av), "a"
        )
    raise ValueError(name)


def _in_class(items: list[Any], ch: str) -> bool:
    for op, av in items:
        name = str(op)
        if name == "LITERAL" and chr(av) == ch:
            return True
        if name == "RANGE" and av[0] <= ord(ch) <= av[1]:
            return True
        if name == "CATEGORY":
            if str(av) == "CATEGORY_DIGIT" and ch.isdigit():
                return True
            if str(av) == "CATEGORY_WORD" and (ch.isalnum() or ch == "_"):
                return True
    return False
