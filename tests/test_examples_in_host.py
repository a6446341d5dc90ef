"""Every example's compiled plugin in wasmgen's embedded host: agreement with the SDK's host, the lab's curl."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

import wasmgen
from tests.helpers import EXAMPLES, ROOT, run_cli
from wasmgen.host import HttpRequest, HttpResponse, ProxyWasmHost
from wasmgen.pipeline import Built
from wasmgen.plan import make_plan
from wasmgen.semantics import derive_for
from wasmgen.spec.expected import holds
from wasmgen.testing.runner import exchange

pytestmark = pytest.mark.slow


def _joined(headers: object) -> list[tuple[str, str]]:
    """Values of one name joined in order: Envoy's separate entries and proxytest's concatenation agree."""
    out: dict[str, str] = {}
    for k, v in headers or ():  # type: ignore[attr-defined]
        out[k] = out.get(k, "") + v
    return sorted(out.items())


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_host_agrees_with_the_sdk_wazero_host(
    built_examples: dict[str, Built], example: str
) -> None:
    """The embedded host leaves the same headers the SDK's proxytest host does on the same .wasm.

    The scenarios' want_* lists are what the generated go test asserts of proxytest running
    plugin.wasm in wazero (test_plugin_go.py runs it); here the same bytes run in wasmtime.
    """
    built = built_examples[example]
    plan = make_plan(wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml"))
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=plan.config_json.encode()) as host:
        assert host.start(), host.logs()
        for s in derive_for(plan).scenarios:
            result = exchange(host, s.request, s.response)
            if s.want_local is not None:
                assert (
                    result.local_response is not None
                    and result.local_response.status == s.want_local
                ), s.name
                continue
            if s.want_request is not None:
                assert _joined(result.request_headers) == _joined(s.want_request), s.name
            if s.want_response is not None:
                assert _joined(result.response_headers) == _joined(s.want_response), s.name
            for mapname, name, value in s.checks:  # a rule's own traffic, a case's expectations
                got = result.request_headers if mapname == "request" else result.response_headers
                assert holds(value, dict(_joined(got)).get(name)), (s.name, name)
        assert host.logs("info") == [], "no info-level logging per request"


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_wasmgen_test_passes_every_example(built_examples: dict[str, Built], example: str) -> None:
    """`wasmgen test` reports every rule and case passing."""
    result = run_cli(
        "test", ROOT / "examples" / f"{example}.yaml", "-o", built_examples[example].out_dir
    )
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith(" 0 failed")
    assert "FAIL" not in result.stdout


def test_wasmgen_test_reports_a_failing_expectation(
    built_examples: dict[str, Built], tmp_path: Path
) -> None:
    """A wrong expectation fails with a readable reason and exit code 1."""
    spec = (
        (ROOT / "examples" / "seed-lab.yaml")
        .read_text()
        .replace("header_2: second_header\n        content", "header_2: 2nd\n        content")
    )
    path = tmp_path / "seed.yaml"
    path.write_text(spec)
    junit = tmp_path / "report.xml"
    # its own dir: the shared build stays as generated
    result = run_cli("test", path, "-o", tmp_path / "out", "--junit", junit)
    assert result.code == 1, result.stdout + result.stderr
    assert "FAIL  case  curl --head httpbin:8000/get" in result.stdout
    assert "response header header_2: expected '2nd', got 'second_header'" in result.stdout
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("name") == "wasm-example" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["[embedded host] curl --head httpbin:8000/get"]
    failure = failed[0].find("failure")
    assert failure is not None and "expected '2nd'" in (failure.get("message") or "")


def test_lab_manifest_config_adds_exactly_the_two_headers(built_examples: dict[str, Built]) -> None:
    """Run with the generated WasmPlugin's pluginConfig, a response gains exactly header_1 and header_2."""
    built = built_examples["seed-lab"]
    manifest = yaml.safe_load((built.out_dir / "deploy" / "wasm-plugin.yaml").read_text())
    import json

    config = json.dumps(manifest["spec"]["pluginConfig"]).encode()
    upstream = [("content-type", "application/json"), ("content-length", "604")]
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=config) as host:
        assert host.start()
        result = host.http_request(
            HttpRequest(method="HEAD", path="/get", authority="httpbin:8000"),
            HttpResponse(status=200, headers=upstream),
        )
    assert result.response_headers is not None
    added = [h for h in result.response_headers if h not in [(":status", "200"), *upstream]]
    assert sorted(added) == [("header_1", "first_header"), ("header_2", "second_header")]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (b"header_1: first_header", "not valid JSON"),  # the lab's plugin traps on this
        (b'{"response": [{"set": {"x-a": 7}}]}', 'response[0].set["x-a"]: value must be a string'),
        (b'{"response": [{"set": {"x-a": "a\\nb"}}]}', "control character 0x0a"),
        (b'{"response": [{"sett": {}}]}', "response[0].sett: unknown key"),
        (b"", "configuration is empty"),
    ],
)
def test_bad_runtime_config_fails_start_with_one_critical_line(
    built_dynamic: dict[str, Built], config: bytes, reason: str
) -> None:
    """Bad pluginConfig: on_configure returns false with one critical log naming it; no trap."""
    with ProxyWasmHost(built_dynamic["seed-lab"].wasm.read_bytes(), plugin_config=config) as host:
        assert host.start() is False
        critical = host.logs("critical")
        assert len(critical) == 1 and reason in critical[0], critical
        assert host.failure is None, "the plugin must not trap"


def test_pass_through_on_bad_config(built_examples: dict[str, Built]) -> None:
    """onInvalidConfig: passThrough starts, logs once, and leaves traffic untouched."""
    built = built_examples["request-guard"]
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=b"[1]") as host:
        assert host.start() is True
        assert len(host.logs("critical")) == 1
        result = host.http_request(
            HttpRequest(path="/admin", headers=(("x-debug-a", "1"),)), HttpResponse()
        )
        assert result.local_response is None
        assert ("x-debug-a", "1") in result.request_headers


def test_odd_traffic_passes_without_trapping(built_examples: dict[str, Built]) -> None:
    """Missing pseudo-headers, a non-numeric status, huge and empty values: no trap, rules still safe."""
    built = built_examples["api-errors"]
    plan = make_plan(wasmgen.load_spec(ROOT / "examples" / "api-errors.yaml"))
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=plan.config_json.encode()) as host:
        assert host.start()
        odd = [
            ([], [(":status", "abc")]),
            ([(":path", "")], []),
            ([(":path", "/api/" + "a" * 60000), ("x-request-id", "")], [(":status", "503")]),
            (
                [(":path", "/api/x"), (":method", "GET"), ("x-request-id", "\u00e9")],
                [(":status", "99999999999")],
            ),
        ]
        for req, resp in odd:
            result = exchange(host, req, resp)
            assert result.response_headers is not None
        assert host.failure is None


def test_wasmgen_test_go_runs_both_hosts(built_examples: dict[str, Built]) -> None:
    """`wasmgen test --go` adds the generated go test (native and wazero) to the embedded-host run."""
    built = built_examples["seed-lab"]
    result = run_cli("test", ROOT / "examples" / "seed-lab.yaml", "-o", built.out_dir, "--go")
    assert result.code == 0, result.stdout + result.stderr
    assert "go test (native and in the SDK's wazero host): ok" in result.stdout


def test_a_refused_local_reply_leaves_response_rules_in_force(
    built_dynamic: dict[str, Built],
) -> None:
    """When the host refuses proxy_send_local_response, the request goes upstream and its
    response is still handled by the response rules (the plugin must not think it replied)."""
    built = built_dynamic["request-guard"]
    config = make_plan(wasmgen.load_spec(ROOT / "examples" / "request-guard.yaml")).config
    config = {**config, "response": [{"set": {"x-after": "1"}}]}
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=json.dumps(config).encode()) as host:
        assert host.start(), host.logs()
        host.refuse_local_responses = True
        result = host.http_request(HttpRequest(path="/admin/users"), HttpResponse(status=200))
    assert result.local_response is None
    assert result.response_headers is not None and ("x-after", "1") in result.response_headers
    assert any("cannot send local response" in e.message for e in result.logs)


def test_a_refused_local_reply_in_the_compiled_plugin(tmp_path: Path) -> None:
    """The compiled backend too: a reply the host refuses leaves the response rules in force."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: guard\nselector: {app: x}\nimage: r.io/p:v1\n"
        "request:\n  - respond: {status: 403}\n    when: {path: {prefix: /admin}}\n"
        "response:\n  - set: {x-after: '1'}\n"
    )
    built = wasmgen.build(wasmgen.load_spec(spec), tmp_path / "out", backend="compiled")
    with ProxyWasmHost(
        built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()
    ) as host:
        assert host.start(), host.logs()
        answered = host.http_request(HttpRequest(path="/admin/x"), HttpResponse(status=200))
        host.refuse_local_responses = True
        refused = host.http_request(HttpRequest(path="/admin/x"), HttpResponse(status=200))
    assert answered.local_response is not None and answered.client is not None
    assert ("x-after", "1") not in answered.client.headers  # its own reply is left alone
    assert refused.local_response is None
    assert refused.response_headers is not None and ("x-after", "1") in refused.response_headers
