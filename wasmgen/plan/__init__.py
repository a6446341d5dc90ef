"""Stage 2: the plan, a frozen and fully resolved form of a spec that every later stage reads."""

from __future__ import annotations

from wasmgen.plan.pin import LOCK_FILE, Pin
from wasmgen.plan.plan import BACKENDS, DEFAULT_BACKEND, Backend, Flavor, Plan, make_plan
from wasmgen.plan.values import ValueSlot

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "LOCK_FILE",
    "Backend",
    "Flavor",
    "Pin",
    "Plan",
    "ValueSlot",
    "make_plan",
]
