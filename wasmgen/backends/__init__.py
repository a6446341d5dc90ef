"""Stage 4: backends render a plan (and its test traffic) into the plugin's source files, in memory."""

from __future__ import annotations

from wasmgen.plan import Plan
from wasmgen.semantics import Scenario


def render_sources(plan: Plan, scenarios: tuple[Scenario, ...]) -> dict[str, bytes]:
    """The plugin project's source files for the plan's backend, keyed by relative path."""
    # Each backend loads when a plan names it: a run renders one.
    if plan.backend == "compiled":
        from wasmgen.backends import compiled

        return compiled.render(plan, scenarios)
    from wasmgen.backends import dynamic

    return dynamic.render(plan, scenarios)


__all__ = ["render_sources"]
