"""The generated tests' data: every scenario with the reference model's expectations, as Go.

The native test (scenarios_test.go) expects Envoy's semantics (model.run, concat=False) in
Envoy's header order; sdktest/ runs the built module in the SDK's proxytest and expects its
semantics (concat=True), sorted by name. Odd traffic every plugin must survive is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wasmgen.backends.compiled.goident import gostr, wrapped
from wasmgen.backends.templating import gochecks
from wasmgen.envoy_headers import INLINE_REQUEST_HEADERS, INLINE_RESPONSE_HEADERS
from wasmgen.plan import Plan
from wasmgen.semantics import Scenario, model
from wasmgen.semantics.scenarios import Check

Headers = list[tuple[str, str]]
BIG = "v" * 20000  # past the plugin's 44 KiB arena once a few headers carry it
ENVOY_ONLY = "(envoy only)"  # proxytest's semantics differ: sdktest leaves these out


def goval(value: str) -> str:
    """A Go expression for value; the odd traffic's huge values use the test's big."""
    if BIG not in value:
        return gostr(value)
    parts = value.split(BIG)
    out: list[str] = []
    for i, part in enumerate(parts):
        if part:
            out.append(gostr(part))
        if i < len(parts) - 1:
            out.append("big")
    return " + ".join(out)


def goheaders(headers: Sequence[tuple[str, str]] | None) -> str:
    """A [][2]string literal (nil for None)."""
    if headers is None:
        return "nil"
    return "[][2]string{" + ", ".join(f"{{{goval(k)}, {goval(v)}}}" for k, v in headers) + "}"


def envoy_order(headers: Sequence[tuple[str, str]], side: model.Side) -> Headers:
    """headers as Envoy's codec hands them to filters: inline repeats joined, a request's host
    as :authority, pseudo-headers first."""
    joined = model.envoy_headers(headers, side)
    return [kv for kv in joined if kv[0].startswith(":")] + [
        kv for kv in joined if not kv[0].startswith(":")
    ]


def _touched(config: dict[str, Any]) -> list[str]:
    names: set[str] = set()
    for phase in ("request", "response"):
        for rule in config.get(phase, []):
            for op in ("set", "append", "addIfAbsent", "rename", "copyFromRequest"):
                for k, v in rule.get(op, {}).items():
                    names.add(k)
                    if op in ("rename", "copyFromRequest"):
                        names.add(v)
            respond = rule.get("respond") or {}
            names.update(respond.get("copyFromRequest", {}))
            for n in rule.get("remove", []):
                names.add(n.rstrip("*") + ("odd" if n.endswith("*") else ""))
            for c in (rule.get("when") or {}).get("headers", []):
                names.add(c["name"])
    return sorted(names)


ODD_NAMES = 32  # odd traffic carries at most this many named headers: generation stays linear


def odd_traffic(config: dict[str, Any]) -> list[tuple[str, Headers, Headers]]:
    """Traffic every plugin must survive: the headers the rules name (the first ODD_NAMES of
    them), made odd."""
    named = _touched(config)[:ODD_NAMES]
    dup: Headers = [(":authority", "example.com"), (":path", "/api/v1/admin"), (":method", "GET")]
    for n in named:
        dup += [(n, "first"), ("other", "o"), (n, "second")]
    return [
        ("odd: no pseudo-headers at all", [(n, "1") for n in named], [(n, "1") for n in named]),
        (
            "odd: upper-case host with port, query and fragment",
            [(":authority", "WWW.Docs.Example.COM:8443"), (":path", "/api/v1/x?q=/admin#frag"),
             (":method", "HEAD"), (":scheme", "https"), *((n, "0") for n in named)],
            [(":status", "0503"), *((n, "0") for n in named)],
        ),
        (
            f"odd: empty values {ENVOY_ONLY}",
            [(":authority", "docs.example.com"), (":path", "/api/v1/"), (":method", "GET"),
             *((n, "") for n in named)],
            [(":status", "500"), *((n, "") for n in named)],
        ),
        (
            "odd: huge values and a bogus status",
            [(":authority", "[::1]:80"), (":path", "/admin" + BIG), (":method", "DELETE"),
             *((n, BIG) for n in named)],
            [(":status", "5000000000000000000000000000"), *((n, BIG) for n in named)],
        ),
        (
            "odd: status not a number",
            [(":authority", "h"), (":path", ""), (":method", "get"), *((n, "\t x \t") for n in named)],
            [(":status", "5xx")],
        ),
        (f"odd: every header twice {ENVOY_ONLY}", dup, [(":status", "500"), *dup[3:]]),
    ]  # fmt: skip


def _reply_body(config: dict[str, Any], outcome: model.Outcome) -> str:
    fired = [i for phase, i in outcome.fired if phase == "request"]
    rule = config["request"][max(fired)]
    return str(rule["respond"].get("body", ""))


def _gochecks(checks: Sequence[Check]) -> str:
    return gochecks(checks, goval)


def _requests_only(config: dict[str, Any]) -> dict[str, Any]:
    return {"request": config["request"]} if config.get("request") else {}


def native_scenarios(plan: Plan, scenarios: Sequence[Scenario]) -> list[str]:
    """scenarios_test.go's entries: Envoy's semantics, in Envoy's order. A rule's own traffic
    carries checks of the headers it touches (computed when the traffic was derived, over the
    rules that can affect them), so this stays linear in the number of rules."""
    out: list[str] = []
    odd = [(name, req, resp, None) for name, req, resp in odd_traffic(plan.config)]
    derived = [(s.name, list(s.request), list(s.response), s) for s in scenarios]
    for name, raw_req, raw_resp, scenario in derived + odd:
        req, resp = envoy_order(raw_req, "request"), envoy_order(raw_resp, "response")
        partial = scenario is not None and scenario.want_request is None
        if partial and not scenario.want_local:  # type: ignore[union-attr]
            checks = _gochecks(scenario.envoy_checks)  # type: ignore[union-attr]
            out.append(
                f"{{{gostr(name)}, {goheaders(req)}, {goheaders(resp)},\n"
                f'\t\tnil, nil, 0, nil, "", {checks}}},'
            )
            continue
        # Full expectations: the baseline, the spec's cases and odd traffic (a fixed number),
        # and local replies, which only request rules decide.
        rules = _requests_only(plan.config) if partial else plan.config
        env = model.run(rules, req, resp)
        local = env.local_status or 0
        headers = goheaders(env.local_headers) if local else "nil"
        body = gostr(_reply_body(plan.config, env)) if local else '""'
        # A spec case's own expectations too: patterns are checked nowhere else in Go.
        checks = _gochecks(scenario.envoy_checks) if scenario is not None else "nil"
        out.append(
            f"{{{gostr(name)}, {goheaders(req)}, {goheaders(resp)},\n"
            f"\t\t{goheaders(env.request)}, {goheaders(env.response)}, {local}, {headers}, {body}, {checks}}},"
        )
    return out


def _by_name(headers: Headers | None) -> Headers | None:
    return None if headers is None else sorted(headers, key=lambda kv: kv[0])


def sdk_scenarios(plan: Plan, scenarios: Sequence[Scenario]) -> list[str]:
    """sdktest/scenarios_test.go's entries: proxytest's semantics, sorted by name."""
    out: list[str] = []
    odd = [(name, req, resp, None) for name, req, resp in odd_traffic(plan.config)]
    derived = [(s.name, list(s.request), list(s.response), s) for s in scenarios]
    for name, req, resp, scenario in derived + odd:
        if ENVOY_ONLY in name or any(v != v.strip(" \t") for _, v in req + resp):
            continue  # proxytest trims the values it returns
        if scenario is not None:  # the traffic's own expectations (proxytest semantics)
            wants = f"{goheaders(scenario.want_request)}, {goheaders(scenario.want_response)}"
            local = scenario.want_local or 0
            checks = _gochecks(scenario.checks)
        else:
            pt = model.run(plan.config, list(req), list(resp), concat=True)
            wants = f"{goheaders(_by_name(pt.request))}, {goheaders(_by_name(pt.response))}"
            local, checks = pt.local_status or 0, "nil"
        out.append(
            f"{{{gostr(name)}, {goheaders(req)}, {goheaders(resp)},\n"
            f"\t\t{wants}, {local}, {checks}}},"
        )
    return out


def inline_lists() -> dict[str, list[str]]:
    """Envoy's inline header names per map, as wrapped Go list lines."""
    return {
        "inline_request": wrapped([gostr(n) for n in sorted(INLINE_REQUEST_HEADERS)], ""),
        "inline_response": wrapped([gostr(n) for n in sorted(INLINE_RESPONSE_HEADERS)], ""),
    }
