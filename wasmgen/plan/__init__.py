"""Stage 2: the plan, a frozen and fully resolved form of a spec that every later stage reads."""

from __future__ import annotations

from wasmgen.plan.pin import LOCK_FILE, Pin
from wasmgen.plan.plan import Flavor, Plan, make_plan

__all__ = ["LOCK_FILE", "Flavor", "Pin", "Plan", "make_plan"]
