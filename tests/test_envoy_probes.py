"""The facts of docs/envoy-behaviour.md, observed in real Envoy 1.36 and 1.40: the scripted
probe plugin (tests/plugins/rawabi) runs each experiment through Envoy and through the embedded
host with Envoy's surroundings, and any header the two disagree on fails. The host tests
(test_host_envoy_*.py) pin the expected values; this test keeps them honest against Envoy."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

import wasmgen
from tests.helpers import EXAMPLES
from wasmgen.deploy import deployment
from wasmgen.deploy.envoy import envoy_bootstrap
from wasmgen.envoy import EnvoyProcess, find
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.host import ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.plan import make_plan
from wasmgen.testing.envoy import compare
from wasmgen.wasm.abi import Header

pytestmark = pytest.mark.slow

OK3 = [("content-length", "3")]
DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


@dataclass(frozen=True)
class Probe:
    """One experiment: the plugin's script, the connection manager's server header mode, the
    client's request and the upstream's answer."""

    name: str
    script: str
    response: list[Header] = field(default_factory=lambda: list(OK3))
    method: str = "GET"
    request: list[Header] = field(default_factory=list)
    sht: str = "OVERWRITE"


PROBES = [
    # a. the connection manager, the router and the codecs
    Probe("plain get, what the plugin sees", "req pairs x-seen\nresp pairs x-seen"),
    Probe(
        "upstream server, date, service time",
        "resp pairs x-seen",
        [("server", "gunicorn/21"), ("date", DATE), ("x-envoy-upstream-service-time", "999"), *OK3],
    ),
    *(
        Probe(
            f"remove server under {sht}",
            "resp remove server",
            [("server", "gunicorn/21"), *OK3],
            sht=sht,
        )
        for sht in ("OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH")
    ),
    Probe("replace server", "resp replace server mine", sht="PASS_THROUGH"),
    Probe(
        "remove date, service time, length",
        "resp remove date\nresp remove x-envoy-upstream-service-time\nresp remove content-length",
    ),
    Probe(
        "set date and service time",
        "resp replace date plugin-date\nresp replace x-envoy-upstream-service-time 7",
    ),
    Probe(
        "head keeps the upstream length",
        "",
        [("content-type", "application/json"), ("content-length", "604")],
        method="HEAD",
    ),
    Probe("client request id", "req pairs x-seen", request=[("x-request-id", "client-rid")]),
    *(
        Probe(
            f"source address from x-forwarded-for {xff}",
            "req prop source.address x-src",
            request=[("x-forwarded-for", xff)],
        )
        for xff in ("10.1.2.3", "192.0.2.1, 10.1.2.3", "2001:db8::1")
    ),
    Probe(
        "no x-forwarded-proto: no route",
        "req remove x-request-id\nreq remove x-forwarded-proto\nresp pairs x-seen",
    ),
    Probe("other request edits keep the route", "req replace x-forwarded-proto https"),
    Probe(
        "router timeout after the filter",
        "req remove x-envoy-expected-rq-timeout-ms\nreq replace x-forwarded-for 1.2.3.4",
    ),
    Probe("upstream request id", "", [("x-request-id", "upstream-rid"), *OK3]),
    *(Probe(f"body-less {m}", "req pairs x-seen", method=m) for m in ("POST", "PUT", "DELETE")),
    Probe(
        "client hop-by-hop headers",
        "req pairs x-seen",
        request=[("connection", "x-drop"), ("x-drop", "1"), ("keep-alive", "timeout=5")],
    ),
    # b. repeated values of inline headers
    Probe(
        "inline request add",
        "req add cache-control plugin\nreq pairs x-seen",
        request=[("cache-control", "client")],
    ),
    Probe(
        "plain request add",
        "req add x-trace-tags plugin\nreq pairs x-seen",
        request=[("x-trace-tags", "client")],
    ),
    Probe(
        "inline response add",
        "resp add vary plugin\nresp pairs x-seen",
        [("vary", "upstream"), *OK3],
    ),
    Probe(
        "plain response add",
        "resp add link plugin\nresp pairs x-seen",
        [("link", "upstream"), *OK3],
    ),
    Probe(
        "repeated client lines",
        "req pairs x-seen",
        request=[
            ("cache-control", "a"),
            ("cache-control", "b"),
            ("x-trace-tags", "c"),
            ("x-trace-tags", "d"),
        ],
    ),
    Probe(
        "replace after two values",
        "resp add vary two\nresp replace vary one\nresp pairs x-seen",
        [("vary", "upstream"), *OK3],
    ),
    # c. local replies
    Probe("local reply", "req local 403 denied\nresp pairs x-seen"),
    Probe("local reply, head", "req local 403 denied\nresp pairs x-seen", method="HEAD"),
    Probe("local reply, pass-through server", "req local 429 slow", sht="PASS_THROUGH"),
]


def _bootstrap(wasm: Path, upstream_port: int) -> dict[str, Any]:
    """One listener per probe, each with its own script, server header mode and VM."""
    plan = make_plan(wasmgen.load_spec(next(e for e in EXAMPLES if e.stem == "seed-lab")))
    config = envoy_bootstrap(
        deployment(plan), str(wasm.resolve()), listen_port=0, listen_address="127.0.0.1",
        admin_port=0, upstream_host="127.0.0.1", upstream_port=upstream_port,
    )  # fmt: skip
    template = config["static_resources"]["listeners"].pop()
    for i, probe in enumerate(PROBES):
        listener = copy.deepcopy(template)
        listener["name"] = f"probe-{i}"
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["server_header_transformation"] = probe.sht
        wasm_filter = hcm["http_filters"][0]["typed_config"]["config"]
        wasm_filter["configuration"]["value"] = probe.script
        wasm_filter["name"] = f"probe-{i}"
        # rawabi keeps one script per VM, so each probe gets a VM of its own
        wasm_filter["vm_config"]["vm_id"] = f"probe-{i}"
        config["static_resources"]["listeners"].append(listener)
    return config


def _scrub(headers: Sequence[Header]) -> tuple[Header, ...]:
    """Values Envoy makes up per request, inside the probe's own report headers, as "*"."""
    return tuple((k, _VOLATILE_IN_REPORT.sub(r"\1=*", v)) for k, v in headers)


_VOLATILE_IN_REPORT = re.compile(r"(x-envoy-upstream-service-time|date)=[^|]*")


def _both(wasm: bytes, port: int, upstream: ScriptedUpstream, probe: Probe) -> tuple[Any, Any]:
    """The probe's exchange through Envoy on port and through the host with its surroundings,
    with volatile values scrubbed on both sides."""
    request: list[Header] = [(":authority", "localhost"), (":path", "/a"),
                             (":method", probe.method), (":scheme", "http"), *probe.request]  # fmt: skip
    response: list[Header] = [(":status", "200"), *probe.response]
    wire = exchange(port, upstream, request, response)
    with ProxyWasmHost(wasm, plugin_config=probe.script.encode()) as host:
        assert host.start()
        around = EnvoySurroundings(server_header_transformation=probe.sht)  # type: ignore[arg-type]
        sim = host.exchange(request, response, envoy=around)
    wire = replace(
        wire,
        response=_scrub(wire.response),
        upstream_request=None if wire.upstream_request is None else _scrub(wire.upstream_request),
    )
    assert sim.client is not None
    sim = replace(sim, client=replace(sim.client, headers=_scrub(sim.client.headers)))
    if sim.upstream is not None:
        sim = replace(sim, upstream=replace(sim.upstream, headers=_scrub(sim.upstream.headers)))
    return wire, sim


@pytest.mark.parametrize("version", ["1.36", "1.40"])
def test_probes_agree_with_real_envoy(raw_wasm: bytes, tmp_path: Path, version: str) -> None:
    binary = find(version)
    wasm = tmp_path / "rawabi.wasm"
    wasm.write_bytes(raw_wasm)
    upstream = ScriptedUpstream()
    failures: list[str] = []
    try:
        with EnvoyProcess(binary, _bootstrap(wasm, upstream.port)) as envoy:
            envoy.start()
            ports = envoy.listener_ports()
            for i, probe in enumerate(PROBES):
                wire, sim = _both(raw_wasm, ports[f"probe-{i}"], upstream, probe)
                failures += [f"{probe.name}: {f}" for f in compare(wire, sim)]
                if probe.name == "plain get, what the plugin sees":
                    # the probe itself works: the plugin's view reached the upstream
                    assert wire.upstream_request is not None
                    assert any(k == "x-seen" for k, _ in wire.upstream_request)
    finally:
        upstream.close()
    assert not failures, f"Envoy {binary.name} and the embedded host differ:\n" + "\n".join(
        failures
    )


def test_a_wrong_model_is_caught(raw_wasm: bytes, tmp_path: Path) -> None:
    """The comparison can fail: the host told the wrong server header mode differs from Envoy."""
    binary = find("1.40")
    wasm = tmp_path / "rawabi.wasm"
    wasm.write_bytes(raw_wasm)
    upstream = ScriptedUpstream()
    probe = next(p for p in PROBES if p.name == "remove server under PASS_THROUGH")
    try:
        with EnvoyProcess(binary, _bootstrap(wasm, upstream.port)) as envoy:
            envoy.start()
            port = envoy.listener_ports()[f"probe-{PROBES.index(probe)}"]
            wrong = replace(probe, sht="OVERWRITE")  # what the host is told; Envoy runs the probe
            failures = compare(*_both(raw_wasm, port, upstream, wrong))
    finally:
        upstream.close()
    assert any("header server" in f for f in failures), json.dumps(failures)
