"""wasmgen inspect and build against modules and targets Envoy would refuse: exit 2, one line, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli
from tests.test_host import wat_plugin
from wasmgen.pipeline import Built


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def test_inspect_reports_a_built_plugin(built_dynamic: dict[str, Built]) -> None:
    """ABI, callbacks, imports, size and loadable versions; --run starts it in the embedded host."""
    wasm = built_dynamic["seed-lab"].wasm
    result = run_cli("inspect", wasm, "--run", "--config", '{"response": [{"set": {"x-a": "1"}}]}')
    assert result.code == 0, result.stderr
    for text in ("ABI:        proxy-wasm 0.2.", "proxy_on_response_headers", "wasi_snapshot_preview1.fd_write",
                 "Istio <= 1.24 (Envoy <= 1.32), WASI set S15: no", "Istio >= 1.31 (Envoy >= 1.39), WASI set S45: yes",
                 f"size:       {wasm.stat().st_size} bytes", "starts on Istio 1.28"):  # fmt: skip
        assert text in result.stdout, text
    bad = run_cli("inspect", wasm, "--run", "--config", "not json")
    assert bad.code == 2 and "refused to start" in bad.stderr and "not valid JSON" in bad.stderr


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("not wasm", lambda: b"#!/bin/sh\necho hi\n", "not a WebAssembly module"),
        ("truncated", lambda: b"\0asm\x01\0\0\0\x01\x05", "WebAssembly"),
        ("no proxy-wasm exports", lambda: b"\0asm\x01\0\0\0", "proxy_abi_version"),
        ("traps in init", lambda: wat_plugin("(unreachable)"), "_initialize trapped"),
    ],
)
def test_malformed_modules(tmp_path: Path, name: str, make: object, reason: str) -> None:
    """Each malformed module gives exit 2 and a one-line reason."""
    path = tmp_path / "m.wasm"
    path.write_bytes(make())  # type: ignore[operator]
    result = run_cli("inspect", path, "--run")
    assert result.code == 2, (name, result.stdout, result.stderr)
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and reason in errors[0], (name, result.stderr)
    assert "Traceback" not in result.stderr


def test_command_module_is_refused(raw_command_wasm: bytes, tmp_path: Path) -> None:
    """A Go build without -buildmode=c-shared (a WASI command) is refused with the reason."""
    path = tmp_path / "cmd.wasm"
    path.write_bytes(raw_command_wasm)
    result = run_cli("inspect", path)
    assert result.code == 2
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and "_start" in result.stderr and "c-shared" in result.stderr


@pytest.mark.slow
def test_go_build_for_istio_124_fails_and_points_at_tinygo(
    built_examples: dict[str, Built],
) -> None:
    """--istio 1.24 with upstream Go lists every missing WASI import and says TinyGo is the way."""
    built = built_examples["seed-lab"]
    result = run_cli(
        "build", ROOT / "examples" / "seed-lab.yaml", "-o", built.out_dir, "--istio", "1.24"
    )
    assert result.code == 2 and "Traceback" not in result.stderr
    for name in ("sched_yield", "poll_oneoff"):  # the Go runtime's own; S15 lacks both
        assert f"wasi_snapshot_preview1.{name}" in result.stderr
    assert "--toolchain tinygo" in result.stderr
    ok = run_cli(
        "build", ROOT / "examples" / "seed-lab.yaml", "-o", built.out_dir, "--envoy", "1.39"
    )
    assert ok.code == 0 and "(cached" in ok.stdout and "poll_oneoff" not in ok.stderr
    warned = run_cli(
        "build", ROOT / "examples" / "seed-lab.yaml", "-o", built.out_dir, "--istio", "1.27"
    )
    assert (
        warned.code == 0 and "poll_oneoff" in warned.stderr and "golang/go#78513" in warned.stderr
    )


@pytest.mark.slow
def test_compile_error_shows_the_compiler_message(tmp_path: Path) -> None:
    """A variant whose Go does not compile: exit 2 with go's file:line message, no traceback."""
    assert run_cli("variant", tmp_path / "v").code == 0
    main = tmp_path / "v" / "dynamic" / "main.go.jinja"
    main.write_text(main.read_text().replace("func main() {}", "func main() { undefinedThing() }"))
    spec = tmp_path / "spec.yaml"
    spec.write_text((ROOT / "examples" / "seed-lab.yaml").read_text() + "templates: v\n")
    result = run_cli("build", spec, "-o", tmp_path / "out", "--backend", "dynamic")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "main.go:" in result.stderr and "undefined: undefinedThing" in result.stderr
    assert not (tmp_path / "out" / "plugin.wasm").exists()


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "too-big"])
def test_inspect_refuses_what_is_not_a_module_file(tmp_path: Path, kind: str) -> None:
    """Devices, FIFOs, directories and oversized files are refused at once, without reading them."""
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "big.wasm"
        with path.open("wb") as fh:
            fh.truncate(300 * 1024 * 1024)  # sparse: no disk used
    result = run_cli("inspect", path, timeout=30)
    assert result.code == 2, result.stderr
    assert len(_error_lines(result.stderr)) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("damage", ["zeros appended", "custom section name too long"])
def test_inspect_validates_the_module(
    built_examples: dict[str, Built], tmp_path: Path, damage: str
) -> None:
    """A module a WebAssembly engine would refuse is never reported as loadable."""
    data = built_examples["seed-lab"].wasm.read_bytes()
    if damage == "zeros appended":
        data += b"\0" * (8 * 1024 * 1024)
    else:  # section 0, size 6, then a name length of 0xffffffff
        data += b"\x00\x06\xff\xff\xff\xff\x0f\x00"
    path = tmp_path / "bad.wasm"
    path.write_bytes(data)
    result = run_cli("inspect", path)
    assert result.code == 2, result.stdout
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and "invalid WebAssembly module" in errors[0], result.stderr


def test_inspect_run_with_a_missing_config_file(built_examples: dict[str, Built]) -> None:
    """--config @FILE that does not exist: one line, exit 2."""
    result = run_cli(
        "inspect", built_examples["seed-lab"].wasm, "--run", "--config", "@/nonexistent"
    )
    assert result.code == 2 and "Traceback" not in result.stderr
    assert _error_lines(result.stderr) == [
        "error: --config @/nonexistent: no such file"  # worded as for a missing spec
    ]
