"""A rule's when: as Go guards, cheapest first, and as the words of its comment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wasmgen.backends.compiled.goident import gostr
from wasmgen.backends.compiled.lowering import (
    any_of,
    lower_regex,
    method_test,
    status_test,
    string_test,
)
from wasmgen.records import record

# Costs order the tests of a conjunction: string tests on values already read, then host
# lookups (~260 instructions each), then regular expressions (thousands).
LITERAL, LOOKUP, VALUE, NESTED, REGEX = 1, 5, 6, 8, 20
REQUEST_SIDE = ("path", "method", "host", "headers", "query", "cookie", "source", "not", "any")
# Query parameters and cookies: the runtime function (match.go) that reads one by name.
READ_BY_NAME = {"query": "queryParam", "cookie": "cookieValue"}

TAB = "\t"
RegexFor = Callable[[str, str], str]  # (pattern, where it is used) -> Go variable
BlockFor = Callable[[Mapping[str, Any], str], str]  # (a nested block, where) -> Go function
NetsFor = Callable[[Sequence[str], str], str]  # (address blocks, where) -> Go variable


@record
class Guard:
    """One test of a conjunction; with bind (a call returning a value and whether it is there),
    it runs on v, ok := bind (or _, ok := bind when it reads only ok)."""

    cost: int
    expr: str
    bind: str = ""
    needs: str = ""  # the callback-level value it reads: path, method, host or status


def _paren(expr: str) -> str:
    return f"({expr})" if "||" in expr else expr


def match_test(match: Mapping[str, str], var: str, where: str, regex: RegexFor) -> Guard | None:
    """The test of a path/host/header-value match on var; None when it always holds."""
    ((kind, pattern),) = match.items()
    if kind != "regex":
        expr, cost = string_test(kind, pattern, var), LITERAL
    elif (lowered := lower_regex(pattern)) is not None:
        expr, cost = any_of([string_test(k, lit, var) for k, lit in lowered]), LITERAL
    else:
        expr, cost = f"{regex(pattern, where)}.MatchString({var})", REGEX
    return None if expr == "true" else Guard(cost, expr)


def request_guards(
    when: Mapping[str, Any] | None,
    where: str,
    h: Mapping[str, str],
    regex: RegexFor,
    block: BlockFor,
    nested: bool = False,
    nets: NetsFor | None = None,
) -> list[Guard]:
    """The request-side tests of when, on the request map as it is when they run."""
    when = when or {}
    base = where if nested else f"{where}.when"  # where a nested block's keys are
    guards: list[Guard] = []
    for var in ("path", "host"):
        if var in when:
            g = match_test(when[var], var, f"{base}.{var}.regex", regex)
            if g is not None:
                guards.append(Guard(g.cost, g.expr, needs=var))
    if "method" in when:
        guards.append(Guard(LITERAL, method_test(when["method"]), needs="method"))
    for j, cond in enumerate(when.get("headers", [])):
        name = h[cond["name"]]
        if "present" in cond:
            guards.append(Guard(LOOKUP, f"hasHeader(requestHeaders, {name})"))
        elif "absent" in cond:
            guards.append(Guard(LOOKUP, f"!hasHeader(requestHeaders, {name})"))
        else:
            at = f"{base}.headers[{j}].matches"
            guards.append(_value_guard(cond, f"getHeader(requestHeaders, {name})", at, regex))
    for kind, reader in READ_BY_NAME.items():
        for j, cond in enumerate(when.get(kind, [])):
            call = f"{reader}({gostr(cond['name'])})"
            if "present" in cond or "absent" in cond:
                pred = "ok" if "present" in cond else "!ok"
                guards.append(Guard(VALUE, pred, bind="_, ok := " + call))
            else:
                guards.append(_value_guard(cond, call, f"{base}.{kind}[{j}].matches", regex))
    if "source" in when:
        assert nets is not None, "a source condition needs the address-block variables"
        guards.append(Guard(VALUE, f"sourceIn({nets(when['source'], f'{base}.source')})"))
    # not: and any: are functions of their own (their tests, in the same order of cost).
    if "not" in when:
        guards.append(Guard(NESTED, "!" + block(when["not"], f"{base}.not") + "()"))
    if "any" in when:
        calls = [block(b, f"{base}.any[{j}]") + "()" for j, b in enumerate(when["any"])]
        guards.append(Guard(NESTED, " || ".join(calls)))
    return guards


def emit_block(name: str, guards: Sequence[Guard], declare: list[str]) -> list[str]:
    """A nested block as a Go function reporting whether all of its guards hold."""
    body = emit_if(guards, ["return true"]) if guards else ["\treturn true"]
    tail = ["\treturn false"] if guards else []
    return [f"func {name}() bool {{", *declare, *body, *tail, "}"]


def _value_guard(cond: Mapping[str, str], call: str, where: str, regex: RegexFor) -> Guard:
    """The equals or matches test of a value read by call."""
    match = {"exact": cond["equals"]} if "equals" in cond else {"regex": cond["matches"]}
    g = match_test(match, "v", where, regex)
    pred = "ok" if g is None else f"ok && {_paren(g.expr)}"
    cost = VALUE if g is None or g.cost == LITERAL else REGEX + 1
    return Guard(cost, pred, bind="v, ok := " + call)


def status_guard(when: Mapping[str, Any] | None) -> Guard | None:
    """The response status test of when, if it has one."""
    if not when or "status" not in when:
        return None
    return Guard(LITERAL, status_test(when["status"]), needs="status")


def emit_if(guards: Sequence[Guard], body: Sequence[str]) -> list[str]:
    """body (lines relative to the function body) under guards, at function-body indent:
    plain tests joined with && in one if, each header value read in a nested if (so it is
    read only when the cheaper tests passed)."""
    heads: list[str] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            heads.append(" && ".join(_paren(e) for e in plain) if len(plain) > 1 else plain[0])
            plain.clear()

    for g in sorted(guards, key=lambda g: g.cost):
        if g.bind:
            flush()
            heads.append(f"{g.bind}; {g.expr}")
        else:
            plain.append(g.expr)
    flush()
    n = len(heads)
    lines = [f"{TAB * (d + 1)}if {head} {{" for d, head in enumerate(heads)]
    lines += [f"{TAB * (n + 1)}{line}" if line else "" for line in body]
    lines += [f"{TAB * (d + 1)}}}" for d in reversed(range(n))]
    return lines


def _match_words(match: Mapping[str, str]) -> str:
    ((kind, pattern),) = match.items()
    lowered = lower_regex(pattern) if kind == "regex" else None
    if lowered is None:
        return f"{kind} {pattern}"
    tests = sorted({k if k != "contains" else "substring" for k, _ in lowered})
    return f"{kind} {pattern} (a literal: {' or '.join(tests)} test)"


def _test_words(cond: Mapping[str, Any]) -> str:
    if "present" in cond or "absent" in cond:
        return "present" if "present" in cond else "absent"
    if "equals" in cond:
        return f"equals {gostr(cond['equals'])}"
    return "matches " + _match_words({"regex": cond["matches"]}).removeprefix("regex ")


def _or(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def describe(when: Mapping[str, Any] | None) -> str:
    """' when path prefix /api/ and status 5xx or 429', or ''."""
    if not when:
        return ""
    parts: list[str] = []
    if "path" in when:
        parts.append(f"path {_match_words(when['path'])}")
    if "method" in when:
        parts.append(f"method {_or(when['method'])}")
    if "host" in when:
        parts.append(f"host {_match_words(when['host'])}")
    for key, what in (("headers", "header"), ("query", "query"), ("cookie", "cookie")):
        for cond in when.get(key, []):
            parts.append(f"{what} {cond['name']} {_test_words(cond)}")
    if "source" in when:
        parts.append(f"source in {_or(when['source'])}")
    if "status" in when:
        parts.append(f"status {_or(when['status'])}")
    if "not" in when:
        parts.append(f"not ({describe(when['not']).removeprefix(' when ')})")
    if "any" in when:
        branches = [f"({describe(b).removeprefix(' when ')})" for b in when["any"]]
        parts.append(f"any of {' or '.join(branches)}")
    return " when " + " and ".join(parts)


def request_side(when: Mapping[str, Any] | None) -> dict[str, Any]:
    """The conditions of when that look at the request."""
    return {k: v for k, v in (when or {}).items() if k in REQUEST_SIDE}
