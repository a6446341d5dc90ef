"""Several plugins in one VM, in real Envoy: two listeners run the same compiled module with the
same vm_id and different pluginConfig, so Envoy gives one VM two root contexts. Every stream must
run with its own plugin's values (the module ties streams to roots in proxy_on_context_create
and releases them in proxy_on_delete)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from wasmgen.deploy import deployment
from wasmgen.deploy.envoy import envoy_bootstrap
from wasmgen.deploy.files import server_header
from wasmgen.envoy import EnvoyBinary, EnvoyProcess, find
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.host import ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.pipeline import Built
from wasmgen.plan import Plan
from wasmgen.semantics import derive_for
from wasmgen.testing.envoy import compare

pytestmark = pytest.mark.slow


def _second_config(plan: Plan) -> dict[str, Any]:
    """The plan's pluginConfig with every header value changed."""
    return {k: f"{v}-second" if isinstance(v, str) else v for k, v in plan.plugin_config.items()}


def _two_listener_bootstrap(built: Built, upstream_port: int, second: str) -> dict[str, Any]:
    config = envoy_bootstrap(
        deployment(built.plan), str(built.wasm.resolve()), listen_port=0,
        listen_address="127.0.0.1", admin_port=0, upstream_host="127.0.0.1",
        upstream_port=upstream_port, server_header=server_header(built.plan),
    )  # fmt: skip
    listeners = config["static_resources"]["listeners"]
    other = copy.deepcopy(listeners[0])
    other["name"] = "second"
    hcm = other["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = hcm["http_filters"][0]["typed_config"]["config"]
    wasm["configuration"]["value"] = second
    wasm["name"] = f"{wasm.get('name', 'plugin')}-second"  # a second plugin, the same VM
    listeners[0]["name"] = "first"
    listeners.append(other)
    return config


@pytest.mark.parametrize("version", ["1.36", "1.40"])
@pytest.mark.parametrize("example", ["seed-lab", "api-errors"])
def test_two_plugins_in_one_vm_keep_their_own_values(
    built_examples: dict[str, Built], example: str, version: str
) -> None:
    built = built_examples[example]
    assert built.plan.values, "the example must have configurable values"
    second = json.dumps(_second_config(built.plan), sort_keys=True)
    scenarios = [s for s in derive_for(built.plan).scenarios if not s.name.startswith("test: ")]
    around = EnvoySurroundings(
        server_header_transformation=server_header(built.plan) or "OVERWRITE"
    )
    upstream = ScriptedUpstream()
    binary: EnvoyBinary = find(version)
    failures: list[str] = []
    try:
        bootstrap = _two_listener_bootstrap(built, upstream.port, second)
        wasm = built.wasm.read_bytes()
        with EnvoyProcess(binary, bootstrap) as envoy, \
                ProxyWasmHost(wasm, plugin_config=built.plan.config_json.encode()) as first_host, \
                ProxyWasmHost(wasm, plugin_config=second.encode()) as second_host:  # fmt: skip
            envoy.start()
            ports = envoy.listener_ports()
            assert set(ports) == {"first", "second"}, ports
            assert first_host.start() and second_host.start()
            vms = envoy.stats("wasm.envoy.wasm.runtime.v8.active")
            for round_ in range(3):  # streams of both plugins interleave, again and again
                for s in scenarios:
                    for name, host in (("first", first_host), ("second", second_host)):
                        sent = list(s.response)
                        if not any(k == "content-length" for k, _ in sent):
                            sent.append(("content-length", "0"))
                        wire = exchange(ports[name], upstream, s.request, s.response)
                        sim = host.exchange(s.request, sent, envoy=around)
                        failures += [f"{name} #{round_} {s.name}: {f}" for f in compare(wire, sim)]
            assert not envoy.plugin_logs("critical")
    finally:
        upstream.close()
    assert not failures, failures[:10]
    # Both plugins share the VMs: as many as one plugin alone has (the main thread's, the
    # worker's, and the one that checks the configuration), not one set per plugin.
    assert vms == {"wasm.envoy.wasm.runtime.v8.active": 3}, vms
