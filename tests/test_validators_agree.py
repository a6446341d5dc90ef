"""The spec's Python validation and the dynamic plugin's Go config parser agree on one corpus.

A rule set Python accepts must start in the plugin (else a valid spec deploys a plugin that
refuses to start, or with passThrough silently drops every rule), and one Python refuses must be
refused by the plugin too, so that operators editing pluginConfig get the same protection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import EXAMPLES
from wasmgen import pipeline
from wasmgen.errors import SpecError
from wasmgen.host import ProxyWasmHost
from wasmgen.plan import make_plan
from wasmgen.spec import validate

pytestmark = pytest.mark.slow

R = "response"
Q = "request"


def rules(phase: str, *items: dict[str, Any]) -> dict[str, Any]:
    """A configuration with these rules in one phase."""
    return {phase: list(items)}


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    (
        "expressions in a local reply",
        rules(
            Q,
            {"respond": {"status": 403, "headers": {"x-a": "${request.method} ${source.address}"}}},
        ),
    ),
    (
        "named path group",
        rules(R, {"set": {"x-a": "${path.v}"}, "when": {"path": {"regex": "^/(?P<v>v[0-9])"}}}),
    ),
    ("$$ only", rules(Q, {"addIfAbsent": {"x-a": "$$5"}})),
    (
        "cookie expressions",
        rules(R, {"set": {"x-a": "${request.cookie.a}|${request.cookie.B~'!}"}}),
    ),
    ("respond with no headers", rules(Q, {"respond": {"status": 403, "headers": {}}})),
    ("respond 204 without body", rules(Q, {"respond": {"status": 204}})),
    ("name of 256 bytes", rules(R, {"set": {"x-" + "a" * 254: "1"}})),
    ("disjoint renames", rules(R, {"rename": {"x-a": "x-b", "x-c": "x-d"}})),
    ("copy to two targets", rules(R, {"copyFromRequest": {"x-a": "x-a", "x-b": "x-c"}})),
    ("response remove of x-forwarded-proto", rules(R, {"remove": ["x-forwarded-proto"]})),
    ("request remove of x-forwarded-for", rules(Q, {"remove": ["x-forwarded-for"]})),
    (
        "host prefix with a colon",
        rules(R, {"set": {"x-a": "1"}, "when": {"host": {"prefix": "a:"}}}),
    ),
    ("host exact IPv6", rules(R, {"set": {"x-a": "1"}, "when": {"host": {"exact": "[::1]"}}})),
    ("value with tab", rules(R, {"set": {"x-a": "a\tb"}})),
    (
        "path suffix without /",
        rules(R, {"set": {"x-a": "1"}, "when": {"path": {"suffix": ".json"}}}),
    ),
    ("status range into 2xx", rules(R, {"set": {"x-a": "1"}, "when": {"status": ["100-299"]}})),
    (
        "respond echoing the origin",
        rules(
            Q,
            {
                "respond": {
                    "status": 204,
                    "copyFromRequest": {"origin": "access-control-allow-origin"},
                }
            },
        ),
    ),
    *[
        (f"regex {rx}", rules(R, {"set": {"x-a": "1"}, "when": {"path": {"regex": rx}}}))
        for rx in (
            r"(?i)^/api",
            r"^/\pL+$",
            r"[[:digit:]]",
            r"/x\z",
            r"\Q/a.b\E",
            r"(?P<v>v\d)",
            r"\x{41}",
            r"a{2,3}?",
            r"[^\n]",
            r"\\C",
        )
    ],
    *[(f"example {e.stem}", make_plan(wasmgen.load_spec(e)).config) for e in EXAMPLES],
    (
        "not and any, nested",
        rules(
            Q,
            {
                "set": {"x-a": "1"},
                "when": {
                    "not": {"any": [{"method": ["GET"]}, {"not": {"path": {"prefix": "/a"}}}]},
                    "any": [{"cookie": [{"name": "b", "present": True}]}, {"host": {"exact": "h"}}],
                },
            },
        ),
    ),
    (
        "source blocks",
        rules(
            Q,
            {
                "set": {"x-a": "1"},
                "when": {
                    "source": ["10.0.0.0/8", "172.16.0.0/12", "192.0.2.7", "0.0.0.0/0", "::/0"],
                    "not": {"source": ["2001:db8::1:0:0:1", "::ffff:10.0.0.0/104", "::1.2.3.4"]},
                },
            },
        ),
    ),
    (
        "query and cookie conditions",
        rules(
            R,
            {
                "set": {"x-a": "1"},
                "when": {
                    "query": [{"name": "a%20b", "equals": "x=y"}, {"name": "q", "present": True}],
                    "cookie": [{"name": "Sess-1", "matches": "^v"}, {"name": "b", "equals": ""}],
                },
            },
        ),
    ),
    (
        "cookieFlags on named cookies",
        rules(
            R,
            {
                "cookieFlags": {
                    "secure": True,
                    "httpOnly": False,
                    "sameSite": "None",
                    "cookies": ["s"],
                }
            },
        ),
    ),
    ("removeCookie on both sides", {Q: [{"removeCookie": ["_ga"]}], R: [{"removeCookie": ["d"]}]}),
    ("dedupe modes", rules(R, {"dedupe": {"vary": "unique", "x-a": "first", "x-b": "last"}})),
    ("query edits", rules(Q, {"removeQuery": ["utm_*", "a%20b"]}, {"setQuery": {"lang": "a b&c"}})),
    (
        "rewrite with groups",
        rules(
            R,
            {"rewrite": {"location": {"regex": "^http://(?P<r>.*)$", "with": "https://${r}$$ $1"}}},
        ),
    ),
]

REFUSED: list[tuple[str, dict[str, Any]]] = [
    (
        "response value in a local reply",
        rules(Q, {"respond": {"status": 403, "headers": {"x-a": "${response.status}"}}}),
    ),
    (
        "path group beyond the regex",
        rules(R, {"set": {"x-a": "${path.2}"}, "when": {"path": {"regex": "^/(a)"}}}),
    ),
    ("lone dollar", rules(R, {"append": {"x-a": "$5"}})),
    ("unknown expression", rules(R, {"set": {"x-a": "${request.cookie}"}})),
    (
        "cookie expression with a non-token name",
        rules(R, {"set": {"x-a": "${request.cookie.a;b}"}}),
    ),
    ("rename chain", rules(R, {"rename": {"x-b": "x-c", "x-a": "x-b"}})),
    ("rename to one target twice", rules(R, {"rename": {"x-a": "x-c", "x-b": "x-c"}})),
    ("copy to one target twice", rules(R, {"copyFromRequest": {"x-a": "x-o", "x-b": "x-o"}})),
    ("non-ASCII value", rules(R, {"set": {"x-a": "café"}})),
    ("control character", rules(R, {"set": {"x-a": "a\r\nb: c"}})),
    ("name of 257 bytes", rules(R, {"set": {"x-" + "a" * 255: "1"}})),
    ("upper-case name", rules(R, {"set": {"X-A": "1"}})),
    ("hop-by-hop name", rules(R, {"remove": ["connection"]})),
    ("host with a port", rules(R, {"set": {"x-a": "1"}, "when": {"host": {"exact": "a.b:80"}}})),
    ("request remove of x-forwarded-proto", rules(Q, {"remove": ["x-forwarded-*"]})),
    ("request rename of x-forwarded-proto", rules(Q, {"rename": {"x-forwarded-proto": "x-p"}})),
    ("response remove of date", rules(R, {"remove": ["date"]})),
    ("body on a 304", rules(Q, {"respond": {"status": 304, "body": "x"}})),
    ("status on a request rule", rules(Q, {"set": {"x-a": "1"}, "when": {"status": ["5xx"]}})),
    ("copy in a request rule", rules(Q, {"copyFromRequest": {"x-a": "x-b"}})),
    ("respond in a response rule", rules(R, {"respond": {"status": 403}})),
    ("two operations", rules(R, {"set": {"x-a": "1"}, "remove": ["x-b"]})),
    ("empty set", rules(R, {"set": {}})),
    ("regex \\C", rules(R, {"set": {"x-a": "1"}, "when": {"path": {"regex": "a\\Cb"}}})),
    ("regex lookahead", rules(R, {"set": {"x-a": "1"}, "when": {"path": {"regex": "a(?=b)"}}})),
    ("status 600", rules(R, {"set": {"x-a": "1"}, "when": {"status": ["600"]}})),
    ("lower-case method", rules(R, {"set": {"x-a": "1"}, "when": {"method": ["get"]}})),
    ("upper-case host", rules(R, {"set": {"x-a": "1"}, "when": {"host": {"exact": "A.b"}}})),
    ("path without /", rules(R, {"set": {"x-a": "1"}, "when": {"path": {"prefix": "api"}}})),
    ("path with a query", rules(R, {"set": {"x-a": "1"}, "when": {"path": {"exact": "/a?b"}}})),
    ("1xx status", rules(R, {"set": {"x-a": "1"}, "when": {"status": ["1xx"]}})),
    ("status range below 200", rules(R, {"set": {"x-a": "1"}, "when": {"status": ["100-199"]}})),
    *[
        (f"{kind} {key} {text!r}", rules(R, {"set": {"x-a": "1"}, "when": {kind: [cond]}}))
        for kind, key, text, cond in (
            ("query", "name", "a b", {"name": "a b", "present": True}),
            ("query", "name", "a=b", {"name": "a=b", "present": True}),
            ("query", "name", "%zz", {"name": "%zz", "present": True}),
            ("query", "equals", "x&y", {"name": "q", "equals": "x&y"}),
            ("cookie", "name", "a=b", {"name": "a=b", "absent": True}),
            ("cookie", "equals", "a b", {"name": "c", "equals": "a b"}),
            ("cookie", "equals", '"q"', {"name": "c", "equals": '"q"'}),
        )
    ],
    *[
        (f"source {block!r}", rules(Q, {"set": {"x-a": "1"}, "when": {"source": [block]}}))
        for block in (
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0/8",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/255.0.0.0",
            "2001:db8::/129",
            "2001:db8::1/32",
            "1::2::3",
            "fe80::1%eth0",
            "localhost",
            "",
        )
    ],
    ("empty source list", rules(Q, {"set": {"x-a": "1"}, "when": {"source": []}})),
    ("empty query list", rules(R, {"set": {"x-a": "1"}, "when": {"query": []}})),
    ("empty not", rules(R, {"set": {"x-a": "1"}, "when": {"not": {}}})),
    ("empty any", rules(R, {"set": {"x-a": "1"}, "when": {"any": []}})),
    ("empty block in any", rules(R, {"set": {"x-a": "1"}, "when": {"any": [{}]}})),
    (
        "status nested in any",
        rules(R, {"set": {"x-a": "1"}, "when": {"not": {"any": [{"status": ["5xx"]}]}}}),
    ),
    (
        "a bad pattern nested in not",
        rules(R, {"set": {"x-a": "1"}, "when": {"not": {"path": {"prefix": "api"}}}}),
    ),
    ("cookie without a test", rules(R, {"set": {"x-a": "1"}, "when": {"cookie": [{"name": "c"}]}})),
    (
        "equals with trailing space",
        rules(R, {"set": {"x-a": "1"}, "when": {"headers": [{"name": "a", "equals": "b "}]}}),
    ),
    ("cookieFlags in a request rule", rules(Q, {"cookieFlags": {"secure": True}})),
    ("SameSite None without Secure", rules(R, {"cookieFlags": {"sameSite": "None"}})),
    ("SameSite in lower case", rules(R, {"cookieFlags": {"sameSite": "lax"}})),
    ("cookieFlags without a flag", rules(R, {"cookieFlags": {"cookies": ["s"]}})),
    ("removeCookie of a non-token", rules(Q, {"removeCookie": ["a b"]})),
    ("dedupe of set-cookie", rules(R, {"dedupe": {"set-cookie": "first"}})),
    ("dedupe of expires", rules(R, {"dedupe": {"expires": "last"}})),
    ("dedupe mode unknown", rules(R, {"dedupe": {"vary": "all"}})),
    ("setQuery on the response", rules(R, {"setQuery": {"a": "1"}})),
    ("removeQuery of a name with &", rules(Q, {"removeQuery": ["a&b"]})),
    ("rewrite with a bad regex", rules(R, {"rewrite": {"x-a": {"regex": "(", "with": "x"}}})),
    ("rewrite beyond the groups", rules(R, {"rewrite": {"x-a": {"regex": "(a)", "with": "$2"}}})),
    ("rewrite with a lone $", rules(R, {"rewrite": {"x-a": {"regex": "a", "with": "$x"}}})),
    (
        "rewrite of upstream service time",
        rules(R, {"rewrite": {"x-envoy-upstream-service-time": {"regex": "1", "with": "2"}}}),
    ),
]


@pytest.fixture(scope="module")
def dynamic_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The dynamic backend's plugin: its parser is the same for every spec."""
    spec = wasmgen.load_spec(next(e for e in EXAMPLES if e.stem == "seed-lab"))
    out = tmp_path_factory.mktemp("dynamic")
    built = pipeline.build(spec, out, console=Console(quiet=True), backend="dynamic")
    return built.wasm.read_bytes()


def _python_accepts(config: dict[str, Any]) -> tuple[bool, str]:
    data = {"name": "corpus", "image": "r.io/p:v1", **config}
    try:
        validate(data)
    except SpecError as exc:
        return False, exc.render()
    return True, ""


def _go_accepts(wasm: bytes, config: dict[str, Any]) -> tuple[bool, str]:
    raw = json.dumps(config).encode()
    with ProxyWasmHost(wasm, plugin_config=raw) as host:
        started = host.start()
        return started, " ".join(host.logs("critical"))


@pytest.mark.parametrize(
    ("name", "config"), ACCEPTED + REFUSED, ids=[n for n, _ in ACCEPTED + REFUSED]
)
def test_python_and_go_agree(dynamic_wasm: bytes, name: str, config: dict[str, Any]) -> None:
    py_ok, py_why = _python_accepts(config)
    go_ok, go_why = _go_accepts(dynamic_wasm, config)
    expected = (name, config) in ACCEPTED
    assert py_ok == expected, f"Python: {py_why}"
    assert go_ok == expected, f"Go: {go_why or 'started'}"


def test_the_corpus_covers_every_check(tmp_path: Path) -> None:
    """Each refused entry fails for its own reason in Python (not a typo in the corpus)."""
    reasons = [_python_accepts(config)[1] for _, config in REFUSED]
    assert all(reasons) and len(set(reasons)) == len(reasons)
