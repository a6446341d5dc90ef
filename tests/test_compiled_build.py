"""The compiled backend built with the real Go toolchain: its own tests, the SDK's wazero host and
wasmgen's embedded host agree with the reference model, for every example and synthetic spec."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import ROOT, run_cli
from tests.test_compiled_specs import all_specs
from wasmgen.backends.compiled.testdata import envoy_order, odd_traffic
from wasmgen.build.compile import go_test
from wasmgen.build.toolchain import find_go
from wasmgen.host import ProxyWasmHost
from wasmgen.pipeline import Built, build
from wasmgen.plan import Backend, make_plan
from wasmgen.semantics import derive_for, model
from wasmgen.testing import run
from wasmgen.testing.runner import check_scenario
from wasmgen.wasm.compat import S18
from wasmgen.wasm.module import inspect_module

pytestmark = pytest.mark.slow
QUIET = Console(stderr=True, quiet=True)
NAMES = sorted(all_specs())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every example and synthetic spec, generated and built with --backend compiled."""
    root = tmp_path_factory.mktemp("compiled")
    return {
        name: build(spec, root / name, console=QUIET, backend="compiled")
        for name, spec in all_specs().items()
    }


@pytest.mark.parametrize("name", NAMES)
def test_generated_go_tests_pass_natively_and_in_the_sdk_host(
    built: dict[str, Built], name: str
) -> None:
    """go test: every scenario against the Envoy-faithful fake host, bad configs, decoding,
    several roots, no allocations; then sdktest/ loads plugin.wasm in proxytest (wazero)."""
    result = go_test(
        built[name].out_dir, env={"WASMGEN_REQUIRE_WASM": "1"}, console=QUIET, args=("-v", ".")
    )
    for test in ("TestScenarios", "TestBadConfigs", "TestNoAllocations", "TestInSDKHost"):
        assert f"--- PASS: {test} " in result.output, (test, result.output[-3000:])
    for goos in ("linux", "wasip1"):  # go vet, for the test build and the plugin's
        env = {**os.environ, "GOOS": goos, "GOARCH": "amd64" if goos == "linux" else "wasm"}
        vet = subprocess.run(
            [str(find_go().path), "vet", "."],
            cwd=built[name].out_dir,
            env=env,
            capture_output=True,
            text=True,
        )
        assert vet.returncode == 0, vet.stdout + vet.stderr


@pytest.mark.parametrize("name", NAMES)
def test_embedded_host_runs_every_scenario_as_the_model_says(
    built: dict[str, Built], name: str
) -> None:
    """wasmgen's embedded host (Envoy's header maps, local replies through the response
    callback) agrees with the reference model on derived, declared and odd traffic."""
    b = built[name]
    wasm = b.wasm.read_bytes()
    results = run(b.plan, derive_for(b.plan).scenarios, wasm, b.compat.target)
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results if not r.passed]
    with ProxyWasmHost(wasm, plugin_config=b.plan.config_json.encode()) as host:
        assert host.start(), host.logs()
        for odd, req, resp in odd_traffic(b.plan.config):
            result = host.exchange(req, resp)
            assert not check_scenario(b.plan.config, req, resp, result), odd
            want = model.run(b.plan.config, req, resp)
            if want.local_status is not None:  # the reply leaves as declared: no response rule ran
                assert result.client is not None and result.client.local, odd
                for pair in envoy_order(want.local_headers, "response"):
                    assert pair in result.client.headers, (odd, pair)
        assert host.logs() == [], "the plugin logs nothing on the request path"


def test_a_local_reply_skips_the_response_rules(built: dict[str, Built]) -> None:
    """Envoy (and the embedded host) run the response callback on the plugin's own reply."""
    b = built["guard-and-tag"]
    with ProxyWasmHost(b.wasm.read_bytes(), plugin_config=b.plan.config_json.encode()) as host:
        assert host.start()
        req = [(":authority", "h"), (":method", "GET"), (":path", "/admin/x"), (":scheme", "http")]
        result = host.exchange(req, [(":status", "200")])
        assert result.client is not None and result.client.status == 403
        assert ("content-type", "text/plain") in result.client.headers
        assert "x-tag" not in dict(result.client.headers)
        upstream = host.exchange([*req[:2], (":path", "/x")], [(":status", "403")])
        assert upstream.response_headers is not None
        assert dict(upstream.response_headers)["content-type"] == "application/problem+json"


HTTP_CALLBACKS = {
    "proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start",
    "proxy_on_configure", "proxy_on_delete", "proxy_on_done", "proxy_on_log",
    "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_request_metadata", "proxy_on_response_headers", "proxy_on_response_body",
    "proxy_on_response_trailers", "proxy_on_response_metadata",
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_exports_every_http_callback(built: dict[str, Built], name: str) -> None:
    """Every HTTP callback of ABI 0.2.1 is exported whatever the rules use: a host such as the
    SDK's proxytest calls them whether or not a module exports them (issue 17)."""
    assert set(inspect_module(built[name].wasm.read_bytes()).callbacks) == HTTP_CALLBACKS


@pytest.mark.parametrize("name", NAMES)
def test_imports_fit_envoy_1_33(built: dict[str, Built], name: str) -> None:
    """Only the bare Go runtime's WASI calls (within Envoy 1.33+'s set) and the proxy-wasm calls
    the rules make; no proxy_set_effective_context, no SDK."""
    info = inspect_module(built[name].wasm.read_bytes())
    wasi = set(info.imports_from("wasi_snapshot_preview1"))
    assert wasi <= S18, wasi - S18
    env = set(info.imports_from("env"))
    assert env <= {
        "proxy_log",
        "proxy_get_buffer_bytes",
        "proxy_get_header_map_value",
        "proxy_get_header_map_pairs",
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_send_local_response",
    } | ({"proxy_get_property"} if '"source":' in json.dumps(built[name].plan.config) else set()), (
        env
    )  # fmt: skip  (source.address, only for a source: condition)
    assert built[name].compat.loadable


def test_regexp_is_linked_only_for_a_real_regex(tmp_path: Path) -> None:
    """api-errors' ^/api/v1/ is a literal prefix: no regexp package; ^/api/v[0-9]/ needs it."""
    text = (ROOT / "examples" / "api-errors.yaml").read_text()
    real = text.replace('regex: "^/api/v1/"', 'regex: "^/api/v[0-9]/"')
    assert real != text
    sizes = {}
    for label, source in (("lowered", text), ("regexp", real)):
        spec = wasmgen.parse_spec(source.encode(), f"{label}.yaml")
        sizes[label] = build(spec, tmp_path / label, console=QUIET, backend="compiled").result.size
    assert sizes["regexp"] - sizes["lowered"] > 400_000, sizes  # regexp and its tables


def test_build_needs_no_module_download(tmp_path: Path) -> None:
    """`wasmgen build --backend compiled` with GOPROXY=off and an empty module cache."""
    cache = tmp_path / "modcache"
    cache.mkdir()
    env = {"GOPROXY": "off", "GOMODCACHE": str(cache), "GOFLAGS": "-mod=mod"}
    out = tmp_path / "lab"
    spec = ROOT / "examples" / "seed-lab.yaml"
    result = run_cli("build", spec, "-o", out, "--backend", "compiled", env=env)
    assert result.code == 0, result.stderr
    assert (out / "plugin.wasm").read_bytes()[:4] == b"\0asm"
    assert not any(cache.iterdir()), "nothing was downloaded"
    assert "require" not in (out / "go.mod").read_text() and not (out / "go.sum").exists()


def test_wasmgen_test_cli_runs_the_compiled_plugin(tmp_path: Path) -> None:
    """`wasmgen test --backend compiled --go`: the host run and the generated Go tests pass."""
    spec = ROOT / "examples" / "request-guard.yaml"
    result = run_cli("test", spec, "-o", tmp_path / "rg", "--backend", "compiled", "--go")
    assert result.code == 0, result.stdout + result.stderr
    plan = make_plan(wasmgen.load_spec(spec), backend="compiled")
    assert plan.backend == "compiled"


def test_a_spec_whose_tests_or_dynamic_rules_changed_is_not_recompiled(tmp_path: Path) -> None:
    """The build cache keys the module's inputs, and *_test.go is not one: editing a spec's
    test cases (either backend), or the rules of a dynamic plugin (they live in pluginConfig),
    reuses the module built before, byte for byte; a compiled plugin's new rule is rebuilt."""
    lab = (ROOT / "examples" / "seed-lab.yaml").read_text()
    other_test = lab.replace("curl --head httpbin:8000/get", "curl --head, renamed")
    other_rule = lab.replace(
        "header_1: first_header\n", "header_1: first_header\n      header_3: x\n", 1
    )
    assert other_test != lab and other_rule != lab
    cases: tuple[tuple[Backend, str, bool], ...] = (
        ("compiled", other_test, True),
        ("dynamic", other_test, True),
        ("dynamic", other_rule, True),
        ("compiled", other_rule, False),
    )
    for backend, edited, cached in cases:
        out = tmp_path / backend
        first = build(
            wasmgen.parse_spec(lab.encode(), "lab.yaml"), out, console=QUIET, backend=backend
        )
        wasm = first.wasm.read_bytes()
        again = build(
            wasmgen.parse_spec(edited.encode(), "lab.yaml"), out, console=QUIET, backend=backend
        )
        assert again.result.cached is cached, (backend, edited)
        assert (again.wasm.read_bytes() == wasm) is cached
