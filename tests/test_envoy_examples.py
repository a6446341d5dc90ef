"""Every example in real Envoy 1.36 and 1.40: its cases and every rule's traffic pass, and the
embedded host agrees with Envoy header by header."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT, run_cli
from wasmgen.envoy import EnvoyBinary, find, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.host import ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.pipeline import Built
from wasmgen.semantics import derive_for
from wasmgen.testing.envoy import compare, run_in_envoy

pytestmark = pytest.mark.slow
VERSIONS = ("1.36", "1.40")


@pytest.fixture(scope="module")
def envoys() -> dict[str, EnvoyBinary]:
    return {v: find(v) for v in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_example_in_real_envoy(
    built_examples: dict[str, Built], envoys: dict[str, EnvoyBinary], example: str, version: str
) -> None:
    built = built_examples[example]
    scenarios = derive_for(built.plan).scenarios
    results = run_in_envoy(built.plan, scenarios, built.wasm, envoys[version], built.compat.target)
    assert len(results) == len(scenarios)
    failed = {r.name: r.failures for r in results if not r.passed}
    assert not failed, failed
    assert {r.runner for r in results} == {envoys[version].name}


def test_a_disagreement_is_reported_header_by_header(
    built_examples: dict[str, Built], envoys: dict[str, EnvoyBinary]
) -> None:
    """The comparison can fail: a host that models Envoy's default server header handling, where
    the bootstrap passes server through, disagrees on `server` and says so."""
    built = built_examples["secure-gateway"]
    upstream = ScriptedUpstream()
    request = [(":method", "GET"), (":path", "/"), (":authority", "shop.example.com")]
    response = [(":status", "200"), ("server", "gunicorn/21")]
    try:
        with plugin_process(envoys["1.40"], built.wasm, built.plan, ("127.0.0.1", upstream.port)) as p, \
                ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
            p.start()
            assert host.start()
            wire = exchange(p.listener_port, upstream, request, response)
            wrong = host.exchange(request, [*response, ("content-length", "0")],
                                  envoy=EnvoySurroundings(server_header_transformation="OVERWRITE"))  # fmt: skip
    finally:
        upstream.close()
    assert compare(wire, wrong) == ["response header server: Envoy absent, embedded host 'envoy'"]


def test_wasmgen_test_runs_both_envoys_and_names_them_in_junit(
    built_examples: dict[str, Built], tmp_path: Path
) -> None:
    built = built_examples["seed-lab"]
    report = tmp_path / "junit.xml"
    result = run_cli("test", ROOT / "examples" / "seed-lab.yaml", "-o", built.out_dir,
                     "--envoy", "1.36", "--envoy", "1.40", "--junit", report)  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert "in Envoy 1.36." in result.stdout and "in Envoy 1.40." in result.stdout
    cases = ET.parse(report).getroot().findall("testcase")
    names = {c.get("name", "").split("]")[0] + "]" for c in cases}
    assert {n for n in names if "Envoy" in n} == {"[Envoy 1.36.4]", "[Envoy 1.40.0]"}
    assert all(
        "envoy-1." in (c.get("classname") or "") or "embedded-host" in (c.get("classname") or "")
        for c in cases
    )
