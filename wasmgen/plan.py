"""Turn a validated Spec into a frozen Plan: everything the templates and manifests need."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from wasmgen import __version__
from wasmgen.presets import preset_rules
from wasmgen.scenarios import Scenario, derive
from wasmgen.spec import Spec

Flavor = Literal["go", "tinygo"]


@dataclass(frozen=True)
class SdkPin:
    """The proxy-wasm Go SDK a flavour builds against."""

    module: str
    version: str
    sum_file: str


SDKS: dict[str, SdkPin] = {
    "go": SdkPin(
        "github.com/proxy-wasm/proxy-wasm-go-sdk", "v0.0.0-20260105142703-44c7d5847745", "go.sum"
    ),
    "tinygo": SdkPin("github.com/tetratelabs/proxy-wasm-go-sdk", "v0.24.0", "tinygo.sum"),
}
FASTJSON_VERSION = "v1.6.4"


@dataclass(frozen=True)
class BadConfig:
    """A broken plugin configuration and the text its critical log line must contain."""

    name: str
    config: str
    want: str


@dataclass(frozen=True)
class Plan:
    """Resolved inputs for rendering; templates read this and hold no logic of their own."""

    spec: Spec
    name: str
    flavor: Flavor
    sdk_module: str
    sdk_version: str
    sdk_sum_file: str
    fastjson_version: str
    go_module: str
    pass_through: bool
    config: dict[str, Any]
    config_json: str
    scenarios: tuple[Scenario, ...]
    bad_configs: tuple[BadConfig, ...]
    added_headers: tuple[tuple[str, str], ...]  # unconditional response headers, for verify steps
    generator_version: str = __version__


def plugin_config(spec: Spec) -> dict[str, Any]:
    """The configuration the plugin reads at start: presets expanded, empty phases omitted."""
    response = preset_rules(spec.presets.secure_headers, spec.presets.strip_server_headers)
    response += [r.as_config() for r in spec.response]
    request = [r.as_config() for r in spec.request]
    config: dict[str, Any] = {}
    if request:
        config["request"] = request
    if response:
        config["response"] = response
    return config


def config_json(config: dict[str, Any]) -> str:
    """Compact, key-order-preserving JSON, identical for identical specs."""
    return json.dumps(config, ensure_ascii=False, separators=(",", ":"))


def _added_headers(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for rule in config.get("response", []):
        if rule.get("when"):
            continue
        for op in ("set", "append", "addIfAbsent"):
            out.extend(rule.get(op, {}).items())
    return tuple(out)


BAD_CONFIGS = (
    BadConfig("not JSON", "header_1: first_header", "not valid JSON"),
    BadConfig(
        "header injection",
        '{"response": [{"set": {"x-a": "a\\r\\nx-evil: 1"}}]}',
        "control character 0x0d",
    ),
    BadConfig("not an object", '["x-a"]', "must be a JSON object"),
    BadConfig("unknown key", '{"responses": []}', "responses: unknown key"),
    BadConfig("rules not a list", '{"response": {"set": {}}}', "response: must be a list"),
    BadConfig(
        "value not a string", '{"response": [{"set": {"x-a": 1}}]}', "value must be a string"
    ),
    BadConfig(
        "bad regex",
        '{"request": [{"set": {"x-a": "1"}, "when": {"path": {"regex": "("}}}]}',
        "invalid regular expression",
    ),
    BadConfig("empty", "", "configuration is empty"),
)


def make_plan(spec: Spec, flavor: Flavor = "go") -> Plan:
    """Resolve a spec; raises SpecError when its rules cannot all be exercised by tests."""
    config = plugin_config(spec)
    sdk = SDKS[flavor]
    return Plan(
        spec=spec,
        name=spec.name,
        flavor=flavor,
        sdk_module=sdk.module,
        sdk_version=sdk.version,
        sdk_sum_file=sdk.sum_file,
        fastjson_version=FASTJSON_VERSION,
        go_module="wasmgen.local/" + re.sub(r"[^a-z0-9.-]", "-", spec.name),
        pass_through=spec.on_invalid_config == "passThrough",
        config=config,
        config_json=config_json(config),
        scenarios=tuple(derive(config, spec.tests)),
        bad_configs=BAD_CONFIGS,
        added_headers=_added_headers(config),
    )
