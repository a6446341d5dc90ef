"""Stage 4: backends render a plan (and its test traffic) into the plugin's source files, in memory."""

from __future__ import annotations

from wasmgen.backends import compiled, dynamic
from wasmgen.plan import Plan
from wasmgen.semantics import Scenario


def render_sources(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin project's source files for the plan's backend, keyed by relative path."""
    if plan.backend == "compiled":
        return compiled.render(plan, scenarios)
    return dynamic.render(plan, scenarios)


__all__ = ["render_sources"]
