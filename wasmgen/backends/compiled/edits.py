"""Operations that edit header values in place (cookieFlags, removeCookie, dedupe), as Go
statements and words.

Their Go runtime lives in files of its own (runtime/valueedit.go, the string work shared with
the dynamic backend, and runtime/edits.go), which the project carries only when a rule needs
them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmgen.backends.compiled.goident import gostr
from wasmgen.spec.edits import encode_query_value, go_template

EDIT_OPS = ("cookieFlags", "removeCookie", "dedupe", "setQuery", "removeQuery")
# rewrite needs regexp: its runtime is a file of its own, so the other edits never link it.
RUNTIME_FILES = ("valueedit.go", "edits.go")  # what the edit operations need
_FLAG = {None: "flagKeep", True: "flagAdd", False: "flagDrop"}


def runtime_files(config: dict[str, Any]) -> list[str]:
    """The runtime files the rules of config need, beyond the ones every project has."""
    rules = [r for phase in ("request", "response") for r in config.get(phase, [])]
    files = list(RUNTIME_FILES) if any(op in r for r in rules for op in EDIT_OPS) else []
    return files + (["rewrite.go"] if any("rewrite" in r for r in rules) else [])


def describe_edit(rule: dict[str, Any]) -> str | None:
    """'cookieFlags Secure, no HttpOnly, SameSite=Lax on session', 'removeCookie a, b'; None
    for other operations."""
    if "removeCookie" in rule:
        return f"removeCookie {', '.join(rule['removeCookie'])}"
    for op in ("setQuery", "removeQuery"):
        if op in rule:
            return f"{op} {', '.join(rule[op])}"
    if "rewrite" in rule:
        return "rewrite " + ", ".join(rule["rewrite"])
    if "dedupe" in rule:
        return "dedupe " + ", ".join(f"{n} ({mode})" for n, mode in rule["dedupe"].items())
    if "cookieFlags" not in rule:
        return None
    flags = rule["cookieFlags"]
    words = [
        ("" if flags[key] else "no ") + word
        for key, word in (("secure", "Secure"), ("httpOnly", "HttpOnly"))
        if key in flags
    ]
    if "sameSite" in flags:
        words.append(f"SameSite={flags['sameSite']}")
    where = f" on {', '.join(flags['cookies'])}" if "cookies" in flags else ""
    return f"cookieFlags {', '.join(words)}{where}"


def _names(names: list[str]) -> str:
    return f"[]string{{{', '.join(gostr(n) for n in names)}}}"


def edit_lines(tables: list[str], rule: dict[str, Any], phase: str, index: int) -> list[str] | None:
    """A package-level lineEdit for the rule and the statement that applies it; None for
    other operations."""
    if "cookieFlags" in rule:
        flags = rule["cookieFlags"]
        fields = [f"secure: {_FLAG[flags.get('secure')]}", f"httpOnly: {_FLAG[flags.get('httpOnly')]}"]  # fmt: skip
        if "sameSite" in flags:
            fields.append(f"sameSite: {gostr('SameSite=' + flags['sameSite'])}")
        if "cookies" in flags:
            fields.append(f"cookies: {_names(flags['cookies'])}")
        edit, header = f"kind: editCookieFlags, flags: cookieFlags{{{', '.join(fields)}}}", "setCookie"  # fmt: skip
        what = "each Set-Cookie"
    elif "removeCookie" in rule:
        kind = "editDropCookie" if phase == "request" else "editDropSetCookie"
        header = "cookieHeader" if phase == "request" else "setCookie"
        edit = f"kind: {kind}, names: {_names(rule['removeCookie'])}"
        what = "the Cookie header" if phase == "request" else "each Set-Cookie"
    elif "setQuery" in rule or "removeQuery" in rule:
        return _query(tables, rule, phase, index)
    elif "dedupe" in rule:
        return [
            f"dedupeHeader({phase}Headers, {gostr(n)}, dedupe{mode.title()})"
            for n, mode in rule["dedupe"].items()
        ]
    else:
        return None
    name = f"{phase}{index}Edit"
    tables += [f"// What {phase}[{index}] does to {what}.", f"var {name} = lineEdit{{{edit}}}", ""]
    return [f"editLines({phase}Headers, {header}, &{name})"]


def _query(tables: list[str], rule: dict[str, Any], phase: str, index: int) -> list[str]:
    removed = rule.get("removeQuery", [])
    fields = []
    if names := [n for n in removed if not n.endswith("*")]:
        fields.append(f"names: {_names(names)}")
    if prefixes := [n[:-1] for n in removed if n.endswith("*")]:
        fields.append(f"prefixes: {_names(prefixes)}")
    pairs = [(n, encode_query_value(v)) for n, v in rule.get("setQuery", {}).items()]
    if pairs:
        fields.append("set: [][2]string{" + ", ".join(f"{{{gostr(n)}, {gostr(v)}}}" for n, v in pairs) + "}")  # fmt: skip
        fields.append(f"extra: {sum(len(n) + len(v) + 2 for n, v in pairs)}")
    name = f"{phase}{index}Query"
    tables += [f"// What {phase}[{index}] does to the query string.", f"var {name} = queryEdit{{{', '.join(fields)}}}", ""]  # fmt: skip
    return [f"editQuery(&{name})"]


def rewrite_lines(
    regex: Callable[[str, str], str], rewrites: dict[str, Any], phase: str, index: int
) -> list[str]:
    """One rewriteHeader call per header; the regexes compile once, at start."""
    lines = []
    for name, how in rewrites.items():
        var = regex(how["regex"], f'{phase}[{index}].rewrite["{name}"].regex')
        template = go_template(how["regex"], how["with"])
        lines.append(f"rewriteHeader({phase}Headers, {gostr(name)}, {var}, {gostr(template)})")
    return lines
