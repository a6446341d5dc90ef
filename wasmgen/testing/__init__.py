"""Stage 12: run a spec's cases and derived traffic through a built plugin, and report."""

from __future__ import annotations

from wasmgen.testing.report import junit_xml, report
from wasmgen.testing.runner import CaseResult, check_case, check_scenario, run

__all__ = ["CaseResult", "check_case", "check_scenario", "junit_xml", "report", "run"]
