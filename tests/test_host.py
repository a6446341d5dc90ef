"""The embedded proxy-wasm host runs real compiled plugins the way Envoy does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests import conftest_host
from tests.conftest_host import build_plugin, run_proxytest
from wasmgen.errors import HostError
from wasmgen.host import (
    Action,
    HeaderMap,
    HttpRequest,
    HttpResponse,
    HttpResult,
    LogLevel,
    ProxyWasmHost,
)
from wasmgen.wasm.abi import Header
from wasmgen.wasm.compat import Target, parse_target

raw_wasm = conftest_host.raw_wasm
sdk_wasm = conftest_host.sdk_wasm
raw_command_wasm = conftest_host.raw_command_wasm

S18, S45 = parse_target("1.28", None), parse_target("1.31", None)
PSEUDO = [(":authority", "localhost"), (":path", "/"), (":method", "GET"), (":scheme", "http")]

# A plugin written in WAT: adds "x-wat: hello" to requests; nothing else.
WAT_PLUGIN = """(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x-wat")
  (data (i32.const 32) "hello")
  (data (i32.const 48) "starting")
  (global $heap (mut i32) (i32.const 1024))
  (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 48) (i32.const 8))) INIT)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get 0))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 5)))
    (i32.const 0)))
"""


def wat_plugin(init: str = "") -> bytes:
    return bytes(wasmtime.wat2wasm(WAT_PLUGIN.replace("INIT", init)))


def raw(script: str, wasm: bytes, **kwargs: Any) -> ProxyWasmHost:
    """A started host running tests/plugins/rawabi with the given script as configuration."""
    host = ProxyWasmHost(wasm, plugin_config=script.encode(), **kwargs)
    assert host.start()
    return host


def added(result: HttpResult, name: str, response: bool = False) -> str | None:
    headers = result.response_headers if response else result.request_headers
    return HeaderMap(headers or ()).get(name)


# -- fast: hand-written modules --------------------------------------------------------


def test_minimal_abi_plugin_adds_a_header() -> None:
    host = ProxyWasmHost(wat_plugin())
    assert host.start()
    result = host.http_request(HttpRequest(headers=[("X-Up", "1")]))
    assert result.request_headers == (*PSEUDO, ("x-up", "1"), ("x-wat", "hello"))
    assert result.response_action is None and result.local_response is None
    assert host.logs("info") == ["starting"] and host.log_entries[0].context_id == 0
    assert result.fuel["request_headers"] > 0 and "initialize" in host.fuel_by_phase
    assert host.fuel_consumed == sum(host.fuel_by_phase.values())


def test_host_allocates_with_malloc_when_the_module_exports_it() -> None:
    """Envoy prefers an exported malloc over proxy_on_memory_allocate; so does the host (here
    proxy_on_memory_allocate traps, so using it would fail the VM)."""
    wat = """(module
      (import "env" "proxy_get_header_map_value"
        (func $get (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_add_header_map_value"
        (func $add (param i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "x-up")
      (data (i32.const 32) "x-seen")
      (global $heap (mut i32) (i32.const 1024))
      (func (export "_initialize"))
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32)
        (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get 0))))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (unreachable))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $get (i32.const 0) (i32.const 16) (i32.const 4) (i32.const 64) (i32.const 68)))
        (drop (call $add (i32.const 0) (i32.const 32) (i32.const 6)
                         (i32.load (i32.const 64)) (i32.load (i32.const 68))))
        (i32.const 0)))"""
    host = ProxyWasmHost(bytes(wasmtime.wat2wasm(wat)))
    assert host.start()
    result = host.http_request(HttpRequest(headers=[("x-up", "copied")]))
    assert added(result, "x-seen") == "copied" and host.failure is None


def test_trap_in_initialize_reports_reason_and_logs() -> None:
    host = ProxyWasmHost(wat_plugin("(unreachable)"))
    with pytest.raises(HostError) as err:
        host.start()
    message = err.value.message
    assert message.startswith("_initialize trapped: wasm `unreachable` instruction executed")
    assert "[info] starting" in message
    with pytest.raises(HostError, match="failed earlier"):
        host.start()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GIF89a not wasm", "not a WebAssembly module"),
        (bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1))')), "proxy_abi_version"),
        (
            bytes(wasmtime.wat2wasm('(module (func (export "proxy_abi_version_0_2_1")))')),
            "no exported memory",
        ),
    ],
)
def test_unloadable_modules_give_one_line_reasons(data: bytes, expected: str) -> None:
    with pytest.raises(HostError) as err:
        ProxyWasmHost(data)
    assert expected in err.value.message and "\n" not in err.value.message


def test_every_missing_import_is_listed_before_running() -> None:
    extra = "".join(
        f'(import "wasi_snapshot_preview1" "{name}" (func (param i32) (result i32)))'
        for name in ("sock_accept", "fd_readdir", "path_filestat_get")
    )
    wat = WAT_PLUGIN.replace("(module", "(module " + extra, 1).replace("INIT", "")
    data = bytes(wasmtime.wat2wasm(wat))
    with pytest.raises(HostError) as err:
        ProxyWasmHost(data, target=S18)
    assert err.value.message == (
        "Istio 1.28 (Envoy 1.36) cannot load this module: 3 missing import(s): "
        "wasi_snapshot_preview1.fd_readdir, wasi_snapshot_preview1.path_filestat_get, "
        "wasi_snapshot_preview1.sock_accept"
    )
    ProxyWasmHost(data, target=S45)  # S45 has all three (stubbed with ENOSYS)


def test_wrong_import_signature_fails_to_link() -> None:
    extra = '(import "env" "proxy_get_property" (func (param i32) (result i32)))'
    wat = WAT_PLUGIN.replace("(memory", extra + "(memory", 1).replace("INIT", "")
    with pytest.raises(HostError, match="incompatible import type for `env::proxy_get_property`"):
        ProxyWasmHost(bytes(wasmtime.wat2wasm(wat)))


def test_invalid_code_is_reported_with_its_cause() -> None:
    bad = WAT_PLUGIN.replace("(i32.const 0)))", "))", 1).replace("INIT", "")
    with pytest.raises(HostError) as err:
        ProxyWasmHost(bytes(wasmtime.wat2wasm(bad)))
    assert err.value.message.startswith("invalid WebAssembly module: failed to compile")
    assert "type mismatch" in err.value.message and "\n" not in err.value.message


def test_header_map_semantics() -> None:
    hm = HeaderMap([("X-A", "1"), (":path", "/"), ("x-a", "2"), ("x-b", "3")])
    assert hm.pairs == [(":path", "/"), ("x-a", "1"), ("x-a", "2"), ("x-b", "3")]
    assert hm.get("X-A") == "1"
    hm.add(":method", "GET")  # pseudo-headers stay in front
    hm.replace("x-a", "r")  # Envoy's setCopy: every x-a goes, one is appended
    assert hm.pairs == [(":path", "/"), (":method", "GET"), ("x-b", "3"), ("x-a", "r")]
    hm.remove("X-B")
    assert hm.get("x-b") is None


# -- slow: Go plugins ------------------------------------------------------------------

slow = pytest.mark.slow
DUPS: Sequence[Header] = [("x-dup", "1"), ("x-dup", "2"), ("x-keep", "k"), ("x-empty", "")]


@slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("req get x-dup x-got", [*PSEUDO, *DUPS, ("x-got", "0:1")]),  # the first value
        ("req get x-empty x-got", [*PSEUDO, *DUPS, ("x-got", "0:")]),  # empty is a value
        ("req get X-Missing x-got", [*PSEUDO, *DUPS, ("x-got", "1:")]),  # NOT_FOUND
        ("req get server x-got resp", [*PSEUDO, *DUPS, ("x-got", "2:")]),  # no response yet
        ("req add X-Dup 3", [*PSEUDO, *DUPS, ("x-dup", "3")]),
        ("req replace x-dup r", [*PSEUDO, *DUPS[2:], ("x-dup", "r")]),
        ("req replace x-new n", [*PSEUDO, *DUPS, ("x-new", "n")]),
        ("req remove x-dup", [*PSEUDO, *DUPS[2:]]),
        ("req add :x v", [*PSEUDO, (":x", "v"), *DUPS]),
        ("req setpairs a=1|B=2", [("a", "1"), ("b", "2")]),
    ],
)
def test_header_operations_follow_envoy(
    raw_wasm: bytes, script: str, expected: list[Header]
) -> None:
    result = raw(script, raw_wasm).http_request(HttpRequest(headers=DUPS))
    assert list(result.request_headers) == expected


@slow
def test_header_pairs_serialization(raw_wasm: bytes) -> None:
    result = raw("req pairs x-pairs", raw_wasm).http_request(HttpRequest(headers=[("a", "b")]))
    assert added(result, "x-pairs") == "0::authority=localhost|:path=/|:method=GET|:scheme=http|a=b"


@slow
def test_request_headers_are_visible_in_the_response_phase(raw_wasm: bytes) -> None:
    host = raw("resp get x-keep x-copied req\nresp add x-resp 1", raw_wasm)
    result = host.http_request(HttpRequest(headers=DUPS), HttpResponse(204, [("server", "up")]))
    assert result.response_headers == (
        (":status", "204"),
        ("server", "up"),
        ("x-copied", "0:k"),
        ("x-resp", "1"),
    )
    assert result.response_action == Action.CONTINUE


@slow
def test_properties(raw_wasm: bytes) -> None:
    script = "\n".join(
        [
            "req prop request.path x-path",
            "req prop request.url_path x-url-path",
            "req prop request.host x-host",
            "req prop request.method x-method",
            "req prop request.id x-id",
            "req prop source.address x-source",
            "req propint destination.port x-dport",
            "req prop plugin_name x-plugin",
            "req prop custom.thing x-custom",
            "req prop no.such x-none",
            "req propint response.code x-early",
            "resp propint response.code x-code",
        ]
    )
    host = raw(script, raw_wasm, plugin_name="ns.headers", properties={"custom.thing": "v"})
    request = HttpRequest("POST", "/a?b=1", "example.com", headers=[("x-request-id", "r1")])
    result = host.http_request(request, HttpResponse(404))
    assert [
        (k, v) for k, v in result.request_headers if k.startswith("x-") and k != "x-request-id"
    ] == [
        ("x-path", "0:/a?b=1"),
        ("x-url-path", "0:/a"),
        ("x-host", "0:example.com"),
        ("x-method", "0:POST"),
        ("x-id", "0:r1"),
        ("x-source", "0:127.0.0.1:40000"),
        ("x-dport", "0:8080"),
        ("x-plugin", "0:ns.headers"),
        ("x-custom", "0:v"),
        ("x-none", "1:"),
        ("x-early", "1:"),
    ]
    assert added(result, "x-code", response=True) == "0:404"


@slow
def test_local_response_stops_the_stream(raw_wasm: bytes) -> None:
    result = raw("req local 401 nope\nresp add x-never 1", raw_wasm).http_request(
        HttpRequest(), HttpResponse()
    )
    local = result.local_response
    assert local is not None and (local.status, local.body, local.details) == (
        401,
        b"nope",
        "rawabi_denied",
    )
    assert local.headers == (("x-local", "yes"), ("content-type", "text/plain"))
    assert result.request_action == Action.PAUSE and result.response_headers is None
    assert [e.phase for e in result.logs] == ["request_headers", "log"]  # on_log still runs


@slow
def test_pause_without_reply_does_not_reach_upstream(raw_wasm: bytes) -> None:
    result = raw("req pause", raw_wasm).http_request(HttpRequest(), HttpResponse())
    assert result.request_action == Action.PAUSE and result.response_headers is None


@slow
@pytest.mark.parametrize(("target", "expected"), [(S18, "52:12345"), (S45, "0:0")])
def test_poll_oneoff_stub_per_wasi_set(raw_wasm: bytes, target: Target, expected: str) -> None:
    result = raw("req poll x-poll", raw_wasm, target=target).http_request(HttpRequest())
    assert added(result, "x-poll") == expected  # S18 leaves nevents unwritten


@slow
def test_wasi_stubs(raw_wasm: bytes) -> None:
    script = "\n".join(
        [
            "req random 65536 x-r1",
            "req random 65537 x-r2",
            "req env FOO x-env",
            "req env BAR x-bar",
            "req stdout hello out",
            "req stderr oops",
            "req exit",
        ]
    )
    host = raw(script, raw_wasm, env={"FOO": "bar"})
    result = host.http_request(HttpRequest())
    assert [added(result, h) for h in ("x-r1", "x-r2", "x-env", "x-bar")] == [
        "0",
        "28",
        "bar",
        "<unset>",
    ]
    assert added(result, "x-after-exit") == "1"  # proc_exit in a callback just returns
    assert any("proc_exit(7)" in e for e in host.events)
    assert host.logs(LogLevel.INFO)[-2:] == ["hello out", "log phase 2"]
    assert host.logs("error") == ["oops"]


@slow
def test_stream_api_for_a_reverse_proxy(raw_wasm: bytes) -> None:
    host = raw("req add x-up 1\nresp add x-down 1", raw_wasm)
    stream = host.open_stream()
    assert stream.on_request_headers(HttpRequest(path="/p").header_list()) == Action.CONTINUE
    assert stream.request_headers is not None and stream.request_headers.get("x-up") == "1"
    assert stream.on_response_headers([(":status", "200")], end_of_stream=True) == Action.CONTINUE
    assert stream.response_headers is not None
    assert stream.response_headers.pairs == [(":status", "200"), ("x-down", "1")]
    stream.finish()
    assert list(stream.fuel) == [
        "context_create",
        "request_headers",
        "response_headers",
        "done",
        "log",
        "delete",
    ]
    assert stream.logs[-1].message == f"log phase {stream.context_id}"
    with pytest.raises(HostError, match="after the stream ended"):
        stream.on_response_headers([(":status", "200")])
    host.close()


@slow
def test_panic_in_a_callback_on_s18_explains_poll_oneoff(raw_wasm: bytes) -> None:
    host = raw("req panic boom", raw_wasm, target=S18)
    with pytest.raises(HostError) as err:
        host.http_request(HttpRequest())
    assert err.value.message.startswith("proxy_on_request_headers trapped: wasm `unreachable`")
    assert "fatal error: wasi_snapshot_preview1.poll_oneoff" in err.value.message
    assert err.value.hint and "golang/go#78513" in err.value.hint


@slow
def test_panic_in_a_callback_on_s45_shows_the_panic(raw_wasm: bytes) -> None:
    host = raw("req panic boom", raw_wasm, target=S45)
    with pytest.raises(HostError) as err:
        host.http_request(HttpRequest())
    assert "[error] panic: rawabi: boom" in err.value.message
    with pytest.raises(HostError, match="the VM failed earlier"):
        host.http_request(HttpRequest())


@slow
def test_panic_in_init(raw_wasm: bytes) -> None:
    env = {"RAWABI_PANIC_IN_INIT": "bad"}
    with pytest.raises(HostError) as err:
        ProxyWasmHost(raw_wasm, env=env, target=S45).start()
    assert err.value.message.startswith("_initialize trapped: wasm `unreachable`")
    assert "[error] panic: init failed: bad" in err.value.message
    with pytest.raises(HostError) as err:  # before Envoy 1.39 the runtime cannot even print it
        ProxyWasmHost(raw_wasm, env=env, target=S18).start()
    assert "poll_oneoff called while the VM starts" in err.value.message


@slow
def test_proc_exit_in_init_traps(raw_wasm: bytes) -> None:
    with pytest.raises(HostError, match="proc_exit called while the VM starts"):
        ProxyWasmHost(raw_wasm, env={"RAWABI_EXIT_IN_INIT": "1"}).start()


@slow
def test_endless_loop_runs_out_of_fuel(raw_wasm: bytes) -> None:
    host = raw("req spin", raw_wasm, fuel_limit=20_000_000)
    with pytest.raises(HostError, match="endless loop"):
        host.http_request(HttpRequest())


@slow
def test_command_module_is_rejected_at_start(raw_command_wasm: bytes) -> None:
    host = ProxyWasmHost(raw_command_wasm)
    with pytest.raises(HostError) as err:
        host.start()
    assert err.value.message.startswith("_start trapped:") and "\n" not in err.value.message
    assert err.value.hint and "-buildmode=c-shared" in err.value.hint


@slow
def test_sdk_plugin_edits_headers(sdk_wasm: bytes) -> None:
    host = ProxyWasmHost(sdk_wasm, plugin_config=b"tag-1", plugin_name="ns.plugin")
    assert host.start()
    assert host.logs("info") == ['configured with tag "tag-1"']
    request = HttpRequest(
        path="/get",
        headers=[("x-replace-me", "old"), ("x-remove-me", "x"), ("x-request-id", "abc")],
    )
    response = HttpResponse(200, [("server", "envoy"), ("x-powered-by", "php"), ("a", "b")])
    result = host.http_request(request, response)
    assert result.request_headers == (
        (":authority", "localhost"),
        (":path", "/get"),
        (":method", "GET"),
        (":scheme", "http"),
        ("x-request-id", "abc"),
        ("x-wasm-tag", "tag-1"),
        ("x-replace-me", "replaced"),  # replace moved it to the end, as in Envoy
        ("x-wasm-path", "/get"),
        ("x-wasm-source", "127.0.0.1:40000"),
        ("x-wasm-plugin", "ns.plugin"),
    )
    assert result.response_headers == (
        (":status", "200"),
        ("a", "b"),
        ("x-wasm-resp", "1"),
        ("server", "wasmgen"),
        ("x-wasm-status", "200"),
        ("x-echo-request-id", "abc"),
    )
    assert [e.message for e in result.logs] == ["request headers: 7", "stream done"]
    assert result.total_fuel > 1000


@slow
def test_sdk_plugin_configure_failure(sdk_wasm: bytes) -> None:
    host = ProxyWasmHost(sdk_wasm, plugin_config=b"fail: bad")
    assert host.start() is False
    assert host.logs(LogLevel.CRITICAL) == ['invalid plugin configuration: "fail: bad"']
    with pytest.raises(HostError, match="not started"):
        host.http_request(HttpRequest())


@slow
def test_sdk_plugin_local_response(sdk_wasm: bytes) -> None:
    host = ProxyWasmHost(sdk_wasm)
    assert host.start()
    result = host.http_request(HttpRequest(headers=[("x-deny", "1")]), HttpResponse())
    assert result.local_response is not None
    assert result.local_response.status == 403
    assert result.local_response.headers == (("x-denied-by", "sdkheaders"),)
    assert result.local_response.body == b"denied by wasm\n"
    assert result.response_headers is None
    assert "denying request" in host.logs("warn")


@slow
def test_sdk_plugin_does_not_load_on_istio_1_24(sdk_wasm: bytes) -> None:
    with pytest.raises(HostError) as err:
        ProxyWasmHost(sdk_wasm, target=parse_target("1.24", None))
    assert err.value.message == (
        "Istio 1.24 (Envoy 1.32) cannot load this module: 3 missing import(s): "
        "wasi_snapshot_preview1.fd_fdstat_set_flags, wasi_snapshot_preview1.poll_oneoff, "
        "wasi_snapshot_preview1.sched_yield"
    )


@slow
@pytest.mark.parametrize(
    "request_headers",
    [
        [("x-replace-me", "old"), ("x-remove-me", "x"), ("x-request-id", "abc")],
        [("x-deny", "yes"), ("x-request-id", "abc")],
    ],
    ids=["edits", "local-response"],
)
def test_same_result_as_the_sdk_wazero_host(
    sdk_wasm: bytes, request_headers: list[Header], tmp_path: Path
) -> None:
    """proxytest.NewWasmVMContext runs the same .wasm; headers must agree (order aside)."""
    request = HttpRequest(path="/get", headers=request_headers)
    response = HttpResponse(200, [("server", "envoy"), ("x-powered-by", "php")])
    host = ProxyWasmHost(sdk_wasm, plugin_config=b"tag-x", plugin_name="ns.p")
    assert host.start()
    ours = host.http_request(request, response)
    theirs = run_proxytest(
        build_plugin("sdkheaders"),
        {
            "plugin_config": "tag-x",
            "properties": {
                "plugin_name": b"ns.p".hex(),
                "source.address": b"127.0.0.1:40000".hex(),
                "request.path": b"/get".hex(),
                "response.code": (200).to_bytes(8, "little").hex(),
            },
            "request_headers": request.header_list(),
            "response_headers": response.header_list(),
        },
        tmp_path,
    )
    assert theirs["configured"]
    # proxytest's replace overwrites in place while Envoy (and this host) append: compare sets.
    assert sorted(map(tuple, theirs["request_headers"])) == sorted(ours.request_headers)
    if ours.local_response is None:
        assert theirs["local_response"] is None and ours.response_headers is not None
        assert sorted(map(tuple, theirs["response_headers"])) == sorted(ours.response_headers)
    else:
        local = theirs["local_response"]
        assert (local["status"], local["body"].encode()) == (403, ours.local_response.body)
        assert [tuple(h) for h in local["headers"]] == list(ours.local_response.headers)
    assert theirs["info_logs"] == host.logs("info")
