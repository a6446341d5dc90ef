"""Property-based differential test: random rule sets and random traffic through the reference
model, the dynamic plugin and the compiled plugin, which must leave the same headers.

Both plugins are built with the real Go toolchain and run in the embedded host (Envoy's header
map semantics). The number of rule sets is bounded for CI (HYPOTHESIS_PROFILE=thorough runs more).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from wasmgen import pipeline
from wasmgen.errors import SpecError
from wasmgen.host import ProxyWasmHost
from wasmgen.pipeline import Built
from wasmgen.semantics import model
from wasmgen.spec import validate

pytestmark = pytest.mark.slow
QUIET = Console(stderr=True, quiet=True)
NAMES = ["x-a", "x-b", "x-c", "cache-control", "vary", "x-trace-tags", "x-forwarded-for"]
VALUES = ["1", "v", "a,b", "no-store", "", 'b, "x,y" ,b']
PATHS = ["/", "/api/v1/x", "/api/v2/y?q=1", "/static/a.css", "/admin", "/a?preview=1&q",
         "/a?q=&preview=0", "/?preview=10#q=1", "/a?x=1&&preview", "/a?preview=1&preview=2&x",
         "/a#?q=1", "/a?prefix=1&x=%20"]  # fmt: skip
# Cookie headers, for cookie conditions and removeCookie: odd spacing, quotes, empty pieces.
COOKIES = ["beta=1", "a=1; beta=", ' beta = "on" ;x=2', "betax=1; beta", "x=1;beta=on",
           "session=1; _ga=x", "_ga=1", "session=1;;id=2 ", "noeq; _ga=2"]  # fmt: skip
# Query and cookie conditions: (name, test, value), over names the traffic above carries.
NAMED = [("preview", "equals", "1"), ("q", "present", True), ("preview", "absent", True),
         ("beta", "matches", "^o"), ("beta", "equals", ""), ("q", "equals", "")]  # fmt: skip
# Set-Cookie lines: plain, attributes in odd spellings and spacing, no "=" (no cookie), empty pieces.
COOKIE_LINES = ["session=1", "session=2; Path=/; secure", "id=x;HttpOnly; samesite=strict",
                "noeq; Secure", "id=y;  SameSite=None;;Secure=1", "session=3;\tHTTPONLY "]  # fmt: skip
COOKIE_NAMES = ["session", "id", "_ga", "beta"]
QUERY_NAMES = ["preview", "q", "x"]
# Rewrites: anchored, every match, named groups and $$, empty matches (Go's ReplaceAll rules).
REWRITES = [("^a,(.*)$", "$1,a"), ("[a-z]", "<$0>"), ("(?P<w>[a-z]+)", "${w}$$"), ("x*", "-"),
            ("b?", "[$0]")]  # fmt: skip
# Source conditions, and the x-forwarded-for values Envoy takes the client's address from.
# Value expressions: anywhere, in response rules only, with a when.path.regex (its one group).
EXPRESSIONS = ["${request.header.x-a}", "id ${request.id}", "${request.path}?${request.query.q}",
               "${request.method} ${request.host}", "${source.address}", "$$${request.header.x-b}$$",
               "${time.http} (${time.unix})", "${request.cookie.beta}|${request.cookie._ga}"]  # fmt: skip
RESPONSE_EXPRESSIONS = ["${response.status}", "${response.header.x-a},${request.header.x-a}"]
PATH_EXPRESSIONS = ["v${path.1}", "${path.0}"]
SOURCES = [["10.0.0.0/8"], ["10.9.0.0/16", "2001:db8::/32"], ["127.0.0.1"], ["0.0.0.0/0"]]
XFF = ["10.1.2.3", "10.9.0.1", "192.0.2.1, 10.9.9.9", "2001:db8::7", "::ffff:10.1.2.3", "bogus"]
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))  # fmt: skip
settings.register_profile("thorough", max_examples=60, deadline=None,
                          suppress_health_check=list(HealthCheck))  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

names = st.sampled_from(NAMES)
pairs = st.dictionaries(names, st.sampled_from([v for v in VALUES if v]), min_size=1, max_size=3)


@st.composite
def conditions(draw: st.DrawFn, response: bool, depth: int = 0) -> dict[str, Any]:
    """A when: block; blocks nested under not: and any: (two levels at most) have no status."""
    when: dict[str, Any] = {}
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["exact", "prefix", "suffix", "regex"]))
        patterns = {
            "exact": "/admin",
            "prefix": "/api/",
            "suffix": ".css",
            "regex": "^/api/v([0-9])/",
        }
        when["path"] = {kind: patterns[kind]}
    if draw(st.booleans()):
        when["method"] = draw(
            st.lists(st.sampled_from(["GET", "POST", "HEAD"]), min_size=1, max_size=2, unique=True)
        )
    if draw(st.booleans()):
        name = draw(names)
        test = draw(st.sampled_from(["present", "absent", "equals", "matches"]))
        value: Any = {"present": True, "absent": True, "equals": "1", "matches": "^[a-z]"}[test]
        when["headers"] = [{"name": name, test: value}]
    for kind in ("query", "cookie"):
        if draw(st.integers(0, 3)) == 0:
            name, test, value = draw(st.sampled_from(NAMED))
            when[kind] = [{"name": name, test: value}]
    if draw(st.integers(0, 3)) == 0:
        when["source"] = draw(st.sampled_from(SOURCES))
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        inner = draw(conditions(False, depth + 1))
        if inner:
            when["not"] = inner
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        branches = draw(st.lists(conditions(False, depth + 1), min_size=1, max_size=2))
        if all(branches):
            when["any"] = branches
    if response and draw(st.booleans()):
        when["status"] = draw(
            st.lists(
                st.sampled_from(["2xx", "404", "500-599", "302"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
    return when


@st.composite
def cookie_flags(draw: st.DrawFn) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for key in ("secure", "httpOnly"):
        if (value := draw(st.sampled_from([None, True, False]))) is not None:
            flags[key] = value
    if (same_site := draw(st.sampled_from([None, "Strict", "Lax", "None"]))) is not None:
        flags["sameSite"] = same_site
        if same_site == "None":
            flags["secure"] = True  # browsers reject SameSite=None without Secure: refused
    if (cookies := draw(st.sampled_from([None, ["session"], ["id", "session"]]))) is not None:
        flags["cookies"] = cookies
    return flags if set(flags) - {"cookies"} else {**flags, "secure": True}


@st.composite
def rules(draw: st.DrawFn, phase: str) -> dict[str, Any]:
    ops = ["set", "append", "addIfAbsent", "remove", "rename"]
    ops += ["copyFromRequest", "cookieFlags"] if phase == "response" else ["respond"]
    ops += ["removeCookie", "dedupe", "rewrite"] + (
        ["setQuery", "removeQuery"] if phase == "request" else []
    )
    op = draw(st.sampled_from(ops))
    rule: dict[str, Any]
    if op == "rewrite":
        regex, template = draw(st.sampled_from(REWRITES))
        rule = {op: {draw(names): {"regex": regex, "with": template}}}
    elif op == "setQuery":
        values = st.sampled_from(["1", "", "a b&c=d", "en"])
        rule = {op: draw(st.dictionaries(st.sampled_from(QUERY_NAMES), values, min_size=1, max_size=2))}  # fmt: skip
    elif op == "removeQuery":
        rule = {op: draw(st.lists(st.sampled_from([*QUERY_NAMES, "pre*"]), min_size=1, max_size=2, unique=True))}  # fmt: skip
    elif op == "dedupe":
        modes = st.sampled_from(["first", "last", "unique"])
        rule = {op: draw(st.dictionaries(names, modes, min_size=1, max_size=2))}
    elif op == "removeCookie":
        rule = {op: draw(st.lists(st.sampled_from(COOKIE_NAMES), min_size=1, max_size=2, unique=True))}  # fmt: skip
    elif op == "cookieFlags":
        rule = {"cookieFlags": draw(cookie_flags())}
    elif op in ("set", "append", "addIfAbsent"):
        rule = {op: draw(pairs)}
    elif op == "remove":
        rule = {
            "remove": draw(
                st.lists(st.sampled_from([*NAMES, "x-*"]), min_size=1, max_size=2, unique=True)
            )
        }
    elif op in ("rename", "copyFromRequest"):
        src, dst = draw(st.lists(names, min_size=2, max_size=2, unique=True))
        rule = {op: {src: dst}}
    else:
        rule = {
            "respond": {"status": draw(st.sampled_from([403, 429])), "headers": {"x-why": "guard"}}
        }
    when = draw(conditions(phase == "response"))
    if when:
        rule["when"] = when
    if op in ("set", "append", "addIfAbsent") and draw(st.booleans()):
        found = EXPRESSIONS + (RESPONSE_EXPRESSIONS if phase == "response" else [])
        found += PATH_EXPRESSIONS if "regex" in when.get("path", {}) else []
        rule[op] = {n: draw(st.sampled_from(found)) for n in rule[op]}
    return rule


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    request = draw(st.lists(rules("request"), max_size=3))
    response = draw(st.lists(rules("response"), min_size=1, max_size=4))
    return {"request": request, "response": response} if request else {"response": response}


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    request = [(":authority", "example.com"), (":method", draw(st.sampled_from(["GET", "POST", "HEAD"]))),
               (":path", draw(st.sampled_from(PATHS))), (":scheme", "http")]  # fmt: skip
    request += draw(st.lists(st.tuples(names, st.sampled_from(VALUES)), max_size=4))
    request += [("cookie", c) for c in draw(st.lists(st.sampled_from(COOKIES), max_size=2))]
    request += [("x-forwarded-for", x) for x in draw(st.lists(st.sampled_from(XFF), max_size=2))]
    request += [
        ("x-request-id", i) for i in draw(st.lists(st.sampled_from(["r-1", ""]), max_size=1))
    ]
    response = [(":status", draw(st.sampled_from(["200", "302", "404", "503"])))]
    response += draw(st.lists(st.tuples(names, st.sampled_from(VALUES)), max_size=4))
    cookies = st.tuples(st.just("set-cookie"), st.sampled_from(COOKIE_LINES))
    response += draw(st.lists(cookies, max_size=3))
    return request, response


def _build(config: dict[str, Any], backend: str, out: Path) -> Built:
    spec = validate({"name": "diff", "image": "r.io/p:v1", **config})
    return pipeline.build(spec, out, console=QUIET, backend=backend)  # type: ignore[arg-type]


@given(config=rule_sets(), exchanges=st.lists(traffic(), min_size=8, max_size=8))
def test_model_dynamic_and_compiled_agree(
    tmp_path_factory: pytest.TempPathFactory,
    config: dict[str, Any],
    exchanges: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
) -> None:
    try:
        validate({"name": "diff", "image": "r.io/p:v1", **config})
    except SpecError:
        assume(False)  # an order-dependent map or the like: the spec refuses it
    work = tmp_path_factory.mktemp("diff")
    built = {b: _build(config, b, work / b) for b in ("dynamic", "compiled")}
    agree(built, config, exchanges)


Exchange = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def agree(built: dict[str, Built], config: dict[str, Any], exchanges: list[Exchange]) -> None:
    """Every plugin in `built` gives the reference model's headers for every exchange."""
    hosts = {b: ProxyWasmHost(x.wasm.read_bytes(), plugin_config=x.plan.config_json.encode())
             for b, x in built.items()}  # fmt: skip
    try:
        for host in hosts.values():
            assert host.start(), host.logs()
        for request, response in exchanges:
            want = model.run(next(iter(built.values())).plan.config, request, response)
            for backend, host in hosts.items():
                got = host.exchange(request, response)
                where = f"{backend}: {config} with {request} / {response}"
                local = got.local_response.status if got.local_response else None
                assert local == want.local_status, where
                if want.local_status is not None:
                    continue
                assert sorted(got.request_headers) == sorted(
                    model.envoy_headers(want.request, "request")
                ), where
                assert sorted(got.response_headers or ()) == sorted(want.response or ()), where
    finally:
        for host in hosts.values():
            host.close()
