"""The dynamic backend: a generic rule interpreter on the proxy-wasm Go SDK, rules in pluginConfig."""

from __future__ import annotations

from dataclasses import dataclass

from wasmgen.backends.templating import generators_root, render_templates
from wasmgen.errors import WasmgenError
from wasmgen.plan import Plan
from wasmgen.semantics import Scenario
from wasmgen.semantics.verification import verification


@dataclass(frozen=True)
class BadConfig:
    """A broken plugin configuration and the text its critical log line must contain."""

    name: str
    config: str
    want: str


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

# Output path -> template, for the headers variant.
TEMPLATES: dict[str, str] = {
    "go.mod": "go.mod.jinja",
    "main.go": "main.go.jinja",
    "config.go": "config.go.jinja",
    "main_test.go": "main_test.go.jinja",
    "Dockerfile": "Dockerfile.jinja",
    "README.md": "README.md.jinja",
    ".gitignore": "gitignore.jinja",
}


def render(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin's source files (not deploy/), keyed by relative POSIX path."""
    builtin = generators_root() / "headers"
    variant_dir = plan.spec.templates_dir() or builtin
    if not variant_dir.is_dir():
        raise WasmgenError(
            f"template directory {variant_dir} does not exist",
            hint="create one with `wasmgen variant DIR`, or drop templates: from the spec",
        )
    context = {
        "plan": plan,
        "spec": plan.spec,
        "scenarios": scenarios,
        "bad_configs": BAD_CONFIGS,
        "check": verification(plan),
    }
    files = render_templates(variant_dir, TEMPLATES, context)
    sums = variant_dir / "gosum" / plan.sdk_sum_file
    files["go.sum"] = (
        sums if sums.is_file() else builtin / "gosum" / plan.sdk_sum_file
    ).read_bytes()
    return files
