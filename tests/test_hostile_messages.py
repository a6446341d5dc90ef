"""Odd names and values in a spec, its file name and the CLI's arguments give one escaped line
at their place and exit 2: no traceback, no raw escape sequence, no file contents."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli
from wasmgen.testing import junit_xml
from wasmgen.testing.runner import CaseResult

LAB = (ROOT / "examples" / "seed-lab.yaml").read_text()
END = LAB.count("\n") + 1  # the line after the lab spec


def _raw_cli(*args: bytes) -> subprocess.CompletedProcess[bytes]:
    """The CLI with byte arguments (file names that are not UTF-8)."""
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"wasmgen", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("field", "yaml"),
    [
        ("tests[1].name", 'tests:\n  - name: "bell\\a and \\e[31m"\n    expect: {}\n'),
        ("tests[1].request.path", 'tests:\n  - name: x\n    request: {path: "/a\\0b"}\n    expect: {}\n'),
        ("tests[1].request.host", 'tests:\n  - name: x\n    request: {host: "a\\x1bb"}\n    expect: {}\n'),
        ("request[0].when.path.prefix", 'request:\n  - set: {x-a: b}\n    when: {path: {prefix: "/\\x07"}}\n'),
    ],
)  # fmt: skip
def test_control_characters_in_names_paths_hosts_are_refused_at_their_line(
    tmp_path: Path, field: str, yaml: str
) -> None:
    """A test name with NUL, BEL or ESC wrote JUnit XML that was not well-formed."""
    base = LAB.split("tests:")[0] if yaml.startswith("tests:") else LAB
    spec = tmp_path / "spec.yaml"
    if yaml.startswith("tests:"):
        extra = LAB[len(base) :].removeprefix("tests:\n")
        spec.write_text(base + yaml.replace("tests:\n", "tests:\n" + extra, 1))
    else:
        spec.write_text(LAB + yaml)
    result = run_cli("test", spec, "-o", tmp_path / "out", "--junit", tmp_path / "r.xml")
    assert result.code == 2, result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    line = next(ln for ln in result.stderr.splitlines() if f" {field}: " in ln)
    assert line.startswith(f"{spec}:") and "contains control character 0x" in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.xml").exists()


def test_junit_and_the_report_escape_control_characters() -> None:
    """Whatever reaches a report (a failure quoting a header the plugin wrote) stays XML."""
    results = [CaseResult("case \x00\x07\x1b[31m", ["got 'a\x0bb'"], runner="Envoy 1.36.4")]
    root = ET.fromstring(junit_xml("suite", results))
    case = root.find("testcase")
    assert case is not None
    assert case.get("name") == "[Envoy 1.36.4] case \\x00\\x07\\x1b[31m"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "got 'a\\x0bb'"


def test_a_priority_of_5000_digits_is_exit_2_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(LAB + "priority: " + "9" * 5000 + "\n")
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2
    assert result.stderr.strip() == (
        f"{spec}:{END}:11: a number of more than 4300 digits; no spec field takes one"
    )


def test_a_file_name_that_is_not_utf8_is_escaped(tmp_path: Path) -> None:
    """A spec file name holding byte 0xff gave exit 3 (UnicodeEncodeError)."""
    spec = os.fsencode(tmp_path) + b"/bad\xff\x1b.yaml"
    Path(os.fsdecode(spec)).write_text(LAB + "priority: x\n")
    result = _raw_cli(b"generate", spec, b"-o", os.fsencode(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode() == (
        f"{tmp_path}/bad\\xff\\x1b.yaml:{END}:11: priority: must be a valid integer, unable to "
        "parse string as an integer (got str)\n"
    )
    good = os.fsencode(tmp_path) + b"/good\xff.yaml"
    Path(os.fsdecode(good)).write_text(LAB)
    assert _raw_cli(b"export", good, b"--python").returncode == 0


def test_a_cr_in_the_spec_file_name_does_not_end_lines_of_the_export(tmp_path: Path) -> None:
    """export --python wrote a script with CR-only line endings."""
    spec = tmp_path / "lab\r.yaml"
    spec.write_text(LAB)
    script = tmp_path / "lab.py"
    result = run_cli("export", spec, "--python", "-o", script)
    assert result.code == 0, result.stderr
    text = script.read_bytes()
    assert b"\r" not in text and text.count(b"\n") > 10
    assert text.splitlines()[0] == (
        b'"The wasm-example plugin as a wasmgen spec in Python, exported from lab\\r.yaml."'
    )
    generated = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "from-script")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert generated.returncode == 0, generated.stderr


def test_a_non_spec_file_is_never_echoed_beyond_a_key(tmp_path: Path) -> None:
    """A file that is not a spec had its lines echoed in "unknown key" and duplicate-key errors."""
    secret = "the vault password: see below, it is hunter2, and the launch code is 0000"
    notes = tmp_path / "notes.txt"
    notes.write_text(f"name: x\nimage: a/b:c\n{secret.replace(': ', ' ')}: yes\n")
    result = run_cli("generate", notes, "-o", tmp_path / "out")
    assert result.code == 2 and "hunter2" not in result.stderr and "0000" not in result.stderr
    assert f"{notes}:3:1: the vault password see below, it...: unknown key" in result.stderr
    notes.write_text(f"name: x\nimage: a/b:c\nname: {secret.replace(': ', ' ')}\n")
    result = run_cli("generate", notes, "-o", tmp_path / "out")
    assert result.code == 2 and "hunter2" not in result.stderr, result.stderr
    assert result.stderr.strip() == f"{notes}:3:1: invalid YAML: duplicate key 'name'"


@pytest.mark.slow
def test_junit_to_a_full_disk_names_the_file(tmp_path: Path) -> None:
    """`--junit /dev/full` printed "error:: No space left on device" with no file name."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(LAB)
    result = run_cli("test", spec, "-o", tmp_path / "out", "--junit", "/dev/full")
    assert result.code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --junit /dev/full: cannot write: No space left on device"
    )
