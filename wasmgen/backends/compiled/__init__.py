"""The compiled backend: Go written for one spec against the proxy-wasm ABI (in progress)."""

from __future__ import annotations

from wasmgen.errors import WasmgenError
from wasmgen.plan import Plan
from wasmgen.semantics import Scenario


def render(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin's source files for the compiled backend."""
    raise WasmgenError(
        "the compiled backend is not available in this build", hint="use --backend dynamic"
    )
