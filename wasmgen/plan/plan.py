"""Turn a validated Spec into a frozen Plan: everything the backends and manifests need (no I/O)."""

from __future__ import annotations

import json
import re
from dataclasses import field
from typing import Any, Literal

from pydantic import BaseModel

from wasmgen._version import __version__
from wasmgen.plan.pin import Pin
from wasmgen.plan.values import ValueSlot, value_slots, values_config
from wasmgen.records import record
from wasmgen.spec.models import Spec
from wasmgen.spec.presets import preset_rules
from wasmgen.variants import VariantInfo, resolve

Flavor = Literal["go", "tinygo"]
Backend = Literal["compiled", "dynamic"]
BACKENDS: tuple[Backend, ...] = ("compiled", "dynamic")
DEFAULT_BACKEND: Backend = "compiled"


@record
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

# The Go language versions each supported TinyGo release accepts (its release notes): a go.mod
# asking for more fails under GOTOOLCHAIN=local with "go.mod requires go >= ...".
TINYGO_GO_RANGES: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {
    (0, 32): ((1, 19), (1, 22)),
    (0, 33): ((1, 19), (1, 23)),
    (0, 34): ((1, 19), (1, 23)),
}
# The newest go directive every one of them accepts; the tetratelabs SDK's test dependency
# wazero v1.7.2 needs at least go 1.20.
TINYGO_GO_DIRECTIVE = "{}.{}".format(*min(hi for _, hi in TINYGO_GO_RANGES.values()))
GO_DIRECTIVE = "1.24"  # proxy-wasm-go-sdk needs Go >= 1.24 (wasip1 c-shared, wasmexport)


@record
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
    go_directive: str  # the go line of go.mod
    pass_through: bool
    config: dict[str, Any]  # the rules, expanded (presets first): what every backend implements
    config_json: str  # plugin_config as the compact JSON Envoy hands the plugin
    backend: Backend = DEFAULT_BACKEND
    values: tuple[ValueSlot, ...] = ()  # the compiled backend's deploy-time header values
    plugin_config: dict[str, Any] = field(default_factory=dict)  # what pluginConfig carries
    touches_server: bool = False  # a response rule removes, sets or renames `server`
    pin: Pin | None = None  # the pushed image the manifests point at (from wasmgen.lock)
    generator_version: str = __version__
    # The spec's variant; spec.templates is its template folder when the spec names none.
    variant: VariantInfo | None = None
    options: BaseModel | None = None  # the variant's validated options, for its templates


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


# Go's encoding/json (which istiod's jsonpb uses for pluginConfig) escapes these inside strings.
_GO_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (ord("<"), ord(">"), ord("&"), 0x2028, 0x2029)}


def config_json(config: dict[str, Any]) -> str:
    """The configuration string exactly as Istio hands `pluginConfig` to the plugin: compact,
    keys sorted at every level (a protobuf Struct), and <, >, &, U+2028, U+2029 escaped as
    \\u003c ... as Go's encoding/json writes them (tests/test_istio_parity.py runs istiod).
    Nothing to carry is no pluginConfig in the manifest, and then Istio hands the plugin an
    empty configuration, not "{}"."""
    if not config:
        return ""
    text = json.dumps(config, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.translate(_GO_JSON_ESCAPES)  # these characters only occur inside strings


def _touches(config: dict[str, Any], header: str) -> bool:
    """Whether any response rule changes header (by name, prefix, or as a rename target)."""
    for rule in config.get("response", []):
        names = list(rule.get("remove", []))
        for op in ("set", "append", "addIfAbsent"):
            names += list(rule.get(op, {}))
        for src, dst in rule.get("rename", {}).items():
            names += [src, dst]
        names += list(rule.get("copyFromRequest", {}).values())
        names += list(rule.get("dedupe", {})) + list(rule.get("rewrite", {}))
        for name in names:
            if name == header or (name.endswith("*") and header.startswith(name[:-1])):
                return True
    return False


def make_plan(
    spec: Spec, flavor: Flavor = "go", pin: Pin | None = None, backend: Backend | None = None
) -> Plan:
    """Resolve a spec into the frozen inputs of rendering; pure, no I/O.

    The compiled backend writes the same files for both toolchains (each export carries
    //go:wasmexport for upstream Go and //export for TinyGo); its nested sdktest module, which
    upstream Go runs, always uses the upstream SDK. Only the dynamic backend's files depend on
    the flavour (its SDK).
    """
    resolved = resolve(spec)  # the variant's rules run before the spec's own
    spec, config = resolved.spec, plugin_config(resolved.expanded)
    chosen: Backend = backend or DEFAULT_BACKEND
    sdk_flavor: Flavor = flavor if chosen == "dynamic" else "go"
    sdk = SDKS[sdk_flavor]
    slots = value_slots(config)
    carried = values_config(slots) if chosen == "compiled" else config
    return Plan(
        spec=spec,
        name=spec.name,
        flavor=flavor,
        sdk_module=sdk.module,
        sdk_version=sdk.version,
        sdk_sum_file=sdk.sum_file,
        fastjson_version=FASTJSON_VERSION,
        go_module="wasmgen.local/" + re.sub(r"[^a-z0-9.-]", "-", spec.name),
        go_directive=TINYGO_GO_DIRECTIVE if sdk_flavor == "tinygo" else GO_DIRECTIVE,
        pass_through=spec.on_invalid_config == "passThrough",
        config=config,
        config_json=config_json(carried),
        backend=chosen,
        values=slots,
        plugin_config=carried,
        touches_server=_touches(config, "server"),
        pin=pin,
        variant=resolved.info,
        options=resolved.options,
    )
