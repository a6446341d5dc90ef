"""Value expressions (${request.id}, ${path.1}, ...): the spec's checks, what the compiled and
the dynamic plugins write in the embedded host, and their start-up checks of pluginConfig.

The expected values are written out by hand from the README's rules (a request rule reads
the request as earlier rules left it, a response rule the client's; a value whose source is
absent writes nothing), so a mistake shared by the reference model and runtime/expr.go would
still fail here; the model is then checked against the same values.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import ROOT, run_cli, started_plugin
from wasmgen.errors import SpecError
from wasmgen.host import EnvoySurroundings, ProxyWasmHost
from wasmgen.pipeline import Built, build
from wasmgen.plan import Backend, make_plan
from wasmgen.semantics import model
from wasmgen.semantics.values import http_date
from wasmgen.spec import validate
from wasmgen.spec.expr import Ref, parse

REGEX = "^/u/(?P<user>[a-z]+)(/.*)?$"
SPEC = {
    "name": "value-expressions",
    "image": "r.io/p:v1",
    "request": [
        {"set": {"x-copy": "${request.header.x-in}"}},
        {"set": {"x-in": "changed"}},
        {"set": {"x-after": "${request.header.x-in}"}},  # after request[1]
        {
            "set": {
                "x-path": "${request.path}",
                "x-q": "${request.query.q}",
                "x-m": "${request.method}",
                "x-h": "${request.host}",
                "x-id": "${request.id}",
                "x-src": "${source.address}",
                "x-dollar": "$$${request.query.q}$$",
                "x-c": "${request.cookie.sid}",
            }
        },
        {"set": {"cookie": "sid=changed"}, "when": {"cookie": [{"name": "sid", "present": True}]}},
        {"set": {"x-t": "${time.http}", "x-u": "at ${time.unix}"}},
        {
            "set": {"x-user": "${path.user}", "x-tail": "${path.2}"},
            "when": {"path": {"regex": REGEX}},
        },
    ],
    "response": [
        {"set": {"x-status": "${response.status}", "x-up-was": "${response.header.x-up}"}},
        {"set": {"x-up": "edited"}},
        {"set": {"x-up-now": "${response.header.x-up}"}},  # after response[1]
        {
            "set": {
                "x-client-in": "${request.header.x-in}",
                "x-client-path": "${request.path}",
                "x-client-sid": "${request.cookie.sid}",
            }
        },
        {
            "addIfAbsent": {"x-resp-user": "user ${path.1}", "x-resp-src": "${source.address}"},
            "when": {"path": {"regex": REGEX}},
        },
    ],
}
NAMES = ("x-t", "x-u", "x-copy", "x-after", "x-path", "x-q", "x-m", "x-h", "x-id", "x-src", "x-dollar",
         "x-user", "x-tail", "x-status", "x-up-was", "x-up-now", "x-client-in", "x-client-path",
         "x-resp-user", "x-resp-src", "x-c", "x-client-sid")  # fmt: skip
# (path, extra request headers, upstream's response headers, what the plugin writes)
CASES = [
    (
        "/",
        {"x-in": "client", "x-request-id": "r-1", "cookie": 'lang=en; sid="s-1"'},
        {"x-up": "u1"},
        {"x-copy": "client", "x-after": "changed", "x-path": "/", "x-m": "GET",
         "x-h": "shop.example", "x-id": "r-1", "x-src": "127.0.0.1", "x-status": "200",
         "x-up-was": "u1", "x-up-now": "edited", "x-client-in": "client", "x-client-path": "/",
         "x-c": "s-1", "x-client-sid": "s-1"},
    ),
    (  # no x-in, no id, no x-up, no cookie: those headers are not written; the rules' others are
        "/u/ann?q=a%20b&q=2",
        {"x-forwarded-for": "10.1.2.3"},
        {},
        {"x-after": "changed", "x-path": "/u/ann", "x-q": "a%20b", "x-m": "GET",
         "x-h": "shop.example", "x-src": "10.1.2.3", "x-dollar": "$a%20b$", "x-user": "ann",
         "x-status": "200", "x-up-now": "edited", "x-client-path": "/u/ann",
         "x-resp-user": "user ann", "x-resp-src": "10.1.2.3"},
    ),
    (  # ?q with no "=" is present and empty; a group that matched is written
        "/u/bo/x/y?q",
        {"x-forwarded-for": "2001:db8::1", "x-in": "",
         "cookie": "SID=up; sid; other=sid=x;\tsid = v2 ; sid=v3"},
        {"x-up": ""},
        {"x-copy": "", "x-after": "changed", "x-path": "/u/bo/x/y", "x-q": "", "x-m": "GET",
         "x-h": "shop.example", "x-src": "2001:db8::1", "x-dollar": "$$", "x-user": "bo",
         "x-tail": "/x/y", "x-status": "200", "x-up-was": "", "x-up-now": "edited",
         "x-client-in": "", "x-client-path": "/u/bo/x/y", "x-resp-user": "user bo",
         "x-resp-src": "2001:db8::1", "x-c": "v2", "x-client-sid": "v2"},
    ),
]  # fmt: skip


# Every test host runs at 2022-01-01T00:00:00Z (the SDK's wazero host cannot be told otherwise).
CLOCK = {"x-t": "Sat, 01 Jan 2022 00:00:00 GMT", "x-u": "at 1640995200"}


def _request(path: str, extra: dict[str, str]) -> list[tuple[str, str]]:
    return [(":authority", "Shop.Example:8080"), (":method", "GET"), (":path", path),
            (":scheme", "http"), *extra.items()]  # fmt: skip


def test_parts() -> None:
    """A value is literal text and references; $$ is a "$" of the text."""
    assert parse("a$$b") == ("a$b",)
    assert parse("${request.id}") == (Ref("request.id"),)
    assert parse("${request.cookie.Sid_1}") == (Ref("request.cookie", "Sid_1"),)
    assert parse("id=${request.header.x-a}; $$${path.1}") == (
        "id=",
        Ref("request.header", "x-a"),
        "; $",
        Ref("path", "1"),
    )


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ProxyWasmHost:
    return started_plugin(SPEC, request, tmp_path_factory, request.param)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "extra", "upstream", "want"), CASES, ids=[c[0] for c in CASES])
def test_each_expression(
    host: ProxyWasmHost,
    path: str,
    extra: dict[str, str],
    upstream: dict[str, str],
    want: dict[str, str],
) -> None:
    request, response = _request(path, extra), [(":status", "200"), *upstream.items()]
    got = host.exchange(request, response)
    written = {n: v for n, v in (*got.request_headers, *(got.response_headers or ())) if n in NAMES}
    assert written == {**want, **CLOCK}
    assert dict(got.request_headers)["x-in"] == "changed"
    assert dict(got.request_headers).get("cookie") == ("sid=changed" if "x-c" in want else None)
    outcome = model.run(make_plan(validate(SPEC)).config, request, response)
    modelled = {n: v for n, v in (*outcome.request, *(outcome.response or ())) if n in NAMES}
    assert modelled == {**want, **CLOCK}, "the model agrees"


@pytest.mark.slow
def test_request_id_envoy_generates_is_echoed(host: ProxyWasmHost) -> None:
    """Without a client x-request-id, the one Envoy adds before the filter is what
    ${request.id} reads (the embedded host models Envoy's connection manager here)."""
    envoy = EnvoySurroundings(request_id="7f6c2a52-0b0e-4a8e-9a55-3c1f1b2d4e61")
    got = host.exchange(_request("/", {}), [(":status", "200")], envoy=envoy)
    assert ("x-id", envoy.request_id) in got.request_headers


# Instants whose HTTP-date the hand-written runtime/expr.go must spell as Python does: the
# epoch, a leap day, the end of a century year that is not leap, 2038 and the year 2499.
INSTANTS = [0, 951782400, 1709164800, 4107542399, 2147483648, 16725225599, 1640995200]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["compiled", "dynamic"])
def test_time_values_follow_the_hosts_clock(tmp_path: Path, backend: Backend) -> None:
    spec = validate({"name": "clock", "image": "r.io/p:v1",
                     "response": [{"set": {"x-t": "${time.http}", "x-u": "${time.unix}"}}]})  # fmt: skip
    built = build(spec, tmp_path, console=Console(quiet=True), backend=backend)
    wasm, config = built.wasm.read_bytes(), built.plan.config_json.encode()
    for seconds in INSTANTS:
        with ProxyWasmHost(wasm, plugin_config=config, clock_ns=seconds * 10**9) as host:
            assert host.start(), host.logs()
            got = dict(
                host.exchange(_request("/", {}), [(":status", "200")]).response_headers or ()
            )
            assert (got["x-t"], got["x-u"]) == (http_date(seconds), str(seconds))
    with ProxyWasmHost(wasm, plugin_config=config, clock_ns=None) as host:  # the real clock
        assert host.start(), host.logs()
        before = int(time.time())
        got = dict(host.exchange(_request("/", {}), [(":status", "200")]).response_headers or ())
        assert before <= int(got["x-u"]) <= int(time.time())
        assert got["x-t"] == http_date(int(got["x-u"]))


@pytest.mark.slow
def test_huge_and_odd_values_do_not_trap(host: ProxyWasmHost) -> None:
    """A 60 KiB header echoed twice, and a request with no pseudo-headers at all."""
    big = "v" * 60_000
    got = host.exchange(_request("/", {"x-in": big}), [(":status", "200"), ("x-up", big)])
    assert ("x-copy", big) in got.request_headers and ("x-up-was", big) in (got.response_headers or ())  # fmt: skip
    bare = host.exchange([("x-in", "1")], [("x-up", "2")])
    assert ("x-copy", "1") in bare.request_headers
    assert not {"x-path", "x-m", "x-h", "x-status"} & {n for n, _ in (*bare.request_headers, *(bare.response_headers or ()))}  # fmt: skip


def _spec_file(tmp_path: Path, rules: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: bad\nimage: r.io/p:v1\n{rules}")
    return spec


def test_every_problem_at_once_at_its_line(tmp_path: Path) -> None:
    spec = _spec_file(
        tmp_path,
        "request:\n"
        '  - set: {x-a: "${request.foo}", x-b: "cost $5", x-c: "${response.status}"}\n'
        '  - set: {x-d: "${path.2}", x-e: "${path.id}"}\n'
        '    when: {path: {regex: "^/u/([0-9]+)"}}\n'
        '  - append: {"x-${a}": "v", x-f: "${path.1}"}\n'
        "response:\n"
        '  - addIfAbsent: {x-g: "${request.header.X-A}", x-h: "${request.query.a&b}", x-i: "${time}",'
        ' x-j: "${request.cookie.a;b}"}\n',
    )
    out = tmp_path / "out"
    result = run_cli("generate", spec, "-o", out)
    assert result.code == 2 and "Traceback" not in result.stderr and not out.exists()
    expected = [
        ("4", "request[0].set.x-a", "unknown expression ${request.foo}; known: request.header.NAME, request.path,"),
        ("4", "request[0].set.x-b", 'write $$ for a literal "$"'),
        ("4", "request[0].set.x-c", "${response.status} is only known to response rules"),
        ("5", "request[1].set.x-d", "${path.2}: the rule's when.path.regex has 1 group(s)"),
        ("5", "request[1].set.x-e", '${path.id}: the rule\'s when.path.regex has no group named "id"'),
        ("7", "request[2].append.x-${a}", "header names are fixed"),
        ("7", "request[2].append.x-f", "${path.1} needs a when.path.regex on the rule"),
        ("9", "response[0].addIfAbsent.x-g", '"X-A" is not a lower-case header name'),
        ("9", "response[0].addIfAbsent.x-h", '"a&b" is not a query parameter name'),
        ("9", "response[0].addIfAbsent.x-i", "unknown expression ${time}; known:"),
        ("9", "response[0].addIfAbsent.x-j", '"a;b" is not a cookie name (an RFC 6265 token'),
    ]  # fmt: skip
    for line, where, message in expected:
        assert any(
            ln.startswith(f"{spec}:{line}:") and f"{where}: " in ln and message in ln
            for ln in result.stderr.splitlines()
        ), (where, result.stderr)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Built:
    spec = wasmgen.load_spec(ROOT / "examples" / "echo-request.yaml")
    return build(spec, tmp_path_factory.mktemp("echo"), console=Console(quiet=True))


def _start(echo: Built, changes: dict[str, str]) -> tuple[bool, str, ProxyWasmHost]:
    config = json.dumps({**echo.plan.plugin_config, **changes}).encode()
    host = ProxyWasmHost(echo.wasm.read_bytes(), plugin_config=config)
    started = host.start()
    return started, "\n".join(host.logs("critical")), host


# A bad value given to x-build (response[2], when.path.regex with one group), and to x-user-id
# (request[0]) for the response-only one.
BAD_VALUES = [
    ("x-build", "${request.foo}"),
    ("x-build", "cost $5"),
    ("x-build", "${request.id"),
    ("x-build", "${path.2}"),
    ("x-build", "${path.id}"),
    ("x-build", "${path.}"),
    ("x-build", "${request.header.X-A}"),
    ("x-build", "${request.query.a&b}"),
    ("x-build", "${request.cookie.a;b}"),
    ("x-build", "${request.cookie.}"),
    ("x-build", "${time.unix"),
    ("x-user-id", "${response.status}"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("header", "value"), BAD_VALUES)
def test_python_and_go_refuse_a_bad_value_in_the_same_words(
    echo: Built, header: str, value: str
) -> None:
    """The spec's check and the plugin's start-up check of the same value say the same."""
    text = (ROOT / "examples" / "echo-request.yaml").read_text()
    slot = next(s for s in echo.plan.values if s.header == header)
    with pytest.raises(SpecError) as refused:
        wasmgen.parse_spec(text.replace(f'"{slot.value}"', json.dumps(value), 1).encode())
    python = [p.message for p in refused.value.problems]
    started, logged, host = _start(echo, {slot.key: value})
    host.close()
    assert not started
    go = logged.split(f"({slot.where}): ", 1)[1]
    assert go in python, (go, python)


@pytest.mark.slow
def test_config_may_reference_what_the_spec_did_not(echo: Built) -> None:
    """A response value may take request-side values the spec's did not: the request callback
    captures whatever the parsed configuration reads."""
    slot = next(s for s in echo.plan.values if s.header == "x-build")
    started, logged, host = _start(echo, {slot.key: "${request.header.x-agent}|${path.1}|${request.query.k}|${request.cookie.k}"})  # fmt: skip
    with host:
        assert started, logged
        sent = {"x-agent": "a1", "cookie": "k=c1"}
        got = host.exchange(_request("/cart/?k=v", sent), [(":status", "200")])
        assert ("x-build", "a1|cart|v|c1") in (got.response_headers or ())


@pytest.mark.slow
def test_an_expression_where_the_spec_has_plain_text_is_refused(echo: Built) -> None:
    """A plain value's code writes it as it is: an expression there fails the start, and
    $$ there is still a literal "$"."""
    slot = next(s for s in echo.plan.values if not s.expr)
    started, logged, host = _start(echo, {slot.key: "${request.id}"})
    host.close()
    assert not started and "put an expression in the spec's value and regenerate" in logged
    assert slot.where in logged


@pytest.fixture(scope="module")
def echo_dynamic(tmp_path_factory: pytest.TempPathFactory) -> Built:
    spec = wasmgen.load_spec(ROOT / "examples" / "echo-request.yaml")
    out = tmp_path_factory.mktemp("echo-dynamic")
    return build(spec, out, console=Console(quiet=True), backend="dynamic")


@pytest.mark.slow
@pytest.mark.parametrize(("header", "value"), BAD_VALUES)
def test_dynamic_plugin_refuses_a_bad_value_in_the_spec_checks_words(
    echo_dynamic: Built, header: str, value: str
) -> None:
    """The dynamic plugin carries the rules: the same bad value in its rule fails the start
    with the spec check's message, after the value's place in the rules."""
    text = (ROOT / "examples" / "echo-request.yaml").read_text()
    slot = next(s for s in echo_dynamic.plan.values if s.header == header)
    with pytest.raises(SpecError) as refused:
        wasmgen.parse_spec(text.replace(f'"{slot.value}"', json.dumps(value), 1).encode())
    python = [p.message for p in refused.value.problems]
    config = json.loads(echo_dynamic.plan.config_json)
    rule = config[slot.phase][slot.index]
    values = rule["respond"]["headers"] if slot.op == "respond" else rule[slot.op]
    values[header] = value
    with ProxyWasmHost(echo_dynamic.wasm.read_bytes(), plugin_config=json.dumps(config).encode()) as host:  # fmt: skip
        assert not host.start()
        logged = "\n".join(host.logs("critical"))
    op = "respond.headers" if slot.op == "respond" else slot.op
    go = logged.split(f"{slot.phase}[{slot.index}].{op}[{json.dumps(header)}]: ", 1)[1]
    assert go in python, (go, python)


@pytest.mark.slow
def test_dynamic_rules_may_change_their_expressions_at_deploy_time(echo_dynamic: Built) -> None:
    """Rules and values are the dynamic plugin's configuration: a new rule with expressions
    written only in pluginConfig works without a rebuild, as the README's rules say."""
    config = json.loads(echo_dynamic.plan.config_json)
    config["response"].append({"set": {"x-new": "${request.header.x-agent}|${path.g}|$$"},
                               "when": {"path": {"regex": "^/(?P<g>[a-z]+)/"}}})  # fmt: skip
    with ProxyWasmHost(echo_dynamic.wasm.read_bytes(), plugin_config=json.dumps(config).encode()) as host:  # fmt: skip
        assert host.start(), host.logs()
        got = host.exchange(_request("/cart/?k=v", {"x-agent": "a1"}), [(":status", "200")])
        assert ("x-new", "a1|cart|$") in (got.response_headers or ())
        got = host.exchange(_request("/cart/", {}), [(":status", "200")])
        assert "x-new" not in dict(got.response_headers or ())


@pytest.mark.slow
def test_dynamic_backend_runs_echo_request_in_both_envoys(tmp_path: Path) -> None:
    """echo-request on the dynamic backend (upstream Go): its cases and derived traffic in the
    embedded host and real Envoy 1.36 and 1.40, and its generated go test (natively and in the
    SDK's wazero host). TinyGo: tests/test_tinygo.py."""
    result = run_cli("test", ROOT / "examples" / "echo-request.yaml", "-o", tmp_path / "dyn",
                     "--toolchain", "go", "--backend", "dynamic", "--envoy", "1.36",
                     "--envoy", "1.40", "--go", timeout=1200)  # fmt: skip
    assert result.code == 0 and " 0 failed" in result.stdout, result.stdout + result.stderr
    assert "in Envoy 1.36" in result.stdout and "in Envoy 1.40" in result.stdout
    assert "go test (native and in the SDK's wazero host): ok" in result.stdout
