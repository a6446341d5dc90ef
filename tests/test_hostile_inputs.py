"""What a user hands wasmgen is read only when it is a regular file of bounded size, and a spec's
templates run in Jinja's sandbox, from a folder under the spec's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli, snapshot

LAB = (ROOT / "examples" / "seed-lab.yaml").read_text()


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["device", "fifo", "socket-dir"])
def test_a_spec_that_is_not_a_regular_file_is_one_line(tmp_path: Path, kind: str) -> None:
    """/dev/zero (through a symlink) was read until the OOM killer came; a FIFO hung forever."""
    spec = tmp_path / "spec.yaml"
    if kind == "device":
        spec.symlink_to("/dev/zero")
        why = "is a device, not a regular file"
    elif kind == "fifo":
        os.mkfifo(spec)
        why = "is a FIFO, not a regular file"
    else:
        spec.mkdir()
        why = "is a directory, expected a YAML file"
    result = run_cli("generate", spec, "-o", tmp_path / "out", timeout=60)
    assert result.code == 2
    assert _one_line(result.stderr) == f"{spec}: {why}"
    assert not (tmp_path / "out").exists()


def test_a_spec_over_the_size_cap_is_refused_before_reading(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    with spec.open("wb") as fh:
        fh.truncate(3 << 30)  # sparse: 3 GiB that cost nothing on disk
    result = run_cli("build", spec, "-o", tmp_path / "out", timeout=60)
    assert result.code == 2
    assert _one_line(result.stderr) == (
        f"{spec}: is {3 << 30} bytes, more than the {1 << 20} allowed"
    )


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_inspect_config_that_is_not_a_regular_file(
    tmp_path: Path, raw_wasm: bytes, target: str
) -> None:
    """`inspect --run --config @/dev/zero` ate the machine; `@FIFO` hung."""
    wasm = tmp_path / "plugin.wasm"
    wasm.write_bytes(raw_wasm)
    if target == "fifo":
        target = str(tmp_path / "config")
        os.mkfifo(target)
    result = run_cli("inspect", wasm, "--run", "--config", f"@{target}", timeout=60)
    assert result.code == 2, result.stderr
    kind = "a device" if target == "/dev/zero" else "a FIFO"
    assert f"error: --config @{target}: is {kind}, not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def _spec_with_templates(tmp_path: Path, templates: str) -> Path:
    spec = tmp_path / "spec" / "spec.yaml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(LAB + f"templates: {templates}\n")
    return spec


def test_spec_templates_render_in_the_sandbox(tmp_path: Path) -> None:
    """A template reaching Python's internals ran `os.system` during generate."""
    marker = tmp_path / "pwned"
    spec = _spec_with_templates(tmp_path, "tpl")
    tpl = spec.parent / "tpl"
    tpl.mkdir()
    (tpl / "notes.txt.jinja").write_text(
        "plugin {{ plan.name }}\n{{ cycler.__init__.__globals__.os.system('touch "
        + str(marker)
        + "') }}\n"
    )
    out = tmp_path / "out"
    result = run_cli("generate", spec, "-o", out)
    assert result.code == 2
    assert not marker.exists(), "the template ran code"
    line = _one_line(result.stderr.split("\n  hint:")[0])
    assert line.startswith(f"error: {tpl / 'notes.txt.jinja'}:2: refused by the template sandbox")
    assert not out.exists()
    (tpl / "notes.txt.jinja").write_text("plugin {{ plan.name }}\n")
    assert run_cli("generate", spec, "-o", out).code == 0
    assert (out / "notes.txt").read_text() == "plugin wasm-example\n"


@pytest.mark.parametrize(
    ("templates", "why"),
    [
        ("/etc", "is an absolute path"),
        ("/proc/self", "is an absolute path"),
        ("../../..", "climbs out of the spec's folder with '..'"),
        ('""', "is empty"),
        ("escape", "resolves to /proc/"),
        ("missing", "does not exist"),
    ],
)
def test_templates_stay_under_the_spec_folder(tmp_path: Path, templates: str, why: str) -> None:
    spec = _spec_with_templates(tmp_path, templates)
    (spec.parent / "escape").symlink_to("/proc/self")
    out = tmp_path / "out"
    result = run_cli("generate", spec, "-o", out)
    assert result.code == 2
    line = _one_line(result.stderr)
    assert line.startswith(f"{spec}:{LAB.count(chr(10)) + 1}:1: templates: "), line
    assert why in line
    assert not out.exists()


def test_trusted_templates_may_be_anywhere_but_must_be_a_folder(tmp_path: Path) -> None:
    """--trust-templates lifts the confinement; /dev/zero said "does not exist"."""
    spec = _spec_with_templates(tmp_path, "/dev/zero")
    result = run_cli("--trust-templates", "generate", spec, "-o", tmp_path / "out")
    assert result.code == 2
    assert "templates: '/dev/zero' is not a directory" in _one_line(result.stderr)
    elsewhere = tmp_path / "elsewhere"
    assert run_cli("variant", elsewhere).code == 0
    (elsewhere / "x.txt.jinja").write_text("{{ plan.name }}\n")
    spec = _spec_with_templates(tmp_path, str(elsewhere))
    assert run_cli("generate", spec, "-o", tmp_path / "out").code == 2
    result = run_cli("--trust-templates", "generate", spec, "-o", tmp_path / "out")
    assert result.code == 0, result.stderr
    assert (tmp_path / "out" / "x.txt").read_text() == "wasm-example\n"


def test_a_template_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    spec = _spec_with_templates(tmp_path, "tpl")
    (spec.parent / "tpl").mkdir()
    os.mkfifo(spec.parent / "tpl" / "hang.txt.jinja")
    before = snapshot(tmp_path)
    result = run_cli("generate", spec, "-o", tmp_path / "out", timeout=60)
    assert result.code == 2
    assert "hang.txt.jinja: is a FIFO, not a regular file" in result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["wasmgen.lock", ".wasmgen-files.json"])
def test_an_oversized_lock_or_record_in_the_output_is_refused(tmp_path: Path, name: str) -> None:
    """The output directory is the user's too: wasmgen's own bookkeeping files there are read
    only when they are small regular files (a sparse 2 GiB file is not read into memory)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(LAB)
    out = tmp_path / "out"
    assert run_cli("generate", spec, "-o", out).code == 0
    with open(out / name, "wb") as fh:
        fh.truncate(2 * 1024**3)  # sparse: no disk used
    result = run_cli("generate", spec, "-o", out)
    assert result.code == 2 and "bytes, more than the" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
