"""Opt-in Envoy surroundings: what the upstream and the client receive around the plugin.

Each case replays one of docs/envoy-behaviour.md section a's experiments (Envoy 1.36.4,
1.38.2 and 1.40.0; tests/test_envoy_probes.py runs them in real Envoy) with tests/plugins/rawabi in place of the probe plugin, or
one of its "examples" findings with a generated plugin. Volatile values (date, a generated
x-request-id, x-envoy-upstream-service-time) are compared by presence only, as a comparison
with real Envoy must.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wasmgen.host import HttpRequest, HttpResponse, HttpResult, ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.pipeline import Built
from wasmgen.wasm.abi import Header

pytestmark = pytest.mark.slow

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OK3 = [("content-length", "3")]  # the lab upstream's "ok\n"


def started(wasm: bytes, script: str) -> ProxyWasmHost:
    host = ProxyWasmHost(wasm, plugin_config=script.encode())
    assert host.start()
    return host


def shown(headers: tuple[Header, ...], volatile: frozenset[str]) -> list[Header]:
    """Headers with volatile values replaced by "*": compared by presence only."""
    return [(k, "*" if k in volatile else v) for k, v in headers]


def client(result: HttpResult) -> list[Header]:
    assert result.client is not None
    return shown(result.client.headers, result.volatile)


def upstream(result: HttpResult) -> list[Header]:
    assert result.upstream is not None
    return shown(result.upstream.headers, result.volatile)


def run(
    wasm: bytes,
    script: str,
    response: list[Header],
    *,
    method: str = "GET",
    request: list[Header] | None = None,
    sht: str = "OVERWRITE",
    response_end: bool = False,
) -> HttpResult:
    envoy = EnvoySurroundings(server_header_transformation=sht)  # type: ignore[arg-type]
    return started(wasm, script).http_request(
        HttpRequest(method, "/a", headers=request or []),
        HttpResponse(200, response, end_of_stream=response_end),
        envoy=envoy,
    )


def test_plain_get(raw_wasm: bytes) -> None:
    # a "plain, upstream sends no server/date": the plugin sees x-forwarded-proto and a
    # generated x-request-id; the upstream gets host first, then x-envoy-expected-rq-timeout-ms;
    # the client gets x-envoy-upstream-service-time, date and server: envoy.
    result = run(raw_wasm, "req pairs x-seen", OK3)
    assert {"date", "x-request-id", "x-envoy-upstream-service-time"} <= result.volatile
    rid = dict(result.request_headers)["x-request-id"]
    assert UUID.match(rid)
    assert dict(result.request_headers)["x-seen"] == (
        "0::authority=localhost|:path=/a|:method=GET|:scheme=http|x-forwarded-proto=http|"
        f"x-request-id={rid}"
    )
    assert result.upstream is not None
    assert (result.upstream.method, result.upstream.path) == ("GET", "/a")
    assert upstream(result) == [("host", "localhost"), ("x-forwarded-proto", "http"),
                                ("x-request-id", "*"), ("x-seen", result.request_headers[-1][1]),
                                ("x-envoy-expected-rq-timeout-ms", "15000")]  # fmt: skip
    assert result.response_headers == ((":status", "200"), ("content-length", "3"),
                                       ("x-envoy-upstream-service-time", "0"))  # fmt: skip
    assert client(result) == [("content-length", "3"), ("x-envoy-upstream-service-time", "*"),
                              ("date", "*"), ("server", "envoy")]  # fmt: skip
    assert result.client is not None and result.client.status == 200 and not result.client.local


def test_upstream_server_date_and_service_time(raw_wasm: bytes) -> None:
    # a "upstream sends Server+Date+X-Envoy-Upstream-Service-Time": the plugin sees the router's
    # value in the upstream's place; server is overwritten in place, date kept.
    date = "Mon, 01 Jan 2001 00:00:00 GMT"
    sent = [("server", "gunicorn/21"), ("date", date), ("x-envoy-upstream-service-time", "999"),
            *OK3]  # fmt: skip
    result = run(raw_wasm, "", sent)
    assert result.response_headers == ((":status", "200"), ("server", "gunicorn/21"),
                                       ("date", date), ("x-envoy-upstream-service-time", "0"),
                                       *OK3)  # fmt: skip
    assert "date" not in result.volatile
    assert client(result) == [("server", "envoy"), ("date", date),
                              ("x-envoy-upstream-service-time", "*"), *OK3]  # fmt: skip


@pytest.mark.parametrize(
    ("sht", "upstream_server", "expected"),
    [
        ("OVERWRITE", True, "envoy"),
        ("OVERWRITE", False, "envoy"),
        ("APPEND_IF_ABSENT", True, "envoy"),  # a remove is undone
        ("PASS_THROUGH", True, None),  # only here a removal holds
    ],
)
def test_plugin_removes_server(
    raw_wasm: bytes, sht: str, upstream_server: bool, expected: str | None
) -> None:
    # a "plugin removes server" + the server row of the response-side table.
    sent = [("server", "gunicorn/21"), *OK3] if upstream_server else OK3
    result = run(raw_wasm, "resp remove server", sent, sht=sht)
    assert dict(client(result)).get("server") == expected


@pytest.mark.parametrize(
    ("sht", "expected"),
    [("OVERWRITE", "envoy"), ("APPEND_IF_ABSENT", "mine"), ("PASS_THROUGH", "mine")],
)
def test_plugin_replaces_server(raw_wasm: bytes, sht: str, expected: str) -> None:
    # a "plugin replaces server": OVERWRITE ignores the plugin's value.
    result = run(raw_wasm, "resp replace server mine", [("server", "gunicorn/21"), *OK3], sht=sht)
    assert client(result) == [*OK3, ("x-envoy-upstream-service-time", "*"),
                              ("server", expected), ("date", "*")]  # fmt: skip


def test_upstream_server_passes_through_only_with_pass_through(raw_wasm: bytes) -> None:
    sent = [("server", "gunicorn/21"), *OK3]
    assert dict(client(run(raw_wasm, "", sent, sht="PASS_THROUGH")))["server"] == "gunicorn/21"
    assert dict(client(run(raw_wasm, "", OK3, sht="PASS_THROUGH"))).get("server") is None
    assert dict(client(run(raw_wasm, "", OK3, sht="APPEND_IF_ABSENT")))["server"] == "envoy"


def test_plugin_removes_date_service_time_and_length(raw_wasm: bytes) -> None:
    # a "plugin removes date, x-envoy-upstream-service-time, content-length": date is re-added,
    # the service time stays removed, and Envoy chunks the body.
    script = (
        "resp remove date\nresp remove x-envoy-upstream-service-time\nresp remove content-length"
    )
    result = run(raw_wasm, script, OK3)
    assert client(result) == [("date", "*"), ("server", "envoy"), ("transfer-encoding", "chunked")]


def test_plugin_sets_date_and_service_time(raw_wasm: bytes) -> None:
    # a "plugin sets date and x-envoy-upstream-service-time": both stick.
    script = "resp replace date plugin-date\nresp replace x-envoy-upstream-service-time 7"
    result = run(raw_wasm, script, OK3)
    assert result.client is not None
    assert result.client.headers == (*OK3, ("date", "plugin-date"),
                                     ("x-envoy-upstream-service-time", "7"),
                                     ("server", "envoy"))  # fmt: skip


@pytest.mark.parametrize(("sht", "server"), [("OVERWRITE", [("server", "envoy")]),
                                             ("PASS_THROUGH", [])])  # fmt: skip
def test_head_keeps_the_upstream_length(raw_wasm: bytes, sht: str, server: list[Header]) -> None:
    # a "HEAD, upstream CL 604": no body, content-length 604 kept.
    sent = [("content-type", "application/json"), ("content-length", "604")]
    result = run(raw_wasm, "", sent, method="HEAD", sht=sht)
    assert client(result) == [*sent, ("x-envoy-upstream-service-time", "*"), ("date", "*"),
                              *server]  # fmt: skip


def test_head_without_length_is_chunked(raw_wasm: bytes) -> None:
    # a "HEAD, plugin removes content-length": transfer-encoding: chunked, no body.
    result = run(raw_wasm, "resp remove content-length", [("content-length", "604")], method="HEAD")
    assert client(result) == [("x-envoy-upstream-service-time", "*"), ("date", "*"),
                              ("server", "envoy"), ("transfer-encoding", "chunked")]  # fmt: skip


@pytest.mark.parametrize("script", ["", "resp remove transfer-encoding"])
def test_chunked_upstream_stays_chunked(raw_wasm: bytes, script: str) -> None:
    # a "upstream chunked (no CL)" / "plugin removes transfer-encoding on chunked": the plugin
    # sees transfer-encoding: chunked; Envoy chunks for the client whatever the plugin did.
    sent = [("transfer-encoding", "chunked")]
    result = run(raw_wasm, script + "\nresp get transfer-encoding x-te", sent)
    seen = "1:" if script else "0:chunked"  # NOT_FOUND after the plugin's remove
    assert client(result) == [("x-envoy-upstream-service-time", "*"), ("x-te", seen),
                              ("date", "*"), ("server", "envoy"),
                              ("transfer-encoding", "chunked")]  # fmt: skip


def test_client_request_id_is_kept(raw_wasm: bytes) -> None:
    # a "request: client sends x-request-id": kept, nothing generated.
    result = run(raw_wasm, "", OK3, request=[("x-request-id", "client-rid")])
    assert "x-request-id" not in result.volatile
    assert upstream(result) == [("host", "localhost"), ("x-request-id", "client-rid"),
                                ("x-forwarded-proto", "http"),
                                ("x-envoy-expected-rq-timeout-ms", "15000")]  # fmt: skip


def test_an_empty_client_request_id_is_replaced_where_it_stood(raw_wasm: bytes) -> None:
    # docs/envoy-behaviour.md d: an empty x-request-id counts as none; the new one takes its
    # place in the header list.
    result = run(raw_wasm, "", OK3, request=[("x-request-id", ""), ("x-a", "1")])
    assert "x-request-id" in result.volatile
    assert upstream(result) == [("host", "localhost"), ("x-request-id", "*"), ("x-a", "1"),
                                ("x-forwarded-proto", "http"),
                                ("x-envoy-expected-rq-timeout-ms", "15000")]  # fmt: skip
    assert result.upstream is not None
    assert UUID.match(dict(result.upstream.headers)["x-request-id"])


def test_codecs_trim_spaces_and_tabs_around_values(raw_wasm: bytes) -> None:
    # docs/envoy-behaviour.md d: both HTTP/1 codecs drop the OWS around a value, so neither
    # the plugin nor the upstream nor the client sees it.
    sent = [("x-up", " \tv  w\t "), *OK3]
    result = run(raw_wasm, "req pairs x-seen\nresp get x-up x-up-seen", sent,
                 request=[("x-sp", "\t a  b ")])  # fmt: skip
    assert "|x-sp=a  b|" in dict(result.request_headers)["x-seen"]
    assert ("x-sp", "a  b") in upstream(result)
    assert ("x-up", "v  w") in client(result) and ("x-up-seen", "0:v  w") in client(result)


def test_te_keeps_only_trailers_and_control_headers_never_reach_the_plugin(raw_wasm: bytes) -> None:
    # docs/envoy-behaviour.md d: te is cut to the exact token trailers (or goes); the router's
    # and tracing's control headers and x-forwarded-client-cert are removed; other x-envoy-*
    # pass. The router then sets its own x-envoy-expected-rq-timeout-ms after the filter.
    sent = [("te", "gzip, trailers"), ("x-envoy-retry-on", "5xx"), ("x-envoy-internal", "true"),
            ("x-forwarded-client-cert", "x"), ("x-envoy-expected-rq-timeout-ms", "5"),
            ("x-envoy-original-path", "/x")]  # fmt: skip
    result = run(raw_wasm, "req pairs x-seen", OK3, request=sent)
    seen = dict(result.request_headers)["x-seen"]
    assert "|te=trailers|" in seen and "|x-envoy-original-path=/x|" in seen
    assert "retry" not in seen and "internal" not in seen and "cert" not in seen
    assert "x-envoy-expected-rq-timeout-ms" not in seen
    wire = dict(upstream(result))
    assert wire["te"] == "trailers" and wire["x-envoy-expected-rq-timeout-ms"] == "15000"
    for te in ("Trailers", "trailers;q=0.5", "gzip"):
        assert "te" not in dict(upstream(run(raw_wasm, "", OK3, request=[("te", te)])))


@pytest.mark.parametrize(
    ("method", "framing"),
    [("GET", ("content-length", "0")), ("HEAD", ("transfer-encoding", "chunked"))],
)
def test_a_request_target_with_a_fragment_never_reaches_the_plugin(
    raw_wasm: bytes, method: str, framing: Header
) -> None:
    # docs/envoy-behaviour.md d: Envoy answers 400 itself and closes the connection; no filter
    # runs, nothing reaches the upstream.
    host = started(raw_wasm, "req pairs x-seen\nresp set x-resp 1")
    request = HttpRequest(method, "/a?q=1#top")
    result = host.http_request(request, HttpResponse(200, OK3), envoy=EnvoySurroundings())
    assert result.upstream is None and result.response_headers is None
    assert result.fuel == {} and not result.logs  # the plugin was never called
    assert result.client is not None and result.client.local and result.client.status == 400
    assert client(result) == [("date", "*"), ("server", "envoy"), framing, ("connection", "close")]
    plain = host.http_request(request, HttpResponse(200, OK3))  # without Envoy: the plugin's
    assert "|:path=/a?q=1#top|" in dict(plain.request_headers)["x-seen"]


def test_removing_x_forwarded_proto_is_a_404(raw_wasm: bytes) -> None:
    # a "plugin removes x-request-id, x-forwarded-proto": 404 with date, server: envoy and
    # content-length: 0, no upstream hit; the plugin's response callback saw only :status 404.
    script = "req remove x-request-id\nreq remove x-forwarded-proto\nresp pairs x-seen"
    result = run(raw_wasm, script, OK3)
    assert result.upstream is None and result.response_headers is None
    assert result.client is not None and result.client.local and result.client.status == 404
    assert result.client.details == "route_not_found" and result.client.body == b""
    assert client(result) == [("x-seen", "0::status=404"), ("date", "*"), ("server", "envoy"),
                              ("content-length", "0")]  # fmt: skip


@pytest.mark.parametrize(
    "script", ["req remove x-request-id", "req replace x-forwarded-proto https"]
)
def test_other_request_edits_keep_the_route(raw_wasm: bytes, script: str) -> None:
    # a: "Replacing it (https) works. Removing x-request-id or :scheme is harmless."
    result = run(raw_wasm, script, OK3)
    assert result.upstream is not None and result.client is not None
    assert result.client.status == 200


def test_router_timeout_header_comes_after_the_filter(raw_wasm: bytes) -> None:
    # a "plugin removes x-envoy-expected-rq-timeout-ms, sets x-forwarded-for": the plugin never
    # sees the timeout header and cannot remove it; its x-forwarded-for passes unchanged.
    script = "req remove x-envoy-expected-rq-timeout-ms\nreq replace x-forwarded-for 1.2.3.4"
    result = run(raw_wasm, script, OK3)
    assert upstream(result) == [("host", "localhost"), ("x-forwarded-proto", "http"),
                                ("x-request-id", "*"), ("x-forwarded-for", "1.2.3.4"),
                                ("x-envoy-expected-rq-timeout-ms", "15000")]  # fmt: skip


def test_upstream_request_id_reaches_the_client(raw_wasm: bytes) -> None:
    # a "response: upstream sends x-request-id": passes; Envoy adds none to responses.
    result = run(raw_wasm, "", [("x-request-id", "upstream-rid"), *OK3])
    assert result.client is not None
    assert result.client.headers[:2] == (("x-request-id", "upstream-rid"), *OK3)


def test_connection_headers_are_visible_to_the_plugin_only(raw_wasm: bytes) -> None:
    # a "response: connection keep-alive from upstream": the plugin sees connection; the client
    # does not get it.
    sent = [("connection", "keep-alive"), ("keep-alive", "timeout=5"), *OK3]
    result = run(raw_wasm, "resp get connection x-conn", sent)
    assert dict(result.response_headers or ())["x-conn"] == "0:keep-alive"
    assert client(result) == [*OK3, ("x-envoy-upstream-service-time", "*"),
                              ("x-conn", "0:keep-alive"), ("date", "*"), ("server", "envoy")]  # fmt: skip


@pytest.mark.parametrize(("method", "length"), [("POST", "0"), ("PUT", "0"), ("GET", None)])
def test_body_less_post_gets_content_length_zero(
    raw_wasm: bytes, method: str, length: str | None
) -> None:
    # envoy-behaviour.md a, examples: "content-length: 0 on the body-less POST" (a: POST or PUT).
    result = run(raw_wasm, "", OK3, method=method)
    assert result.upstream is not None and result.upstream.method == method
    assert dict(result.upstream.headers).get("content-length") == length


def test_client_hop_by_hop_headers_never_reach_the_plugin(raw_wasm: bytes) -> None:
    # Envoy's ConnectionManagerUtility::mutateRequestHeaders removes them before the filters.
    request = [("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("x-a", "1")]
    result = run(raw_wasm, "", OK3, request=request)
    assert [k for k, _ in result.request_headers if not k.startswith(":")] == [
        "x-a",
        "x-forwarded-proto",
        "x-request-id",
    ]


@pytest.mark.parametrize(
    ("request_headers", "seen"),
    [
        # every nominated header goes, case-insensitively, across connection lines, inline or not
        (
            [
                ("connection", "close, X-Drop"),
                ("connection", "cache-control"),
                ("x-drop", "1"),
                ("cache-control", "c"),
                ("x-keep", "k"),
            ],
            ["x-keep"],
        ),
        # te stays as "trailers" when it lists trailers, and goes otherwise
        ([("connection", "te"), ("te", "gzip, Trailers")], ["te=trailers"]),
        ([("connection", "te"), ("te", "gzip")], []),
        # option tokens name no header
        ([("connection", "keep-alive, upgrade"), ("x-a", "1")], ["x-a"]),
    ],
)
def test_headers_a_client_nominates_never_reach_the_plugin(
    raw_wasm: bytes, request_headers: list[Header], seen: list[str]
) -> None:
    # Envoy's HTTP/1 codec (Utility::sanitizeConnectionHeader), docs/envoy-behaviour.md a.
    result = run(raw_wasm, "", OK3, request=request_headers)
    got = [f"{k}={v}" if k == "te" else k for k, v in result.request_headers]
    assert [k for k in got if not k.startswith(":")] == [*seen, "x-forwarded-proto", "x-request-id"]


def test_without_surroundings_nothing_is_added(raw_wasm: bytes) -> None:
    result = started(raw_wasm, "").http_request(HttpRequest(), HttpResponse(200, OK3))
    assert result.upstream is None and result.volatile == frozenset()
    assert result.client is not None and result.client.headers == tuple(OK3)
    assert [k for k, _ in result.request_headers] == [":authority", ":path", ":method", ":scheme"]


def test_fixed_request_id_and_date_are_not_volatile(raw_wasm: bytes) -> None:
    envoy = EnvoySurroundings(request_id="rid-1", date="D", upstream_service_time_ms=12)
    result = started(raw_wasm, "").http_request(HttpRequest(), HttpResponse(200, OK3), envoy=envoy)
    assert result.volatile == frozenset({"x-envoy-upstream-service-time"})
    assert result.client is not None and result.upstream is not None
    assert result.client.headers == (*OK3, ("x-envoy-upstream-service-time", "12"), ("date", "D"),
                                     ("server", "envoy"))  # fmt: skip
    assert ("x-request-id", "rid-1") in result.upstream.headers


def test_bad_transformation_is_refused() -> None:
    with pytest.raises(ValueError, match="PASS_THROUGH"):
        EnvoySurroundings(server_header_transformation="KEEP")  # type: ignore[arg-type]


# -- generated plugins: envoy-behaviour.md, "Checked in real Envoy" ----------------


def generated(built: dict[str, Built], config: dict[str, Any]) -> ProxyWasmHost:
    wasm = built["api-errors"].wasm.read_bytes()  # any generated plugin: the rules are config
    host = ProxyWasmHost(wasm, plugin_config=json.dumps(config).encode())
    assert host.start(), host.logs()
    return host


def test_router_service_time_beats_the_upstreams(built_dynamic: dict[str, Built]) -> None:
    # api-errors "success keeps its caching and timing" FAILs in Envoy: the client gets the
    # router's x-envoy-upstream-service-time (0), not the upstream's "3"; on a 5xx the
    # plugin's remove of x-envoy-* sticks. The generated x-request-id the plugin copies
    # reaches the client (examples: "x-request-id: <uuid>").
    config = {
        "response": [
            {
                "copyFromRequest": {"x-request-id": "x-request-id"},
                "when": {"path": {"prefix": "/api/"}},
            },
            {"remove": ["x-envoy-*"], "when": {"status": ["5xx"]}},
        ]
    }
    host = generated(built_dynamic, config)
    sent = [("x-envoy-upstream-service-time", "3"), ("cache-control", "max-age=60"), *OK3]
    request = HttpRequest(path="/api/v2/orders")
    result = host.http_request(request, HttpResponse(200, sent), envoy=EnvoySurroundings())
    assert result.client is not None and result.upstream is not None
    got = dict(result.client.headers)
    assert got["x-envoy-upstream-service-time"] == "0" and got["cache-control"] == "max-age=60"
    assert got["x-request-id"] == dict(result.upstream.headers)["x-request-id"]
    assert "x-request-id" in result.volatile
    result = host.http_request(request, HttpResponse(503, sent), envoy=EnvoySurroundings())
    assert result.client is not None and "x-envoy-upstream-service-time" not in dict(
        result.client.headers
    )


def test_upstream_view_of_a_generated_plugins_request(built_dynamic: dict[str, Built]) -> None:
    # examples, "Upstream request: host, x-forwarded-proto: http, x-request-id: <uuid> (unless
    # the client sent one), x-envoy-expected-rq-timeout-ms: 15000, and content-length: 0 on the
    # body-less POST".
    config = {"request": [{"remove": ["x-debug-*"]}, {"set": {"x-forwarded-by": "guard"}}]}
    host = generated(built_dynamic, config)
    request = HttpRequest("POST", "/anything", headers=[("x-debug-level", "9")])
    result = host.http_request(request, HttpResponse(200, OK3), envoy=EnvoySurroundings())
    assert upstream(result) == [("host", "localhost"), ("x-forwarded-proto", "http"),
                                ("x-request-id", "*"), ("x-forwarded-by", "guard"),
                                ("x-envoy-expected-rq-timeout-ms", "15000"),
                                ("content-length", "0")]  # fmt: skip
