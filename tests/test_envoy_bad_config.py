"""A broken pluginConfig in real Envoy, for each onInvalidConfig and failStrategy, next to what the
embedded host reports (the README's table is this test's findings)."""

from __future__ import annotations

import dataclasses
import json

import pytest

import wasmgen
from tests.helpers import ROOT
from wasmgen import pipeline
from wasmgen.envoy import PluginStartFailed, find, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.host import ProxyWasmHost

pytestmark = pytest.mark.slow
BROKEN = {"response": [{"set": {"header_1": "a\r\nx-injected: 1"}}]}  # a header injection
REQUEST = [(":method", "GET"), (":path", "/get"), (":authority", "httpbin:8000")]


@pytest.mark.parametrize("strategy", ["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"])
@pytest.mark.parametrize("on_invalid", ["fail", "passThrough"])
def test_broken_config_in_envoy_and_in_the_host(
    tmp_path_factory: pytest.TempPathFactory, on_invalid: str, strategy: str
) -> None:
    text = (ROOT / "examples" / "seed-lab.yaml").read_text()
    spec_path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    spec_path.write_text(f"{text}onInvalidConfig: {on_invalid}\nfailStrategy: {strategy}\n")
    spec = wasmgen.load_spec(spec_path)
    built = pipeline.build(spec, spec_path.parent / "out", backend="dynamic")
    plan = dataclasses.replace(built.plan, plugin_config=BROKEN)
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=json.dumps(BROKEN).encode()) as host:
        host_started = host.start()
        host_says = host.logs("critical")
    upstream = ScriptedUpstream()
    try:
        process = plugin_process(find("1.40"), built.wasm, plan, ("127.0.0.1", upstream.port))
        with process:
            if on_invalid == "fail":
                with pytest.raises(PluginStartFailed) as info:
                    process.start()
                # Envoy exits before its listener is live, whatever the failStrategy.
                assert process.proc is not None and process.proc.returncode == 1
                assert "control character 0x0d" in info.value.message
                assert not host_started
            else:
                process.start()  # live: the plugin passes traffic through unchanged
                wire = exchange(process.listener_port, upstream, REQUEST, [(":status", "200")])
                assert wire.status == 200 and not any(k == "header_1" for k, _ in wire.response)
                said = process.plugin_logs("critical")
                assert said and all("passing traffic through unchanged" in s for s in said)
                assert host_started
    finally:
        upstream.close()
    assert len(host_says) == 1 and "control character 0x0d" in host_says[0]
