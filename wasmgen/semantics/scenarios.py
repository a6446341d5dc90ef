"""Derive test traffic for every rule of a configuration, with expectations from the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wasmgen.errors import Problem
from wasmgen.plan import Plan
from wasmgen.semantics import model
from wasmgen.semantics.sampler import sample_regex
from wasmgen.spec.models import TestCase

Headers = model.Headers
BASE_REQUEST: Headers = [
    (":authority", "example.com"),
    (":method", "GET"),
    (":path", "/"),
    (":scheme", "http"),
]
BASE_RESPONSE: Headers = [(":status", "200"), ("content-type", "text/plain")]


@dataclass(frozen=True)
class Scenario:
    """One exchange and the headers the plugin must leave (computed by wasmgen.model)."""

    name: str
    request: Headers
    response: Headers
    want_request: Headers
    want_response: Headers | None  # None when a local response replaced the upstream's
    want_local: int | None
    checks: tuple[
        tuple[str, str, str | None], ...
    ] = ()  # user expectations: (map, name, value|None)


def _string_for(match: dict[str, str], base: str) -> str | None:
    ((kind, pattern),) = match.items()
    if kind == "exact":
        return pattern
    if kind == "prefix":
        return pattern + base
    if kind == "suffix":
        return base + pattern
    return sample_regex(pattern)


def _status_code(spec: str) -> int:
    return int(spec[0]) * 100 if spec.endswith("xx") else int(spec.partition("-")[0])


def _set(headers: Headers, name: str, value: str) -> None:
    model.remove_all(headers, name)
    headers.append((name, value))


def _satisfy(when: dict[str, Any], req: Headers, resp: Headers) -> bool:
    """Shape req/resp so that every condition holds; False when that can't be derived."""
    if "path" in when:
        path = _string_for(when["path"], "wasmgen")
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
    if "status" in when:
        _set(resp, ":status", str(_status_code(when["status"][0])))
    return True


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


def _scenario(
    name: str, config: dict[str, Any], req: Headers, resp: Headers, checks: tuple[Any, ...] = ()
) -> tuple[Scenario, set[tuple[str, int]]]:
    out = model.run(config, req, resp, concat=True)  # the Go test runs on proxytest
    envoy = model.run(config, req, resp)
    # Keep a user's expectation only where proxytest and Envoy agree on the header's first value;
    # `wasmgen test` checks all of them in an Envoy-faithful host.
    kept = []
    for mapname, hname, value in checks:
        a = out.request if mapname == "request" else (out.response or [])
        b = envoy.request if mapname == "request" else (envoy.response or [])
        if model.first(a, hname) == model.first(b, hname):
            kept.append((mapname, hname, value))
    checks = tuple(kept)

    def by_name(h: Headers) -> Headers:
        return sorted(h, key=lambda kv: kv[0])

    scenario = Scenario(
        name=name,
        request=req,
        response=resp,
        want_request=by_name(out.request),
        want_response=by_name(out.response) if out.response is not None else None,
        want_local=out.local_status,
        checks=checks,
    )
    return scenario, out.fired


def test_case_headers(case: TestCase) -> tuple[Headers, Headers]:
    """The request and response header lists a spec test case describes."""
    req: Headers = [
        (":authority", case.request.host),
        (":method", case.request.method),
        (":path", case.request.path),
        (":scheme", "http"),
    ]
    req += [(k.lower(), v) for k, v in case.request.headers.items()]
    resp: Headers = [(":status", str(case.response.status))]
    resp += [(k.lower(), v) for k, v in case.response.headers.items()]
    return req, resp


@dataclass(frozen=True)
class Derived:
    """Test traffic for a rule set, and the rules it could not exercise (as warnings)."""

    scenarios: tuple[Scenario, ...]
    warnings: tuple[Problem, ...]


def derive(config: dict[str, Any], tests: list[TestCase]) -> Derived:
    """Scenarios that together fire every rule, plus the spec's own test cases; never raises
    for a valid spec: a rule no traffic fires is reported in the warnings instead."""
    scenarios: list[Scenario] = []
    fired: set[tuple[str, int]] = set()
    sc, f = _scenario("baseline", config, list(BASE_REQUEST), list(BASE_RESPONSE))
    scenarios.append(sc)
    fired |= f
    unreachable: list[str] = []
    for phase in ("request", "response"):
        for i, rule in enumerate(config.get(phase, [])):
            req, resp = list(BASE_REQUEST), list(BASE_RESPONSE)
            _seed(rule, req, resp, phase)
            when = rule.get("when") or {}
            if not _satisfy(when, req, resp):
                unreachable.append(f"{phase}[{i}]")
                continue
            sc, f = _scenario(f"{phase}[{i}] applies", config, req, resp)
            scenarios.append(sc)
            fired |= f
            if when:
                req2, resp2 = list(req), list(resp)
                _violate(when, req2, resp2)
                sc, _ = _scenario(
                    f"{phase}[{i}] skipped when its condition fails", config, req2, resp2
                )
                scenarios.append(sc)
    for case in tests:
        req, resp = test_case_headers(case)
        checks: list[tuple[str, str, str | None]] = []
        for mapname, expected in (
            ("request", case.expect.request_headers),
            ("response", case.expect.response_headers),
        ):
            for hname, value in (expected or {}).items():
                checks.append((mapname, hname.lower(), value))
        sc, f = _scenario(f"test: {case.name}", config, req, resp, tuple(checks))
        scenarios.append(sc)
        fired |= f
    missing = [
        f"{phase}[{i}]"
        for phase in ("request", "response")
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
