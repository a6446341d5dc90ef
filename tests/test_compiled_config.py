"""The compiled plugin's pluginConfig in wasmgen's embedded host: the seed lab's own JSON, and
broken configurations (one critical line naming the key; passThrough lets traffic through)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import ROOT
from tests.test_compiled_specs import synthetic
from wasmgen.backends.compiled.testdata import envoy_order
from wasmgen.host import ProxyWasmHost
from wasmgen.pipeline import Built, build
from wasmgen.plan import Plan
from wasmgen.semantics import derive_for

pytestmark = pytest.mark.slow
QUIET = Console(stderr=True, quiet=True)
LAB_CONFIG = b'{"header_1": "first_header", "header_2": "second_header"}'
PREFIX = "invalid plugin configuration: "
PASSING = "invalid plugin configuration, passing traffic through unchanged: "


@dataclass(frozen=True)
class Bad:
    """A broken configuration and the text its one critical line must hold."""

    name: str
    config: str
    want: str


def bad_configs(plan: Plan) -> list[Bad]:
    """Broken configurations for plan, derived from its value keys."""
    cases = [
        Bad("not JSON", "header_1: first_header", "configuration is not valid JSON"),
        Bad("truncated", '{"a": "b"', "configuration is not valid JSON"),
        Bad("not an object", '["x-a"]', "must be a JSON object"),
        Bad("unknown key", '{"no-such-key": "1"}', '"no-such-key": unknown key'),
        Bad("too deep", "[" * 100 + "]" * 100, "nesting deeper than 64 levels"),
    ]
    if not plan.values:
        return cases
    example = dict(plan.plugin_config)
    first, last = plan.values[0], plan.values[-1]
    named = f'"{first.key}" ({first.where}): '

    def with_first(value: object) -> str:
        return json.dumps({**example, first.key: value})

    missing = {k: v for k, v in example.items() if k != last.key}
    return [
        *cases,
        Bad("empty", "", "configuration is empty"),
        Bad("missing key", json.dumps(missing), f'"{last.key}" ({last.where}): missing'),
        Bad("number", with_first(1), named + "value must be a string, got number"),
        Bad("null", with_first(None), named + "value must be a string, got null"),
        Bad(
            "header injection",
            with_first("a\r\nx-evil: 1"),
            named + "value contains control character 0x0d",
        ),
        Bad("NUL", with_first("a\u0000"), named + "value contains control character 0x00"),
        Bad(
            "too long", with_first("v" * 16385), named + "value is longer than Envoy's 16 KiB limit"
        ),
        Bad(
            "duplicate key",
            with_first("x")[:-1] + f', "{first.key}": "y"}}',
            named + "duplicate key",
        ),
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """seed-lab (fail), request-guard (passThrough) and a spec without values (passThrough)."""
    root = tmp_path_factory.mktemp("compiled-config")
    specs = {
        "seed-lab": wasmgen.load_spec(ROOT / "examples" / "seed-lab.yaml"),
        "request-guard": wasmgen.load_spec(ROOT / "examples" / "request-guard.yaml"),
        "idents": synthetic("idents"),
        "no-values": synthetic("no-values"),
    }
    return {n: build(s, root / n, console=QUIET, backend="compiled") for n, s in specs.items()}


def test_the_seed_labs_own_config_works_unchanged(built: dict[str, Built]) -> None:
    """The lab's pluginConfig, byte for byte, starts the seed-lab plugin and sets its headers."""
    b = built["seed-lab"]
    assert b.plan.config_json.encode() == LAB_CONFIG.replace(b" ", b"")
    with ProxyWasmHost(b.wasm.read_bytes(), plugin_config=LAB_CONFIG) as host:
        assert host.start(), host.logs()
        result = host.exchange(
            [(":authority", "httpbin:8000"), (":method", "HEAD"), (":path", "/get")],
            [(":status", "200"), ("content-type", "application/json")],
        )
        assert result.response_headers is not None
        assert ("header_1", "first_header") in result.response_headers
        assert ("header_2", "second_header") in result.response_headers
        assert host.logs() == []


@pytest.mark.parametrize("name", ["seed-lab", "request-guard", "idents", "no-values"])
def test_bad_configs_log_one_critical_line_naming_the_key(
    built: dict[str, Built], name: str
) -> None:
    """Each broken configuration: exactly one critical line, naming the key; fail refuses to
    start, passThrough starts and passes every scenario's traffic through unchanged."""
    b = built[name]
    wasm = b.wasm.read_bytes()
    scenarios = derive_for(b.plan).scenarios
    for bad in bad_configs(b.plan):
        with ProxyWasmHost(wasm, plugin_config=bad.config.encode(), plugin_name=name) as host:
            started = host.start()
            crit = host.logs("critical")
            assert len(crit) == 1 and len(host.logs()) == 1, (bad.name, host.logs())
            prefix = PASSING if b.plan.pass_through else PREFIX
            assert crit[0].startswith(f"{b.plan.name}: {prefix}"), (bad.name, crit)
            assert bad.want in crit[0], (bad.name, crit)
            assert started == b.plan.pass_through, bad.name
            if not started:
                continue
            for s in scenarios:
                result = host.exchange(s.request, s.response)
                assert result.local_response is None, (bad.name, s.name)
                assert list(result.request_headers) == envoy_order(s.request, "request")
                assert list(result.response_headers or ()) == envoy_order(s.response, "response")
            assert len(host.logs()) == 1, "nothing more is logged per request"


def test_a_spec_without_values_takes_empty_or_empty_object(built: dict[str, Built]) -> None:
    """No header values: the configuration may be empty or {}; anything else names no key."""
    b = built["no-values"]
    for config in (b"", b"{}", b" \n{ }\n"):
        with ProxyWasmHost(b.wasm.read_bytes(), plugin_config=config) as host:
            assert host.start() and host.logs() == [], config
