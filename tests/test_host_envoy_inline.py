"""Envoy joins a repeated inline header into one value: the embedded host and the model agree.

Expectations are Envoy 1.36.4 / 1.38.2 / 1.40.0 as measured for docs/envoy-behaviour.md
section b (tests/test_envoy_probes.py repeats them in real Envoy), where a plugin added `H: plugin` to a request or
response that arrived with `H: client`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from wasmgen.envoy_headers import INLINE_REQUEST_HEADERS, INLINE_RESPONSE_HEADERS
from wasmgen.host import HeaderMap, HttpRequest, HttpResponse, HttpResult, ProxyWasmHost
from wasmgen.pipeline import Built
from wasmgen.semantics import model
from wasmgen.testing.runner import check_scenario
from wasmgen.wasm.abi import Header

PSEUDO = [(":authority", "localhost"), (":path", "/"), (":method", "GET"), (":scheme", "http")]

# envoy-behaviour.md b, first table: inline names the experiment covered, per map.
REQ_INLINE = ["cache-control", "x-forwarded-for", "user-agent", "accept", "via", "authorization",
              "content-type"]  # fmt: skip
RESP_INLINE = ["cache-control", "vary", "via", "content-type", "etag", "date", "x-request-id",
               "access-control-allow-origin", "access-control-expose-headers"]  # fmt: skip
REQ_PLAIN = ["x-trace-tags", "forwarded", "cookie"]
RESP_PLAIN = ["x-trace-tags", "set-cookie", "link"]


# -- the header map itself (fast) --------------------------------------------------------


def test_inline_lists_are_envoys() -> None:
    # envoy-behaviour.md b "Exact lists": 68 request-side and 38 response-side names, 1.36 to 1.40.
    assert (len(INLINE_REQUEST_HEADERS), len(INLINE_RESPONSE_HEADERS)) == (68, 38)
    # envoy-behaviour.md b: the maps differ.
    assert "x-forwarded-for" in INLINE_REQUEST_HEADERS - INLINE_RESPONSE_HEADERS
    assert {"vary", "date"} <= INLINE_RESPONSE_HEADERS - INLINE_REQUEST_HEADERS
    both = {"via", "x-request-id", "content-type", "cache-control"}
    assert both <= INLINE_REQUEST_HEADERS & INLINE_RESPONSE_HEADERS
    not_inline = {"cookie", "set-cookie", "forwarded", "link", "x-powered-by",
                  "strict-transport-security"}  # fmt: skip
    assert not not_inline & (INLINE_REQUEST_HEADERS | INLINE_RESPONSE_HEADERS)
    # The model and the host read the one list in wasmgen.envoy_headers.
    assert model.inline_names("request") == INLINE_REQUEST_HEADERS  # one list, shared
    assert model.inline_names("response") == INLINE_RESPONSE_HEADERS


def test_add_joins_inline_headers_of_that_map_only() -> None:
    req = HeaderMap([("cache-control", "c1"), ("x-forwarded-for", "a")], "request")
    req.add("Cache-Control", "c2")
    req.add("x-forwarded-for", "b")
    req.add("vary", "v1")  # response-only: two entries in a request map
    req.add("vary", "v2")
    assert req.pairs == [("cache-control", "c1,c2"), ("x-forwarded-for", "a,b"),
                         ("vary", "v1"), ("vary", "v2")]  # fmt: skip
    resp = HeaderMap([("vary", "u1"), ("x-forwarded-for", "a")], "response")
    resp.add("vary", "u2")
    resp.add("x-forwarded-for", "b")  # request-only
    assert resp.pairs == [("vary", "u1,u2"), ("x-forwarded-for", "a"), ("x-forwarded-for", "b")]
    assert resp.get("vary") == "u1,u2" and resp.get("x-forwarded-for") == "a"


def test_building_a_map_joins_like_the_codec_and_plain_maps_do_not() -> None:
    # envoy-behaviour.md b "More cases": two lines from the client arrive as one joined value.
    pairs = [("Cache-Control", "c1"), ("cache-control", "c2"), ("cookie", "a=1"), ("cookie", "b=2")]
    assert HeaderMap(pairs, "request").pairs == [
        ("cache-control", "c1,c2"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
    ]
    assert HeaderMap(pairs).pairs == [(k.lower(), v) for k, v in pairs]  # "plain"


def test_replace_and_remove_are_unchanged_and_empty_values_follow_append_to_header() -> None:
    hm = HeaderMap([("via", "a"), ("via", "b"), ("x-p", "1")], "request")
    hm.replace("via", "r")  # setCopy: one entry, moved to the end (envoy-behaviour.md b)
    assert hm.pairs == [("x-p", "1"), ("via", "r")]
    hm.add("via", "")  # appendToHeader: an empty value adds nothing
    assert hm.get("via") == "r"
    hm.replace("via", "")
    hm.add("via", "x")  # an empty entry takes the value without a delimiter
    assert hm.pairs == [("x-p", "1"), ("via", "x")]
    hm.remove("VIA")
    assert hm.get("via") is None


def test_request_map_stores_host_as_authority() -> None:
    # Envoy header_map_impl.cc, StaticLookupTable<RequestHeaderMap>: "Special case where we map
    # a legacy host header to :authority" (that is how the HTTP/1 codec fills :authority).
    hm = HeaderMap([("x-a", "1"), ("host", "example.com")], "request")
    assert hm.pairs == [(":authority", "example.com"), ("x-a", "1")]
    assert hm.get("host") == "example.com"
    assert HeaderMap([("host", "h")], "response").pairs == [("host", "h")]


# -- the reference model (fast) ----------------------------------------------------------


def test_model_joins_inline_appends_per_map_and_proxytest_mode_is_unchanged() -> None:
    config: dict[str, Any] = {
        "request": [{"append": {"cache-control": "edge", "x-trace-tags": "edge"}}],
        "response": [{"append": {"vary": "origin", "x-forwarded-for": "9.9.9.9"}}],
    }
    req = [*PSEUDO, ("cache-control", "client"), ("x-trace-tags", "client")]
    resp = [(":status", "200"), ("vary", "up"), ("x-forwarded-for", "1.1.1.1")]
    envoy = model.run(config, req, resp)
    assert envoy.request == [*PSEUDO, ("cache-control", "client,edge"),
                             ("x-trace-tags", "client"), ("x-trace-tags", "edge")]  # fmt: skip
    assert envoy.response == [(":status", "200"), ("vary", "up,origin"),
                              ("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "9.9.9.9")]  # fmt: skip
    proxytest = model.run(config, req, resp, concat=True)
    assert proxytest.request == [
        *PSEUDO,
        ("cache-control", "clientedge"),
        ("x-trace-tags", "clientedge"),
    ]
    assert proxytest.response == [(":status", "200"), ("vary", "uporigin"),
                                  ("x-forwarded-for", "1.1.1.19.9.9.9")]  # fmt: skip


def test_model_joins_repeated_inline_headers_of_its_input_in_envoy_mode_only() -> None:
    config: dict[str, Any] = {"response": [{"copyFromRequest": {"via": "x-via"}}]}
    req = [*PSEUDO, ("via", "a"), ("via", "b")]
    resp = [(":status", "200"), ("etag", "e1"), ("etag", "e2"), ("link", "l1"), ("link", "l2")]
    envoy = model.run(config, req, resp)
    assert envoy.request == [*PSEUDO, ("via", "a,b")]
    assert envoy.response == [(":status", "200"), ("etag", "e1,e2"), ("link", "l1"),
                              ("link", "l2"), ("x-via", "a,b")]  # fmt: skip
    proxytest = model.run(config, req, resp, concat=True)
    assert proxytest.request == req and proxytest.response == [*resp, ("x-via", "a")]


def test_model_rename_into_an_inline_header_joins_every_value() -> None:
    config: dict[str, Any] = {"request": [{"rename": {"x-agent": "user-agent"}}]}
    req = [*PSEUDO, ("user-agent", "curl"), ("x-agent", "a"), ("x-agent", ""), ("x-agent", "b")]
    out = model.run(config, req, [(":status", "200")])
    assert out.request == [*PSEUDO, ("user-agent", "a,b")]  # "" adds nothing


# -- rawabi in the host (slow) ------------------------------------------------------------

slow = pytest.mark.slow


def raw(script: str, wasm: bytes) -> ProxyWasmHost:
    host = ProxyWasmHost(wasm, plugin_config=script.encode())
    assert host.start()
    return host


def named(headers: tuple[Header, ...] | None, name: str) -> list[str]:
    return [v for k, v in headers or () if k == name]


@slow
@pytest.mark.parametrize(("name", "inline"), [*((n, True) for n in REQ_INLINE),
                                              *((n, False) for n in REQ_PLAIN)])  # fmt: skip
def test_request_add_after_a_client_value(raw_wasm: bytes, name: str, inline: bool) -> None:
    # envoy-behaviour.md b, table: inline -> one entry "client,plugin" that get and get_pairs show;
    # not inline -> two entries, get returns the first.
    host = raw(f"req add {name} plugin\nreq get {name} x-got\nreq pairs x-pairs", raw_wasm)
    result = host.http_request(HttpRequest(headers=[(name, "client")]))
    if inline:
        assert named(result.request_headers, name) == ["client,plugin"]
        assert named(result.request_headers, "x-got") == ["0:client,plugin"]
        pairs = named(result.request_headers, "x-pairs")[0]
        assert pairs.endswith(f"|{name}=client,plugin|x-got=0:client,plugin")
    else:
        assert named(result.request_headers, name) == ["client", "plugin"]
        assert named(result.request_headers, "x-got") == ["0:client"]


@slow
@pytest.mark.parametrize(("name", "inline"), [*((n, True) for n in RESP_INLINE),
                                              *((n, False) for n in RESP_PLAIN)])  # fmt: skip
def test_response_add_after_an_upstream_value(raw_wasm: bytes, name: str, inline: bool) -> None:
    host = raw(f"resp add {name} plugin\nresp get {name} x-got", raw_wasm)
    result = host.http_request(HttpRequest(), HttpResponse(200, [(name, "client")]))
    expected = ["client,plugin"] if inline else ["client", "plugin"]
    assert named(result.response_headers, name) == expected
    assert named(result.response_headers, "x-got") == [f"0:{expected[0]}"]


@slow
def test_server_is_inline_on_the_response_side(raw_wasm: bytes) -> None:
    # envoy-behaviour.md b: the plugin reads "upstream,plugin" back (what the client gets is Envoy's
    # server header transformation, see test_host_envoy_surroundings).
    host = raw("resp add server plugin\nresp get server x-got", raw_wasm)
    result = host.http_request(HttpRequest(), HttpResponse(200, [("server", "upstream")]))
    assert named(result.response_headers, "x-got") == ["0:upstream,plugin"]


@slow
def test_adding_twice_without_a_value(raw_wasm: bytes) -> None:
    # envoy-behaviour.md b "More cases": cache-control -> "p1,p2" (one line); x-trace-tags -> two lines.
    script = "\n".join(f"req add {n} {v}" for n in ("cache-control", "x-trace-tags")
                       for v in ("p1", "p2"))  # fmt: skip
    result = raw(script, raw_wasm).http_request(HttpRequest())
    assert result.request_headers == (*PSEUDO, ("cache-control", "p1,p2"),
                                      ("x-trace-tags", "p1"), ("x-trace-tags", "p2"))  # fmt: skip


@slow
def test_repeated_lines_arrive_joined(raw_wasm: bytes) -> None:
    # envoy-behaviour.md b "More cases": the HTTP/1 codec joins inline headers before the plugin sees
    # them (cache-control c1,c2 / x-forwarded-for c1,c2 / vary u1,u2); cookie, set-cookie and
    # x-trace-tags stay separate.
    host = raw("req get cache-control x-got\nresp pairs x-pairs", raw_wasm)
    request = HttpRequest(headers=[("cache-control", "c1"), ("x-forwarded-for", "c1"),
                                   ("cookie", "a=1"), ("cache-control", "c2"),
                                   ("x-forwarded-for", "c2"), ("cookie", "b=2")])  # fmt: skip
    response = HttpResponse(200, [("vary", "u1"), ("set-cookie", "s1"), ("vary", "u2"),
                                  ("set-cookie", "s2"), ("x-trace-tags", "t1"),
                                  ("x-trace-tags", "t2")])  # fmt: skip
    result = host.http_request(request, response)
    assert result.request_headers == (*PSEUDO, ("cache-control", "c1,c2"),
                                      ("x-forwarded-for", "c1,c2"), ("cookie", "a=1"),
                                      ("cookie", "b=2"), ("x-got", "0:c1,c2"))  # fmt: skip
    assert named(result.response_headers, "x-pairs") == [
        "0::status=200|vary=u1,u2|set-cookie=s1|set-cookie=s2|x-trace-tags=t1|x-trace-tags=t2"
    ]


@slow
def test_replace_after_two_values_leaves_one_entry(raw_wasm: bytes) -> None:
    # envoy-behaviour.md b: replace (setCopy) after two values -> one entry, for both kinds.
    script = "req add via p\nreq add x-trace-tags p\nreq replace via r\nreq replace x-trace-tags r"
    request = HttpRequest(headers=[("via", "c"), ("x-trace-tags", "c")])
    result = raw(script, raw_wasm).http_request(request)
    assert result.request_headers == (*PSEUDO, ("via", "r"), ("x-trace-tags", "r"))


@slow
def test_set_pairs_adds_each_pair_like_add(raw_wasm: bytes) -> None:
    # Envoy context.cc Context::setHeaderMapPairs removes every key, then addCopy's each pair.
    result = raw("req setpairs via=a|via=b|x-t=a|x-t=b", raw_wasm).http_request(HttpRequest())
    assert result.request_headers == (("via", "a,b"), ("x-t", "a"), ("x-t", "b"))


# -- a generated plugin against the model (slow) ----------------------------------------


def _scenario(host: ProxyWasmHost, config: dict[str, Any], req: list[Header],
              resp: list[Header]) -> HttpResult:  # fmt: skip
    result = host.exchange(req, resp)
    assert check_scenario(config, list(req), list(resp), result) == []
    return result


@slow
def test_generated_plugin_and_model_agree_on_inline_appends(
    built_dynamic: dict[str, Built],
) -> None:
    """`wasmgen test` compares the full header lists of the plugin in the host with the model:
    both now give Envoy's joined values (envoy-behaviour.md b, Recommendations 8)."""
    config: dict[str, Any] = {
        "request": [
            {"append": {"cache-control": "edge", "x-trace-tags": "edge"}},
            {"rename": {"x-agent": "user-agent"}},
            {"addIfAbsent": {"accept": "*/*"}},
        ],
        "response": [
            {"append": {"vary": "origin", "x-forwarded-for": "9.9.9.9", "via": "wasm"}},
            {"copyFromRequest": {"cache-control": "x-seen-cache-control"}},
        ],
    }
    wasm = built_dynamic["request-guard"].wasm.read_bytes()  # any generated plugin: config-driven
    with ProxyWasmHost(wasm, plugin_config=json.dumps(config).encode()) as host:
        assert host.start(), host.logs()
        req = [*PSEUDO, ("cache-control", "c1"), ("cache-control", "c2"), ("x-agent", "a"),
               ("x-agent", "b"), ("user-agent", "curl"), ("x-trace-tags", "client")]  # fmt: skip
        resp = [(":status", "200"), ("vary", "u1"), ("vary", "u2"), ("via", "1.1 up")]
        result = _scenario(host, config, req, resp)
        assert named(result.request_headers, "cache-control") == ["c1,c2,edge"]
        assert named(result.request_headers, "user-agent") == ["a,b"]
        assert named(result.request_headers, "x-trace-tags") == ["client", "edge"]
        assert named(result.response_headers, "vary") == ["u1,u2,origin"]
        assert named(result.response_headers, "via") == ["1.1 up,wasm"]
        assert named(result.response_headers, "x-forwarded-for") == ["9.9.9.9"]
        assert named(result.response_headers, "x-seen-cache-control") == ["c1,c2"]
        # Nothing to join: the same as before.
        _scenario(host, config, list(PSEUDO), [(":status", "200")])
