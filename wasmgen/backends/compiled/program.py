"""rules.go for one plan: the spec's rules as straight-line Go, in order, one block per rule."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from wasmgen.backends.compiled.conditions import (
    LITERAL,
    Guard,
    describe,
    emit_block,
    emit_if,
    request_guards,
    request_side,
    status_guard,
)
from wasmgen.backends.compiled.goident import (
    aligned,
    camel,
    comment,
    goraw,
    gostr,
    unique_idents,
)
from wasmgen.backends.compiled.ops import Ctx, describe_op, op_guard, op_lines
from wasmgen.plan import Plan
from wasmgen.records import record
from wasmgen.spec.conditions import blocks
from wasmgen.spec.names import compile_regex
from wasmgen.spec.presets import preset_rules

READERS = {
    "path": "requestPath()",
    "method": "requestMethod()",
    "host": "requestHost()",
    "status": "responseStatus()",
}


def header_names(config: dict[str, Any]) -> list[str]:
    """Every header name the rules use, in order of first appearance."""
    names: list[str] = []
    for phase in ("request", "response"):
        for rule in config.get(phase, []):
            for block in blocks(rule.get("when")):
                names += [cond["name"] for cond in block.get("headers", [])]
            for op in ("set", "append", "addIfAbsent"):
                names += list(rule.get(op, {}))
            names += [n for n in rule.get("remove", []) if not n.endswith("*")]
            for op in ("rename", "copyFromRequest"):
                for src, dst in rule.get(op, {}).items():
                    names += [src, dst]
            respond = rule.get("respond") or {}
            names += list(respond.get("headers", {}))
            for src, dst in respond.get("copyFromRequest", {}).items():
                names += [src, dst]
    return list(dict.fromkeys(names))


def rule_labels(plan: Plan, phase: str) -> list[str]:
    """ "response[1]", with " (preset secureHeaders)" or " (variant cors)" where that applies."""
    rules = plan.config.get(phase, [])
    labels = [f"{phase}[{i}]" for i in range(len(rules))]
    presets: list[str] = []
    if phase == "response":
        p = plan.spec.presets
        presets = ["stripServerHeaders"] * len(preset_rules(False, p.strip_server_headers))
        presets += ["secureHeaders"] * len(preset_rules(p.secure_headers, False))
    own = len(plan.spec.request if phase == "request" else plan.spec.response)
    variant = plan.variant.name if plan.variant is not None else ""
    for i in range(len(rules)):
        if i < len(presets):
            labels[i] += f" (preset {presets[i]})"
        elif i < len(rules) - own and variant:
            labels[i] += f" (variant {variant})"
    return labels


@record(frozen=False)
class Program:
    """The parts of rules.go, filled in by build()."""

    plan: Plan
    regexes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # pattern -> var, uses
    when: dict[str, tuple[str, str, list[str]]] = field(default_factory=dict)  # key -> const, ...
    h: dict[str, str] = field(default_factory=dict)  # header name -> Go constant
    blocks: list[str] = field(default_factory=list)  # the functions of nested blocks
    nets: dict[tuple[str, ...], tuple[str, list[str]]] = field(default_factory=dict)

    def source_nets(self, blocks: Sequence[str], where: str) -> str:
        """The variable holding a source condition's address blocks, parsed once at start
        (one per distinct list)."""
        key = tuple(str(ipaddress.ip_network(b)) for b in blocks)
        if key not in self.nets:
            self.nets[key] = (f"sourceNets{len(self.nets)}", [])
        self.nets[key][1].append(where)
        return self.nets[key][0]

    def regex(self, pattern: str, where: str) -> str:
        """The variable holding pattern compiled (one per distinct pattern)."""
        if pattern not in self.regexes:
            stem = where.replace(".when.", ".").removesuffix(".regex").removesuffix(".matches")
            self.regexes[pattern] = (f"re{camel(stem)}", [])
        self.regexes[pattern][1].append(where)
        return self.regexes[pattern][0]

    def block(self, when: Mapping[str, Any], where: str) -> str:
        """The function testing a block nested under not: or any: (one per place)."""
        name = "cond" + camel(where.replace(".when.", "."))
        at = len(self.blocks)  # before the blocks nested in this one
        guards = request_guards(when, where, self.h, self.regex, self.block, True, self.source_nets)
        declare: list[str] = []
        _declare(_needs(guards), set(), declare)
        doc = comment(f"{name} holds when {describe(when).removeprefix(' when ')} ({where})")
        self.blocks[at:at] = ["", f"// {doc}.", *emit_block(name, guards, declare)]
        return name


def _declare(needs: set[str], declared: set[str], out: list[str]) -> None:
    for var in ("path", "method", "host", "status"):
        if var in needs and var not in declared:
            out.append(f"\t{var} := {READERS[var]}")
            declared.add(var)


def _with_op(
    ctx: Ctx, guards: list[Guard], rule: dict[str, Any], phase: str, index: int
) -> tuple[list[Guard], list[str]]:
    """The rule's guards and statements; a one-test operation joins the guards."""
    joined = op_guard(ctx, rule, phase, index)
    if joined is None:
        return guards, op_lines(ctx, rule, phase, index)
    return [*guards, joined[0]], joined[1]


def _needs(guards: list[Guard]) -> set[str]:
    return {g.needs for g in guards if g.needs}


def _rules(n: int, phase: str) -> str:
    return f"{n} {phase} rule{'s' if n != 1 else ''}"


def _exports(
    request: list[Any], response: list[Any], tests_request: bool, copies: bool
) -> dict[str, Any]:
    """Which header callbacks the module exports (exports.go), and why.

    Envoy calls a callback only when the module exports it, and each call costs CPU per
    request: the request callback is exported for request rules and for response rules that
    look at the request as the client sent it; the response callback for response rules.
    """
    if request:
        why_request = f"the spec has {_rules(len(request), 'request')}"
    elif tests_request or copies:
        what = "test the request" if tests_request else "copy request headers"
        why_request = f"response rules {what}, as the client sent it"
    else:
        why_request = "the spec has no request rule, and no response rule looks at the request"
    return {
        "export_request": bool(request) or tests_request or copies,
        "export_request_why": why_request,
        "export_response": bool(response),
        "export_response_why": (
            f"the spec has {_rules(len(response), 'response')}"
            if response
            else "the spec has no response rule"
        ),
    }


def build(plan: Plan) -> dict[str, Any]:
    """The rules.go template context for plan."""
    config = plan.config
    request, response = config.get("request", []), config.get("response", [])
    h = unique_idents("h", header_names(config))
    prog = Program(plan, h=h)
    keys = unique_idents("val", [s.key for s in plan.values], empty="Value")
    local_reply = any("respond" in r for r in request) and bool(response)
    copies = list(dict.fromkeys(src for r in response for src in r.get("copyFromRequest", {})))
    slots, finds = _value_slots(prog, plan)
    ctx = Ctx(
        h=h,
        val={(s.phase, s.index, s.op, s.header): keys[s.key] for s in plan.values},
        copy_field={src: h[src][1:] for src in copies},
        local_reply=local_reply,
        regex=prog.regex,
        render={
            (s.phase, s.index, s.op, s.header): (
                f"c.render({keys[s.key]}, {'&s.x' if s.phase == 'response' else 'nil'}, {finds[s.phase, s.index]})",
                s.value,
            )
            for s in plan.values
            if s.expr
        },
    )
    captures = [s for s in plan.values if s.expr and s.phase == "response"]
    # Response rules that look at the request: one flag per distinct conjunction, set by
    # captureRequest on the request as the client sent it.
    rule_when: dict[int, str] = {}
    for i, rule in enumerate(response):
        side = request_side(rule.get("when"))
        if side:
            key = json.dumps(side, sort_keys=True)
            if key not in prog.when:
                prog.when[key] = (f"whenResponse{i}", describe(side).removeprefix(" when "), [])
            prog.when[key][2].append(f"response[{i}]")
            rule_when[i] = prog.when[key][0]
    capture = _capture(prog, ctx, response, rule_when)
    for s in captures:  # what response values read of the request, as the client sent it
        capture.append(f"\tc.capture({keys[s.key]}, &s.x, {finds[s.phase, s.index]})")
    req_body, replies = _request(prog, ctx, request, rule_labels(plan, "request"))
    resp_body = _response(ctx, response, rule_labels(plan, "response"), rule_when)
    need_state = bool(prog.when or copies or local_reply or captures)
    fields = [("when", "[numWhen]bool")] if prog.when else []
    reset = ["s.when = [numWhen]bool{}"] if prog.when else []
    for src in copies:
        f = ctx.copy_field[src]
        fields += [(f"copy{f}", "[]byte"), (f"has{f}", "bool")]
        reset.append(f"s.copy{f}, s.has{f} = s.copy{f}[:0], false")
    if captures:
        fields.append(("x", "exprCaps"))
        reset.append("clear(s.x.capOK)")
    if local_reply:
        fields.append(("localReply", "bool"))
        reset.append("s.localReply = false")
    prepare = []
    for pattern, (var, uses) in prog.regexes.items():
        prepare += [
            f"if {var} == nil {{",
            f"\tre, err := regexp.Compile({goraw(pattern)})",
            "\tif err != nil {",
            f'\t\treturn configError{{key: -1, at: {gostr(uses[0])}, msg: "invalid regular expression: " + err.Error()}}',
            "\t}",
            f"\t{var} = re",
            "}",
        ]
    prepare += ctx.prepare
    when_consts = [(const, str(n)) for n, (const, _, _) in enumerate(prog.when.values())]
    return {
        **_exports(request, response, bool(prog.when), bool(copies or captures)),
        "plan": plan,
        "source": plan.spec.name,
        "pass_through": plan.pass_through,
        "need_state": need_state,
        "headers": aligned([(ident, gostr(name)) for name, ident in h.items()], " = "),
        "value_consts": aligned(
            [
                *((keys[s.key], str(n)) for n, s in enumerate(plan.values)),
                ("numValues", str(len(plan.values))),
            ],
            " = ",
        ),
        "config_keys": [f"{{{gostr(s.key)}, {goraw(s.where)}}}," for s in plan.values],
        "value_slots": slots,
        "path_groups": any(f != "nil" for f in finds.values()),
        "example_config": goraw(
            json.dumps(plan.plugin_config, ensure_ascii=False, separators=(", ", ": "))
        ),
        "regexes": [(var, ", ".join(uses)) for var, uses in prog.regexes.values()],
        "nets": [
            (var, ", ".join(uses), ", ".join(gostr(b) for b in key))
            for key, (var, uses) in prog.nets.items()
        ],
        "rule_data": aligned(ctx.rule_data, " "),
        "prepare": prepare,
        "state_fields": aligned(fields, " "),
        "reset": reset,
        "when_consts": aligned([*when_consts, ("numWhen", str(len(when_consts)))], " = "),
        "when_docs": [
            (const, comment(f"{what} ({', '.join(uses)})"))
            for const, what, uses in prog.when.values()
        ],
        "capture": capture,
        "request": req_body,
        "always_replies": replies,
        "response": resp_body,
        "local_reply": local_reply,
        "tables": ctx.tables[:-1] if ctx.tables else [],
        "blocks": prog.blocks,
    }


def _value_slots(prog: Program, plan: Plan) -> tuple[list[str], dict[tuple[str, int], str]]:
    """valueSlots' entries (what start-up checks a configured value's expressions against),
    and for each rule with a value taking something from the traffic the Go value finding its
    when.path.regex's groups (nil without one; the regex compiles once, at start)."""
    lines: list[str] = []
    finds: dict[tuple[str, int], str] = {}
    for s in plan.values:
        rule = plan.config[s.phase][s.index]
        pattern = ((rule.get("when") or {}).get("path") or {}).get("regex")
        fields = ["response: true"] if s.phase == "response" else []
        fields += ["expr: true"] if s.expr else []
        if pattern is None:
            fields.append("groups: -1")
            finds[s.phase, s.index] = "nil"
        else:
            compiled = compile_regex(pattern)
            names = [""] * (compiled.groups + 1)
            for name, n in compiled.groupindex.items():
                names[n] = name
            fields.append(f"groups: {compiled.groups}")
            if any(names):
                fields.append("names: []string{" + ", ".join(gostr(n) for n in names) + "}")
            if s.expr and (s.phase, s.index) not in finds:
                where = f"{s.phase}[{s.index}].when.path.regex"
                finds[s.phase, s.index] = f"{prog.regex(pattern, where)}.FindStringSubmatchIndex"
        lines.append("{" + ", ".join(fields) + "},")
    width = max((len(ln) for ln in lines), default=0)
    return [
        ln.ljust(width) + f" // {s.where}" for ln, s in zip(lines, plan.values, strict=True)
    ], finds


def _capture(
    prog: Program, ctx: Ctx, response: list[dict[str, Any]], rule_when: dict[int, str]
) -> list[str]:
    """captureRequest's body: the request-side flags, then the values copyFromRequest needs."""
    blocks = []
    for key, (const, _, uses) in prog.when.items():
        guards = request_guards(
            json.loads(key), uses[0], ctx.h, prog.regex, prog.block, nets=prog.source_nets
        )
        blocks.append((guards, emit_if(guards, [f"s.when[{const}] = true"])))
    out: list[str] = []
    _declare(set().union(*(_needs(g) for g, _ in blocks)), set(), out)
    for _, lines in blocks:
        out += lines
    by_flags: dict[str, list[str]] = {}  # the flags a value is copied under -> statements
    for src, f in ctx.copy_field.items():
        flags = [rule_when.get(i) for i, r in enumerate(response) if src in r.get("copyFromRequest", {})]  # fmt: skip
        test = "" if None in flags else " || ".join(f"s.when[{w}]" for w in dict.fromkeys(flags))
        line = f"s.copy{f}, s.has{f} = captureValue(s.copy{f}, {ctx.h[src]})"
        by_flags.setdefault(test, []).append(line)
    for test, lines in by_flags.items():
        out += emit_if([Guard(LITERAL, test)] if test else [], lines)
    return out


def _request(
    prog: Program, ctx: Ctx, rules: list[dict[str, Any]], labels: list[str]
) -> tuple[list[str], bool]:
    """onRequestHeaders' body, and whether it always returns before its end."""
    out: list[str] = []
    declared: set[str] = set()
    for i, rule in enumerate(rules):
        guards = request_guards(
            rule.get("when"), f"request[{i}]", ctx.h, prog.regex, prog.block, nets=prog.source_nets
        )
        _rule(ctx, out, declared, guards, rule, labels[i], "request", i)
        if "respond" in rule and not guards:  # it always replies: nothing after it runs
            if i + 1 < len(rules):
                out.append(f"\t// request[{i + 1}:] never run: request[{i}] always replies.")
            return out, True
    return out, False


def _response(
    ctx: Ctx, rules: list[dict[str, Any]], labels: list[str], rule_when: dict[int, str]
) -> list[str]:
    out: list[str] = []
    if ctx.local_reply:
        out += [
            "\tif s.localReply {",
            "\t\treturn actionContinue // a request rule replied: the reply goes out as it declared",
            "\t}",
        ]
    declared: set[str] = set()
    for i, rule in enumerate(rules):
        guards = [Guard(0, f"s.when[{rule_when[i]}]")] if i in rule_when else []
        if (status := status_guard(rule.get("when"))) is not None:
            guards.append(status)
        _rule(ctx, out, declared, guards, rule, labels[i], "response", i)
    return out


def _rule(ctx: Ctx, out: list[str], declared: set[str], guards: list[Guard],
          rule: dict[str, Any], label: str, phase: str, i: int) -> None:  # fmt: skip
    """One rule's lines onto out: apart from the one before it, the variables its guards need
    (once per function), a comment naming it, then its guarded code."""
    if out:
        out.append("")
    _declare(_needs(guards), declared, out)
    out.append(f"\t// {comment(label + ': ' + describe_op(rule) + describe(rule.get('when')))}")
    out += emit_if(*_with_op(ctx, guards, rule, phase, i))
