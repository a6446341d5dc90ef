"""The dynamic backend: a generic rule interpreter on the proxy-wasm Go SDK, rules in pluginConfig."""

from __future__ import annotations

from wasmgen.backends.templating import (
    COMMON_TEMPLATES,
    base_context,
    generators_root,
    render_templates,
    variant_dir,
)
from wasmgen.plan import Plan
from wasmgen.records import record
from wasmgen.semantics import Scenario


@record
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
    BadConfig(
        "unknown value expression",
        '{"response": [{"set": {"x-a": "${request.foo}"}}]}',
        'response[0].set["x-a"]: unknown expression ${request.foo}; known: request.header.NAME',
    ),
    BadConfig(
        "path group without a path regex",
        '{"request": [{"set": {"x-a": "${path.1}"}, "when": {"path": {"prefix": "/"}}}]}',
        "${path.1} needs a when.path.regex on the rule, whose groups it reads",
    ),
    BadConfig(
        "response value in a request rule",
        '{"request": [{"set": {"x-a": "${response.status}"}}]}',
        "${response.status} is only known to response rules",
    ),
    BadConfig(
        "SameSite=None without Secure",
        '{"response": [{"cookieFlags": {"sameSite": "None"}}]}',
        "None needs secure: true",
    ),
)

# Output path -> template (under the variant's dynamic/ folder).
TEMPLATES: dict[str, str] = {
    "go.mod": "dynamic/go.mod.jinja",
    "main.go": "dynamic/main.go.jinja",
    "config.go": "dynamic/config.go.jinja",
    "main_test.go": "dynamic/main_test.go.jinja",
    "edits.go": "dynamic/edits.go.jinja",
    "values.go": "dynamic/values.go.jinja",
    "cidr.go": "compiled/runtime/cidr.go",  # address blocks, shared with the compiled backend
}
# Shared with the compiled backend (output -> under the variant): the value edits' string work,
# and the value expressions' grammar and start-up checks.
SHARED = {
    "valueedit.go": "compiled/runtime/valueedit.go",
    "exprsyntax.go": "compiled/runtime/exprsyntax.go",
}


def render(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin's source files (not deploy/), keyed by relative POSIX path."""
    variant = variant_dir(plan)
    context = {**base_context(plan), "scenarios": scenarios, "bad_configs": BAD_CONFIGS}
    files = render_templates(variant, {**TEMPLATES, **COMMON_TEMPLATES}, context)
    sums = variant / "dynamic" / "gosum" / plan.sdk_sum_file
    if not sums.is_file():
        sums = generators_root() / "headers" / "dynamic" / "gosum" / plan.sdk_sum_file
    files["go.sum"] = sums.read_bytes()
    for out, rel in SHARED.items():
        own = variant / rel
        files[out] = (own if own.is_file() else generators_root() / "headers" / rel).read_bytes()
    return files
