"""Test results as text for the terminal and as JUnit XML for CI systems."""

from __future__ import annotations

import re

from wasmgen.errors import printable
from wasmgen.testing.runner import CaseResult


def report(results: list[CaseResult]) -> str:
    """The readable pass/fail report."""
    lines = []
    runner = None
    for r in results:
        if r.runner != runner:
            runner = r.runner
            lines.append(f"in {runner}:")
        kind = "case" if r.declared else "rule"
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {kind}  {printable(r.name)}")
        lines.extend(f"        {printable(f)}" for f in r.failures)
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def junit_xml(suite: str, results: list[CaseResult]) -> bytes:
    """The results as a JUnit XML report, for CI systems that collect them; control characters
    are escaped (XML 1.0 cannot hold them, and a report that is not well-formed is lost)."""
    import xml.etree.ElementTree as ET

    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuite", name=suite, tests=str(len(results)), failures=str(failures))
    for r in results:
        runner = re.sub(r"[^a-z0-9.]+", "-", r.runner.lower())
        kind = "case" if r.declared else "rule"
        case = ET.SubElement(
            root,
            "testcase",
            classname=f"{suite}.{runner}.{kind}",
            name=printable(f"[{r.runner}] {r.name}"),
        )
        if r.failures:
            failure = ET.SubElement(case, "failure", message=printable(r.failures[0]))
            failure.text = "\n".join(map(printable, r.failures))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
