"""A plugin's local reply passes through the same plugin's response callback, as in Envoy.

Expectations: docs/envoy-behaviour.md section c (Envoy 1.36.4 / 1.38.2 / 1.40.0, a probe
plugin sending `[content-type: text/plain, x-local: 1, X-Mixed-Case: v, server: probe-server,
x-local: 2]` and the body `local reply\\n`), and Envoy's Utility::prepareLocalReply
(source/common/http/utility.cc) where the report did not measure a case.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import wasmtime

from wasmgen.errors import HostError
from wasmgen.host import Action, HttpRequest, HttpResponse, ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.pipeline import Built
from wasmgen.wasm.abi import Header, serialize_pairs

PROBE_HEADERS = [("content-type", "text/plain"), ("x-local", "1"), ("X-Mixed-Case", "v"),
                 ("server", "probe-server"), ("x-local", "2")]  # fmt: skip
BODY = b"local reply\n"

# A plugin written in WAT, like envoy-behaviour.md c's probe: on_request_headers sends a local reply;
# on_response_headers adds "x-eos: 0|1" (its end_of_stream) to whatever it is given.
PROBE = """(module
  (import "env" "proxy_send_local_response"
    (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x-eos")
  (data (i32.const 32) "01")
  (data (i32.const 48) "probe_denied")
  (data (i32.const 64) "BODY")
  (data (i32.const 1024) "PAIRS")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "_initialize"))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get 0))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $reply (i32.const STATUS) (i32.const 48) (i32.const 12) (i32.const 64)
      (i32.const BODYLEN) (i32.const 1024) (i32.const PAIRSLEN) (i32.const -1)))
    (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 16) (i32.const 5)
      (i32.add (i32.const 32) (local.get 2)) (i32.const 1)))
    (i32.const 0)))
"""


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def probe(status: int = 403, body: bytes = BODY, headers: list[Header] | None = None) -> bytes:
    pairs = serialize_pairs(PROBE_HEADERS if headers is None else headers)
    wat = (
        PROBE.replace("STATUS", str(status))
        .replace('"BODY"', f'"{_wat_bytes(body)}"')
        .replace("BODYLEN", str(len(body)))
        .replace('"PAIRS"', f'"{_wat_bytes(pairs)}"')
        .replace("PAIRSLEN", str(len(pairs)))
    )
    return bytes(wasmtime.wat2wasm(wat))


def started(wasm: bytes, config: str | bytes = b"") -> ProxyWasmHost:
    host = ProxyWasmHost(wasm, plugin_config=config.encode() if isinstance(config, str) else config)
    assert host.start()
    return host


# -- the probe (fast) --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "eos", "body"), [("GET", "0", BODY), ("HEAD", "1", b"")])
def test_probe_reply_goes_through_the_response_callback(method: str, eos: str, body: bytes) -> None:
    # envoy-behaviour.md c: on_response_headers n=7 eos=false (GET) / eos=true (HEAD): :status="403"
    # content-type x-local="1" x-mixed-case="v" server="probe-server" x-local="2"
    # content-length="12"; the client gets those headers (lower-cased, in order, duplicates
    # kept) and, for HEAD, no body.
    result = started(probe()).http_request(HttpRequest(method=method), HttpResponse())
    assert result.request_action == Action.PAUSE
    assert result.response_headers is None and result.response_action is None  # no upstream
    local = result.local_response
    assert local is not None and local.headers == tuple(PROBE_HEADERS)  # as the plugin sent it
    assert result.client is not None and result.client.local
    assert (result.client.status, result.client.body) == (403, body)
    assert result.client.details == "probe_denied"
    assert result.client.headers == (
        ("content-type", "text/plain"),
        ("x-local", "1"),
        ("x-mixed-case", "v"),
        ("server", "probe-server"),
        ("x-local", "2"),
        ("content-length", "12"),
        ("x-eos", eos),
    )


def test_probe_reply_through_envoy_surroundings() -> None:
    # envoy-behaviour.md c, what the client gets: ... server: envoy (overwritten in place under
    # OVERWRITE, kept under PASS_THROUGH) ..., content-length: 12, date.
    host = started(probe())
    for sht, server in (("OVERWRITE", "envoy"), ("PASS_THROUGH", "probe-server")):
        envoy = EnvoySurroundings(server_header_transformation=sht, date="D")  # type: ignore[arg-type]
        for method, body in (("GET", BODY), ("HEAD", b"")):
            result = host.http_request(HttpRequest(method=method), HttpResponse(), envoy=envoy)
            assert result.upstream is None  # the upstream is not hit
            assert result.client is not None and result.client.status == 403
            assert result.client.body == body
            assert [(k, v) for k, v in result.client.headers if k != "x-eos"] == [
                ("content-type", "text/plain"),
                ("x-local", "1"),
                ("x-mixed-case", "v"),
                ("server", server),
                ("x-local", "2"),
                ("content-length", "12"),
                ("date", "D"),
            ]


def test_204_reply_with_a_body_keeps_its_length_and_body() -> None:
    # envoy-behaviour.md c: 204 with a body -> content-length: 12, and the 12 bytes on the wire.
    result = started(probe(status=204)).http_request(HttpRequest())
    assert result.client is not None and result.client.status == 204
    assert ("content-length", "12") in result.client.headers and result.client.body == BODY
    assert ("x-eos", "0") in result.client.headers


def test_reply_without_a_body_has_neither_length_nor_type() -> None:
    # Utility::prepareLocalReply: an empty body removes content-length and content-type, and
    # the headers end the stream (like the router's own empty 404, envoy-behaviour.md a: the plugin saw
    # only :status="404" with eos=true). On the wire the HTTP/1 codec adds content-length: 0.
    wasm = probe(status=401, body=b"", headers=[("content-type", "text/plain"), ("x-a", "1")])
    host = started(wasm)
    result = host.http_request(HttpRequest())
    assert result.client is not None
    assert result.client.headers == (("x-a", "1"), ("x-eos", "1"))
    assert result.client.body == b""
    result = host.http_request(HttpRequest(), envoy=EnvoySurroundings(date="D"))
    assert result.client is not None
    assert result.client.headers == (("x-a", "1"), ("x-eos", "1"), ("date", "D"),
                                     ("server", "envoy"), ("content-length", "0"))  # fmt: skip


def test_reply_without_content_type_gets_text_plain_and_joins_inline_headers() -> None:
    # Utility::prepareLocalReply sets content-type text/plain when absent; the plugin's headers
    # are addCopy'd into a response header map, so an inline one joins (envoy-behaviour.md b).
    wasm = probe(headers=[("cache-control", "no-store"), ("Cache-Control", "private")])
    result = started(wasm).http_request(HttpRequest())
    assert result.client is not None
    assert result.client.headers == (
        ("cache-control", "no-store,private"),
        ("content-length", "12"),
        ("content-type", "text/plain"),
        ("x-eos", "0"),
    )


# -- rawabi and generated plugins (slow) ---------------------------------------------------

slow = pytest.mark.slow


@slow
def test_rawabi_edits_its_own_local_reply(raw_wasm: bytes) -> None:
    # envoy-behaviour.md c: Envoy calls the same plugin's proxy_on_response_headers for its local reply,
    # with the reply's headers plus content-length; the plugin may edit them.
    script = (
        "req local 401 nope\nresp get content-length x-cl\nresp add x-resp 1\nresp remove x-local"
    )
    host = started(raw_wasm, script)
    result = host.http_request(HttpRequest(), HttpResponse())
    assert result.local_response is not None
    assert result.local_response.headers == (("x-local", "yes"), ("content-type", "text/plain"))
    assert result.response_headers is None and result.request_action == Action.PAUSE
    assert result.client is not None and (result.client.status, result.client.body) == (
        401,
        b"nope",
    )
    assert result.client.headers == (
        ("content-type", "text/plain"),
        ("content-length", "4"),
        ("x-cl", "0:4"),
        ("x-resp", "1"),
    )
    assert "response_headers" in result.fuel  # the callback ran
    stream = host.open_stream()
    stream.on_request_headers(HttpRequest().header_list())
    with pytest.raises(HostError, match="after the stream ended"):
        stream.on_response_headers([(":status", "200")])
    stream.finish()


@slow
def test_sdk_plugin_answers_its_own_local_reply(sdk_wasm: bytes) -> None:
    # sdkheaders' OnHttpResponseHeaders runs on its 403 too (it adds x-wasm-resp and
    # x-wasm-status, sets server): what Envoy's client would see before the HCM.
    result = started(sdk_wasm).http_request(HttpRequest(headers=[("x-deny", "1")]))
    assert result.client is not None and result.client.local and result.client.status == 403
    assert result.client.headers == (
        ("x-denied-by", "sdkheaders"),
        ("content-length", "15"),
        ("content-type", "text/plain"),
        ("x-wasm-resp", "1"),
        ("server", "wasmgen"),
        ("x-wasm-status", "403"),
    )


@slow
def test_response_rules_skip_the_generated_plugins_own_reply(
    built_dynamic: dict[str, Built],
) -> None:
    # envoy-behaviour.md c: request-guard's real 403 is content-type: text/plain, content-length: 10,
    # date, server: envoy, body "forbidden\n"; HEAD gets the same headers and no body. The
    # generated plugin skips its response rules on its own reply (h.localReply).
    config: dict[str, Any] = {
        "request": [{"respond": {"status": 403, "body": "forbidden\n",
                                 "headers": {"content-type": "text/plain"}},
                     "when": {"path": {"prefix": "/admin"}}}],
        "response": [{"set": {"x-after": "1"}}],
    }  # fmt: skip
    wasm = built_dynamic["request-guard"].wasm.read_bytes()
    host = started(wasm, json.dumps(config))
    result = host.http_request(HttpRequest(path="/admin/users"), HttpResponse())
    assert result.client is not None and result.client.status == 403
    assert result.client.headers == (("content-type", "text/plain"), ("content-length", "10"))
    assert result.client.body == b"forbidden\n"
    envoy = EnvoySurroundings(date="D")
    for method, body in (("GET", b"forbidden\n"), ("HEAD", b"")):
        result = host.http_request(HttpRequest(method, "/admin/users"), envoy=envoy)
        assert result.client is not None and result.client.body == body
        assert result.client.headers == (("content-type", "text/plain"),
                                         ("content-length", "10"), ("date", "D"),
                                         ("server", "envoy"))  # fmt: skip
    passed = host.http_request(HttpRequest(path="/ok"), HttpResponse())
    assert passed.client is not None and passed.client.headers == (("x-after", "1"),)
