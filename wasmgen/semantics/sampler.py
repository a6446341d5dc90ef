"""Find a short string an RE2 pattern matches, to build test traffic for regex conditions."""

from __future__ import annotations

import re
import re._parser as sre_parse  # type: ignore[import-not-found]
import warnings
from typing import Any

from wasmgen.spec.names import compile_regex

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip
_RE2_ONLY = re.compile(
    r"\\Q(?P<quoted>.*?)(?:\\E|$)|\[:(?P<neg>\^?)(?P<posix>[a-z]+):\]|\\(?P<prop>[pP])(?:\{[^}]*\}|[A-Za-z])"
    r"|\\z|\\C|\\x\{(?P<hex>[0-9A-Fa-f]{1,6})\}"
)


def _python_syntax(expr: str) -> str:
    """RE2 syntax Python's parser lacks, rewritten to a stand-in that matches a subset:
    \\Q...\\E, [[:digit:]], \\pL / \\p{Greek}, \\z, \\C and \\x{...}."""

    def swap(m: re.Match[str]) -> str:
        text = m.group(0)
        if m.group("quoted") is not None:
            return re.escape(m.group("quoted"))
        if m.group("posix"):
            chars = _POSIX_CLASSES.get(m.group("posix"), "a")
            return ("^" if m.group("neg") else "") + chars
        if m.group("prop"):
            return "[a-zA-Z]" if m.group("prop") == "p" else "[0-9]"
        if m.group("hex"):
            return re.escape(chr(int(m.group("hex"), 16)))
        return {"\\z": "\\Z", "\\C": "."}[text]

    return _RE2_ONLY.sub(swap, expr)


def sample_regex(expr: str) -> str | None:
    """A short string the regex finds, or None when the pattern is beyond this sampler (the
    rule then goes untested, with a warning; generation never depends on this)."""
    for candidate in (expr, _python_syntax(expr)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "possible nested set" and the like
                parsed = sre_parse.parse(candidate)
            text = _sample(list(parsed))
            if compile_regex(expr).search(text):
                return text
        except Exception:
            continue
    return None


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
