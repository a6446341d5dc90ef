"""Every way a user can hold the CLI wrong ends in one line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT, run_cli

SPEC = next(e for e in EXAMPLES if e.stem == "seed-lab")


def _one_error(result_stderr: str) -> str:
    assert "Traceback" not in result_stderr, result_stderr
    lines = [ln for ln in result_stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result_stderr
    return lines[0]


def _variant_spec(tmp_path: Path, template: bytes) -> Path:
    variant = tmp_path / "variant"
    assert run_cli("variant", variant).code == 0
    (variant / "extra.txt.jinja").write_bytes(template)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text() + "templates: variant\n")
    return spec


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (b"line one\n{{ 1/0 }}\n", "extra.txt.jinja:2: template error: ZeroDivisionError"),
        (b"caf\xe9 {{ plan.name }}\n", "extra.txt.jinja: template is not UTF-8 (byte 0xe9"),
    ],
)
def test_broken_variant_templates(tmp_path: Path, template: bytes, reason: str) -> None:
    spec = _variant_spec(tmp_path, template)
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2
    assert reason in _one_error(result.stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["test", SPEC, "--junit", "."], "--junit . is a directory"),
        (["push", SPEC, "--image", "127.0.0.1:99999/w:v1"], "port 99999 is outside 1-65535"),
        (["serve", SPEC, "--upstream", "http://127.0.0.1:99999"], "--upstream"),
        (["serve", SPEC, "--upstream", "ftp://x"], "must be an http:// URL"),
        (
            ["build", SPEC, "-o", "/proc/self/wasmgen-build"],
            "cannot write /proc/self/wasmgen-build",
        ),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, args: list[object], reason: str) -> None:
    result = run_cli(*args, cwd=tmp_path)  # type: ignore[arg-type]
    assert result.code == 2, result.stderr
    assert reason in _one_error(result.stderr)


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_port_out_of_range_is_a_usage_error(port: str) -> None:
    result = run_cli("serve", SPEC, "--upstream", "http://127.0.0.1:8000", "--port", port)
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "--port" in result.stderr


def test_init_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    result = run_cli("init", blocker / "spec.yaml")
    assert result.code == 2
    assert "cannot write" in _one_error(result.stderr)


def test_build_record_that_is_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("generate", SPEC, "-o", out).code == 0
    (out / "plugin.wasm.buildinfo.json").mkdir()
    result = run_cli("build", SPEC, "-o", out)
    assert result.code == 2
    assert "plugin.wasm.buildinfo.json is a directory" in _one_error(result.stderr)


@pytest.mark.parametrize("name", ["123", "null", "1e3", "0x1f", "true"])
def test_init_names_that_look_like_numbers_still_load(tmp_path: Path, name: str) -> None:
    """The starter quotes the name, so YAML keeps it a string and the spec generates."""
    spec = tmp_path / "spec.yaml"
    assert run_cli("init", spec, "--name", name).code == 0
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 0, result.stderr


def test_internal_errors_are_one_line_with_a_debug_hint(tmp_path: Path) -> None:
    """An unexpected exception (a bug, simulated by patching the loader to raise) is exit 3
    with one line and a hint; --debug shows the traceback."""
    probe = (
        "import sys, wasmgen.cli.project as p\n"
        "def boom(*a, **k):\n    raise RuntimeError('boom')\n"
        "p.load = boom\n"
        "from wasmgen.cli import main\n"
        "main(sys.argv[1:])\n"
    )

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe, *extra, "generate", str(SPEC), "-o", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )

    plain = run()
    assert plain.returncode == 3 and "Traceback" not in plain.stderr
    assert "internal error: RuntimeError: boom" in plain.stderr and "--debug" in plain.stderr
    debug = run("--debug")
    assert debug.returncode == 3 and "Traceback" in debug.stderr
