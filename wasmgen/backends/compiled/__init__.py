"""The compiled backend: Go written for one spec against the proxy-wasm ABI, no SDK, no module.

The project is a static runtime (the ABI exports, host calls, header operations with Envoy's
semantics, the configuration reader; generators/headers/compiled/runtime/), rules.go (the
spec's rules as straight-line Go, from program.build), and tests: a native `go test` against a
fake host with Envoy's header maps, and sdktest/, a nested module that loads plugin.wasm in
the proxy-wasm Go SDK's wazero host. go.mod requires nothing: the build downloads nothing.
The same files build with upstream Go and with TinyGo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wasmgen.backends.compiled import edits, program, testdata
from wasmgen.backends.templating import (
    COMMON_TEMPLATES,
    base_context,
    generators_root,
    render_templates,
    variant_dir,
)
from wasmgen.plan import Plan
from wasmgen.plan.plan import TINYGO_GO_DIRECTIVE
from wasmgen.semantics import Scenario

FOLDER = "compiled"
# Output path -> template (under the variant's compiled/ folder, else the built-in one).
TEMPLATES: dict[str, str] = {
    "go.mod": "compiled/go.mod.jinja",
    "rules.go": "compiled/rules.go.jinja",
    "exports.go": "compiled/exports.go.jinja",
    "scenarios_test.go": "compiled/scenarios_test.go.jinja",
    "envoy_test.go": "compiled/envoy_test.go.jinja",
    "sdktest/go.mod": "compiled/sdktest/go.mod.jinja",
    "sdktest/scenarios_test.go": "compiled/sdktest/scenarios_test.go.jinja",
}
# Files copied as they are: output path -> path under the variant folder.
STATIC: dict[str, str] = {
    **{
        name: f"compiled/runtime/{name}"
        for name in (
            "abi.go",
            "config.go",
            "headers.go",
            "match.go",
            "cidr.go",
            "expr.go",
            "exprsyntax.go",
            "source.go",
            "streams.go",
            "hostcalls_native.go",
            "hostcalls_wasip1.go",
            "host_test.go",
            "plugin_test.go",
            "sdkhost_test.go",
        )
    },
    "sdktest/wasm_test.go": "compiled/sdktest/wasm_test.go",
}
SDK_SUMS = "dynamic/gosum/go.sum"  # the SDK pin's checksums, shared with the dynamic backend
NOT_NEEDED_BY_SDKTEST = ("github.com/valyala/fastjson ",)


def _source(variant: Path, rel: str) -> Path:
    """rel in the variant folder when it overrides it, else the built-in one."""
    own = variant / rel
    return own if own.is_file() else generators_root() / "headers" / rel


def _sdk_sums(variant: Path) -> bytes:
    lines = _source(variant, SDK_SUMS).read_bytes().decode().splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.startswith(NOT_NEEDED_BY_SDKTEST)).encode()


def context(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, Any]:
    """What the compiled backend's templates read."""
    rules = program.build(plan)
    return {
        **base_context(plan),
        **rules,
        **testdata.inline_lists(),
        "plugin_config": rules["example_config"],
        # go.mod of the plugin: a Go version every supported TinyGo accepts (upstream Go
        # builds it too); the nested sdktest module keeps plan.go_directive for the SDK.
        "plugin_go_directive": TINYGO_GO_DIRECTIVE,
        "native_scenarios": testdata.native_scenarios(plan, scenarios),
        "sdk_scenarios": testdata.sdk_scenarios(plan, scenarios),
    }


def render(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin's source files (not deploy/), keyed by relative POSIX path."""
    variant = variant_dir(plan)
    ctx = context(plan, scenarios)
    files = render_templates(variant, COMMON_TEMPLATES, {**ctx, "scenarios": scenarios})
    for out, template in TEMPLATES.items():
        folder = _source(variant, template).parents[template.count("/")]
        scenario_lines = (
            ctx["sdk_scenarios"] if out.startswith("sdktest/") else ctx["native_scenarios"]
        )
        rendered = render_templates(folder, {out: template}, {**ctx, "scenarios": scenario_lines}, extras=False)  # fmt: skip
        files.update(rendered)
    for out, rel in STATIC.items():
        files[out] = _source(variant, rel).read_bytes()
    for out in edits.runtime_files(plan.config):  # only when a rule needs them
        files[out] = _source(variant, f"compiled/runtime/{out}").read_bytes()
    files["sdktest/go.sum"] = _sdk_sums(variant)
    return files
