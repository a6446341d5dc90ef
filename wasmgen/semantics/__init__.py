"""Stage 3: what the rules mean: the reference model and the test traffic derived from it."""

from __future__ import annotations

from wasmgen.semantics import model
from wasmgen.semantics.scenarios import Derived, Scenario, derive, derive_for, test_case_headers

__all__ = ["Derived", "Scenario", "derive", "derive_for", "model", "test_case_headers"]
