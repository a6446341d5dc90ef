"""Derive test traffic for every rule of a configuration, with expectations from the model."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import wasmgen.semantics.model as model
from wasmgen.errors import Problem
from wasmgen.plan import Plan
from wasmgen.records import record
from wasmgen.semantics.model import first
from wasmgen.semantics.relevance import PHASES, RuleIndex, Rules, touched_names
from wasmgen.semantics.request import cookie_value, query_param, strip_query
from wasmgen.semantics.sampler import sample_regex
from wasmgen.semantics.values import refs
from wasmgen.spec.conditions import check_cookie_value, check_query_value
from wasmgen.spec.expected import Expected
from wasmgen.spec.models import TestCase
from wasmgen.spec.names import compile_regex

Headers = model.Headers
BASE_REQUEST: Headers = [
    (":authority", "example.com"),
    (":method", "GET"),
    (":path", "/"),
    (":scheme", "http"),
]
BASE_RESPONSE: Headers = [(":status", "200"), ("content-type", "text/plain")]


# (request|response, header name, value, a spec case's pattern, or None: absent)
Check = tuple[str, str, Expected]


@record
class Scenario:
    """One exchange and what the plugin must leave, computed by the reference model.

    The baseline and the spec's own cases carry every header (want_*, in the semantics of the
    SDK's test host, proxytest); a rule's derived traffic carries checks of the headers that
    rule touches, computed over the rules that can affect them only, so deriving stays linear
    in the number of rules. want_* are None when not given (and want_response also for a local
    reply).
    """

    name: str
    request: Headers
    response: Headers
    want_request: Headers | None
    want_response: Headers | None
    want_local: int | None
    checks: tuple[Check, ...] = ()  # the checks proxytest agrees with Envoy on
    envoy_checks: tuple[Check, ...] = ()  # every check, in Envoy's semantics


def _string_for(match: dict[str, str], base: str) -> str | None:
    ((kind, pattern),) = match.items()
    if kind == "exact":
        return pattern
    if kind == "prefix":
        return pattern + base.lstrip("/")
    if kind == "suffix":
        return base + pattern
    sample = sample_regex(pattern)
    if sample is None or not base.startswith("/") or sample.startswith("/"):
        return sample
    # A path on the wire starts with "/": find one the pattern still matches.
    for candidate in ("/" + sample, "/" + base.lstrip("/") + "/" + sample):
        if compile_regex(pattern).search(candidate):
            return candidate
    return None


def _status_code(spec: str) -> int:
    return int(spec[0]) * 100 if spec.endswith("xx") else int(spec.partition("-")[0])


def _set(headers: Headers, name: str, value: str) -> None:
    model.remove_all(headers, name)
    headers.append((name, value))


# Client addresses tried, in order, to break a source condition.
OUTSIDE = ("192.0.2.1", "10.0.0.1", "2001:db8::1", "127.0.0.1", "::1")


def _satisfy(when: dict[str, Any], req: Headers, resp: Headers) -> bool:
    """Shape req/resp so that every condition holds; False when that can't be derived."""
    if "path" in when:
        path = _string_for(when["path"], "/wasmgen")
        if path is None:
            return False
        _set(req, ":path", path)
    if "method" in when:
        _set(req, ":method", when["method"][0])
    if "host" in when:
        host = _string_for(
            when["host"], "example.com" if "suffix" in when["host"] else "wasmgen.example"
        )
        if host is None:
            return False
        _set(req, ":authority", host)
    for cond in when.get("headers", []):
        if "absent" in cond:
            model.remove_all(req, cond["name"])
            continue
        if "equals" in cond:
            value: str | None = cond["equals"]
        else:
            value = sample_regex(cond["matches"]) if "matches" in cond else "1"
        if value is None:
            return False
        _set(req, cond["name"], value)
    query = _pairs(when.get("query", []), lambda v: check_query_value(v) and "&" not in v)
    if query is None:
        return False
    if query:
        path = model.first(req, ":path") or "/"
        joined = "&".join(f"{k}={v}" for k, v in query)
        _set(req, ":path", path + ("&" if "?" in path else "?") + joined)
    cookies = _pairs(when.get("cookie", []), check_cookie_value)
    if cookies is None:
        return False
    if "source" in when:  # Envoy takes the client's address from x-forwarded-for
        net = ipaddress.ip_network(when["source"][0])
        _set(req, "x-forwarded-for", str(net[1] if net.num_addresses > 1 else net[0]))
    if cookies:
        before = [model.first(req, "cookie") or ""] if model.first(req, "cookie") else []
        _set(req, "cookie", "; ".join([*before, *(f"{k}={v}" for k, v in cookies)]))
    if "status" in when:
        _set(resp, ":status", str(_status_code(when["status"][0])))
    if "not" in when:
        _violate(when["not"], req, resp)
    return "any" not in when or _satisfy(when["any"][0], req, resp)


def _pairs(
    conds: list[dict[str, Any]], fits: Callable[[str], object]
) -> list[tuple[str, str]] | None:
    """name=value pairs that satisfy query or cookie conditions (absent ones send nothing);
    None when a regex's sample cannot be sent there."""
    out: list[tuple[str, str]] = []
    for cond in conds:
        if "absent" in cond:
            continue
        value = cond.get("equals", "1" if "present" in cond else None)
        if "matches" in cond:
            value = sample_regex(cond["matches"])
            try:
                value = value if value is not None and fits(value) else None
            except ValueError:
                value = None
        if value is None:
            return None
        out.append((cond["name"], value))
    return out


def _violate(when: dict[str, Any], req: Headers, resp: Headers) -> None:
    """Break the first condition so the rule must not fire."""
    key = next(iter(when))
    if key == "path":
        _set(req, ":path", "/~wasmgen-unmatched")
    elif key == "method":
        _set(req, ":method", "PATCH" if "PATCH" not in when["method"] else "OPTIONS")
    elif key == "host":
        _set(req, ":authority", "unmatched.invalid")
    elif key == "headers":
        cond = when["headers"][0]
        if "absent" in cond:
            _set(req, cond["name"], "1")
        else:
            model.remove_all(req, cond["name"])
    elif key == "query":
        cond = when["query"][0]
        path = strip_query(model.first(req, ":path") or "/")
        _set(req, ":path", path + (f"?{cond['name']}=1" if "absent" in cond else ""))
    elif key == "cookie":
        cond = when["cookie"][0]
        if "absent" in cond:
            _set(req, "cookie", f"{cond['name']}=1")
        else:
            model.remove_all(req, "cookie")
    elif key == "source":
        now = model.source_ip(req)  # keep the address other conditions chose, if it is outside
        tried = (now, *OUTSIDE) if "x-forwarded-for" in dict(req) else OUTSIDE
        outside = [a for a in tried if not model.source_in(when["source"], a)]
        _set(req, "x-forwarded-for", outside[0] if outside else "127.0.0.1")
    elif key == "not":
        _satisfy(when["not"], req, resp)
    elif key == "any":
        for branch in when["any"]:
            _violate(branch, req, resp)
    elif key == "status":
        codes = [
            c
            for c in (200, 404, 503, 302)
            if not any(model.status_in(s, c) for s in when["status"])
        ]
        _set(resp, ":status", str(codes[0] if codes else 100))


def _seed(rule: dict[str, Any], req: Headers, resp: Headers, phase: str) -> None:
    """Put in the headers a rule acts on, so its effect is visible."""
    target = req if phase == "request" else resp
    for op in ("remove",):
        for name in rule.get(op, []):
            _set(target, name.rstrip("*") + ("wasmgen" if name.endswith("*") else ""), "seeded")
    for src in rule.get("rename", {}):
        _set(target, src, "renamed-value")
    for src in rule.get("copyFromRequest", {}):
        _set(req, src, "copied-value")
    for name in rule.get("set", {}):
        _set(target, name, "old-value")
    _seed_sources(rule, req, resp)
    if "cookieFlags" in rule:  # a cookie it hardens, and one with attributes to keep
        name = rule["cookieFlags"].get("cookies", ["wasmgen"])[0]
        target.append(("set-cookie", f"{name}=1"))
        target.append(("set-cookie", f"{name}=2; Path=/; secure"))
    if "setQuery" in rule or "removeQuery" in rule:  # a pair it edits, next to one it keeps
        name = (
            next(iter(rule.get("setQuery", {}))) if "setQuery" in rule else rule["removeQuery"][0]
        )
        base = strip_query(first(req, ":path") or "/")
        _set(req, ":path", f"{base}?{name.removesuffix('*') or name}=old&wasmgen-kept=1")
    for name, how in rule.get("rewrite", {}).items():  # a value the regex matches
        sample = sample_regex(how["regex"])
        _set(target, name, "wasmgen" if sample is None else sample)
    for name in rule.get("dedupe", {}):  # repeated lines, one of them a list with a repeat
        model.remove_all(target, name)
        target += [(name, "https://a.example, https://b.example"), (name, "https://a.example")]
    if "removeCookie" in rule:  # a cookie it removes, next to one it keeps
        name = rule["removeCookie"][0]
        if phase == "request":
            _set(req, "cookie", f"{name}=1; wasmgen-kept=2")
        else:
            target += [("set-cookie", f"{name}=1; Path=/"), ("set-cookie", "wasmgen-kept=2")]


def _seed_sources(rule: dict[str, Any], req: Headers, resp: Headers) -> None:
    """Give the rule's values (${...}) their sources, so what they write is visible."""
    for ref in refs(rule):
        if ref.kind == "request.header" and first(req, ref.arg) is None:
            _set(req, ref.arg, "from-request")
        elif ref.kind == "response.header" and first(resp, ref.arg) is None:
            _set(resp, ref.arg, "from-response")
        elif ref.kind == "request.id" and not first(req, "x-request-id"):
            _set(req, "x-request-id", "wasmgen-request-id")
        elif ref.kind == "request.query":
            path = first(req, ":path") or "/"
            if query_param(path, ref.arg) is None:
                joiner = "&" if "?" in path else "?"
                _set(req, ":path", f"{path.partition('#')[0]}{joiner}{ref.arg}=from-query")
        elif ref.kind == "request.cookie" and cookie_value(first(req, "cookie"), ref.arg) is None:
            jar = first(req, "cookie")
            _set(req, "cookie", (f"{jar}; " if jar else "") + f"{ref.arg}=from-cookie")


def _by_name(h: Headers) -> Headers:
    return sorted(h, key=lambda kv: kv[0])


def _value(outcome: model.Outcome, mapname: str, name: str) -> str | None:
    headers = outcome.request if mapname == "request" else (outcome.response or [])
    return model.first(headers, name)


def _scenario(
    name: str,
    rules: Rules,
    req: Headers,
    resp: Headers,
    checks: tuple[Check, ...] = (),
    full: bool = True,
) -> tuple[Scenario, set[tuple[str, int]]]:
    proxytest = model.run(rules.config, req, resp, concat=True)  # the SDK's test host
    envoy = model.run(rules.config, req, resp)
    if not full:  # the checks are every header the rule under test touches, as Envoy leaves it
        checks = tuple((m, h, _value(envoy, m, h)) for m, h, _ in checks)
    # A check proxytest would see differently (an append onto an existing value) is left to
    # `wasmgen test`, which runs an Envoy-faithful host.
    agreed = tuple(c for c in checks if _value(proxytest, c[0], c[1]) == _value(envoy, c[0], c[1]))
    scenario = Scenario(
        name=name,
        request=req,
        response=resp,
        want_request=_by_name(proxytest.request) if full else None,
        want_response=_by_name(proxytest.response)
        if full and proxytest.response is not None
        else None,
        want_local=envoy.local_status,
        checks=agreed,
        envoy_checks=checks,
    )
    return scenario, {(phase, rules.index[phase][i]) for phase, i in envoy.fired}


def generated_request_id(case: TestCase) -> str:
    """The x-request-id Envoy's connection manager would add to a case's request that has
    none: a version-4 UUID, as Envoy's, but fixed per case so generated tests stay the same."""
    named = uuid.uuid5(uuid.NAMESPACE_URL, "wasmgen-test-case:" + case.name)
    return str(uuid.UUID(bytes=named.bytes, version=4))


def test_case_headers(case: TestCase, request_id: bool = True) -> tuple[Headers, Headers]:
    """The request and response header lists a spec test case describes; without an
    x-request-id, or with an empty one, the request gets the one Envoy would generate, where
    the empty one stood (request_id=False: not, for traffic through real Envoy or a host
    modelling its surroundings, which add their own)."""
    req: Headers = [
        (":authority", case.request.host),
        (":method", case.request.method),
        (":path", case.request.path),
        (":scheme", "http"),
    ]
    req += [(k.lower(), v) for k, v in case.request.headers.items()]
    if request_id and not first(req, "x-request-id"):  # absent or empty: Envoy sets its own
        at = next((i for i, (k, _) in enumerate(req) if k == "x-request-id"), len(req))
        req[at : at + 1] = [("x-request-id", generated_request_id(case))]
    resp: Headers = [(":status", str(case.response.status))]
    resp += [(k.lower(), v) for k, v in case.response.headers.items()]
    return req, resp


@record
class Derived:
    """Test traffic for a rule set, and the rules it could not exercise (as warnings)."""

    scenarios: tuple[Scenario, ...]
    warnings: tuple[Problem, ...]


def derive(config: dict[str, Any], tests: list[TestCase]) -> Derived:
    """Scenarios that together fire every rule, plus the spec's own test cases; never raises
    for a valid spec: a rule no traffic fires is reported in the warnings instead."""
    scenarios: list[Scenario] = []
    fired: set[tuple[str, int]] = set()
    everything = Rules.all(config)
    sc, f = _scenario("baseline", everything, list(BASE_REQUEST), list(BASE_RESPONSE))
    scenarios.append(sc)
    fired |= f
    index = RuleIndex(config)
    for phase in PHASES:
        for i, rule in enumerate(config.get(phase, [])):
            req, resp = list(BASE_REQUEST), list(BASE_RESPONSE)
            _seed(rule, req, resp, phase)
            when = rule.get("when") or {}
            if not _satisfy(when, req, resp):
                continue
            _seed_sources(rule, req, resp)  # again: a path the conditions chose has no query
            touched = tuple((phase, h, None) for h in touched_names(rule, phase))
            subset = index.relevant(phase, i, [h for _, h, _ in touched])
            sc, f = _scenario(f"{phase}[{i}] applies", subset, req, resp, touched, full=False)
            scenarios.append(sc)
            fired |= f
            if when:
                req2, resp2 = list(req), list(resp)
                _violate(when, req2, resp2)
                sc, _ = _scenario(
                    f"{phase}[{i}] skipped when its condition fails",
                    subset,
                    req2,
                    resp2,
                    touched,
                    full=False,
                )
                scenarios.append(sc)
    for case in tests:
        req, resp = test_case_headers(case)
        checks: list[Check] = []
        for mapname, expected in (
            ("request", case.expect.request_headers),
            ("response", case.expect.response_headers),
        ):
            for hname, value in (expected or {}).items():
                checks.append((mapname, hname.lower(), value))
        sc, f = _scenario(f"test: {case.name}", everything, req, resp, tuple(checks))
        scenarios.append(sc)
        fired |= f
    missing = [
        f"{phase}[{i}]"
        for phase in PHASES
        for i in range(len(config.get(phase, [])))
        if (phase, i) not in fired
    ]
    warnings = [
        Problem(
            m,
            "no derived or declared test traffic fires this rule (its pattern is beyond the "
            "traffic sampler, or earlier rules shadow it); it is generated but untested: add a "
            "case under tests: that triggers it",
        )
        for m in missing
    ]
    return Derived(tuple(scenarios), tuple(warnings))


def derive_for(plan: Plan) -> Derived:
    """The scenarios and warnings of a plan's rules and declared tests."""
    return derive(plan.config, plan.spec.tests)
