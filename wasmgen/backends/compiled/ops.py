"""A rule's operation as Go statements on one header map, and as the words of its comment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Any

from wasmgen.backends.compiled.conditions import LOOKUP, Guard
from wasmgen.backends.compiled.edits import describe_edit, edit_lines, rewrite_lines
from wasmgen.backends.compiled.goident import comment, gostr, wrapped
from wasmgen.records import record

MAP = {"request": "requestHeaders", "response": "responseHeaders"}
PRESENCE_MIN, PRESENCE_MAX = 3, 64  # addIfAbsent with 3..64 names reads the map once


@record(frozen=False)
class Ctx:
    """What the statements of every rule share: identifiers, and the declarations they add."""

    h: dict[str, str]  # header name -> constant
    val: dict[tuple[str, int, str, str], str]  # (phase, index, op, header) -> value constant
    copy_field: dict[str, str]  # request header copyFromRequest reads -> streamState field stem
    local_reply: bool  # a local reply must be remembered: response rules skip it
    tables: list[str] = field(default_factory=list)  # package-level declarations
    rule_data: list[tuple[str, str]] = field(default_factory=list)  # ruleData fields
    prepare: list[str] = field(default_factory=list)  # prepareRules statements
    # pattern, where -> the variable holding it compiled (Program.regex)
    regex: Callable[[str, str], str] | None = None
    # (phase, index, op, header) of a value with ${...} -> (its render call, the spec's value)
    render: dict[tuple[str, int, str, str], tuple[str, str]] = field(default_factory=dict)


def valued(ctx: Ctx, slot: tuple[str, int, str, str], stmt: str) -> list[str]:
    """stmt (with {v} for the value) for one value: as it is for plain text, under the
    rendered value's presence for a value with expressions (its source may be absent)."""
    if slot not in ctx.render:
        return [stmt.format(v=f"c.v[{ctx.val[slot]}]")]
    call, shown = ctx.render[slot]
    return [
        f"// {slot[3]}: {comment(shown)}",
        f"if v, ok := {call}; ok {{",
        "\t" + stmt.format(v="v"),
        "}",
    ]


def _names(names: Sequence[str], limit: int = 4) -> str:
    shown = list(names[:limit])
    more = f", ... ({len(names)} headers)" if len(names) > limit else ""
    return ", ".join(shown) + more


def describe_op(rule: dict[str, Any]) -> str:
    """'set cache-control', 'rename a to b', 'respond 403', ..."""
    for op in ("set", "append", "addIfAbsent"):
        if op in rule:
            return f"{op} {_names(list(rule[op]))}"
    if "remove" in rule:
        return f"remove {_names(rule['remove'])}"
    if "rename" in rule or "copyFromRequest" in rule:
        op = "rename" if "rename" in rule else "copyFromRequest"
        return f"{op} " + ", ".join(f"{a} to {b}" for a, b in rule[op].items())
    if (edit := describe_edit(rule)) is not None:
        return edit
    respond = rule["respond"]
    echo = ", ".join(f"{a} as {b}" for a, b in respond.get("copyFromRequest", {}).items())
    return f"respond {respond['status']}" + (f" echoing {echo}" if echo else "")


def _table(ctx: Ctx, name: str, kind: str, items: Sequence[str], what: str) -> str:
    ctx.tables += [f"// {what}", f"var {name} = [...]{kind}{{", *wrapped(items, "\t"), "}", ""]
    return f"{name}[:]"


def op_guard(
    ctx: Ctx, rule: dict[str, Any], phase: str, index: int
) -> tuple[Guard, list[str]] | None:
    """A one-test operation (addIfAbsent or copyFromRequest of one header) as a test for the
    rule's if and its statement."""
    m, h = MAP[phase], ctx.h
    single = len(rule.get("addIfAbsent", {})) == 1
    if single and (phase, index, "addIfAbsent", *rule["addIfAbsent"]) not in ctx.render:
        (n,) = rule["addIfAbsent"]
        value = f"c.v[{ctx.val[(phase, index, 'addIfAbsent', n)]}]"
        return Guard(LOOKUP, f"!hasHeader({m}, {h[n]})"), [f"addHeader({m}, {h[n]}, {value})"]
    if len(rule.get("copyFromRequest", {})) == 1:
        ((src, dst),) = rule["copyFromRequest"].items()
        f = ctx.copy_field[src]
        return Guard(0, f"s.has{f}"), [f"setHeader({m}, {h[dst]}, bstr(s.copy{f}))"]
    return None


def op_lines(ctx: Ctx, rule: dict[str, Any], phase: str, index: int) -> list[str]:
    """The statements of rule (relative indentation); a respond ends with return."""
    m, h, label = MAP[phase], ctx.h, f"{phase}{index}"

    def each(op: str, stmt: str) -> list[str]:
        return [ln for n in rule[op] for ln in valued(ctx, (phase, index, op, n), stmt.format(h=h[n], v="{v}"))]  # fmt: skip

    if "set" in rule:
        return each("set", f"setHeader({m}, {{h}}, {{v}})")
    if "append" in rule:
        return each("append", f"addHeader({m}, {{h}}, {{v}})")
    if "addIfAbsent" in rule:
        names = list(rule["addIfAbsent"])
        rendered = any((phase, index, "addIfAbsent", n) in ctx.render for n in names)
        if PRESENCE_MIN <= len(names) <= PRESENCE_MAX and not rendered:
            what = f"What {phase}[{index}] adds when absent, and the values it adds."
            hs = _table(ctx, f"{label}Names", "string", [h[n] for n in names], what)
            keys = [ctx.val[(phase, index, "addIfAbsent", n)] for n in names]
            vs = _table(ctx, f"{label}Values", "int", keys, f"{label}Names' values.")
            return [f"addAbsent({m}, c, {hs}, {vs})"]
        lines: list[str] = []
        for n in names:
            inner = valued(ctx, (phase, index, "addIfAbsent", n), f"addHeader({m}, {h[n]}, {{v}})")  # fmt: skip
            lines += [f"if !hasHeader({m}, {h[n]}) {{", *("\t" + ln for ln in inner), "}"]
        return lines
    if "remove" in rule:
        exact = [n for n in rule["remove"] if not n.endswith("*")]
        prefixes = [n[:-1] for n in rule["remove"] if n.endswith("*")]
        if not prefixes:
            return [f"removeHeader({m}, {h[n]})" for n in exact]
        table = "nil"
        if exact:
            what = f"What {phase}[{index}] removes by name."
            table = _table(ctx, f"{label}Names", "string", [h[n] for n in exact], what)
        starred = ", ".join(p + "*" for p in prefixes)
        what = f"What {phase}[{index}] removes by prefix ({starred})."
        pre = _table(ctx, f"{label}Prefixes", "string", [gostr(p) for p in prefixes], what)
        return [f"removeMatching({m}, {table}, {pre})"]
    if "rename" in rule:
        return [f"renameHeader({m}, {h[a]}, {h[b]})" for a, b in rule["rename"].items()]
    if "copyFromRequest" in rule:
        lines = []
        for src, dst in rule["copyFromRequest"].items():
            f = ctx.copy_field[src]
            lines += [f"if s.has{f} {{", f"\tsetHeader(responseHeaders, {h[dst]}, bstr(s.copy{f}))", "}"]  # fmt: skip
        return lines
    if "rewrite" in rule and ctx.regex is not None:
        return rewrite_lines(ctx.regex, rule["rewrite"], phase, index)
    if (edited := edit_lines(ctx.tables, rule, phase, index)) is not None:
        return edited
    return _respond(ctx, rule["respond"], phase, index)


def _respond(ctx: Ctx, respond: dict[str, Any], phase: str, index: int) -> list[str]:
    h = ctx.h
    status, body = respond["status"], gostr(respond.get("body", ""))
    names = list(respond.get("headers", {}))
    pairs = [f"{h[n]}, c.v[{ctx.val[(phase, index, 'respond', n)]}]" for n in names]
    copies = respond.get("copyFromRequest", {})
    rendered = any((phase, index, "respond", n) in ctx.render for n in names)
    lines: list[str] = []
    if not copies and not rendered:
        name = f"{phase}{index}Reply"
        ctx.rule_data.append((name, "[]byte"))
        ctx.prepare.append(f"c.rules.{name} = serializePairs({', '.join(pairs)})")
        send = f"sendLocalResponse({status}, {body}, c.rules.{name})"
    else:
        size = 2 * (len(pairs) + len(copies))
        if rendered:  # in the spec's order, each header only when its value is there
            lines += [f"var kv [{size}]string", "n := 0"]
            for n in names:
                lines += valued(ctx, (phase, index, "respond", n), f"kv[n], kv[n+1], n = {h[n]}, {{v}}, n+2")  # fmt: skip
        else:
            lines += [f"kv := [{size}]string{{{', '.join(pairs)}}}", f"n := {2 * len(pairs)}"]
        for src, dst in copies.items():
            lines += [
                f"if v, ok := getHeader(requestHeaders, {h[src]}); ok {{",
                f"\tkv[n], kv[n+1] = {h[dst]}, v",
                "\tn += 2",
                "}",
            ]
        send = f"sendLocalResponse({status}, {body}, replyPairs(kv[:n]))"
    if ctx.local_reply:
        return [*lines, f"a := {send}", "s.localReply = a == actionPause", "return a"]
    return [*lines, f"return {send}"]
