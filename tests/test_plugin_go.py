"""The generated Go module compiles to wasm with the real toolchain and passes its own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wasmgen
from tests.helpers import EXAMPLES, ROOT, run_cli
from wasmgen.build.compile import go_test
from wasmgen.pipeline import Built
from wasmgen.plan.plan import TINYGO_GO_RANGES
from wasmgen.wasm.module import inspect_module

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_generated_go_test_passes_natively_and_in_wasm(
    built_examples: dict[str, Built], built_dynamic: dict[str, Built], example: str
) -> None:
    """`go test` in the generated project runs every scenario natively and in plugin.wasm in
    the SDK's wazero host, for both backends."""
    env = {"WASMGEN_REQUIRE_WASM": "1"}
    dynamic = go_test(built_dynamic[example].out_dir, env=env, args=("-count=1", "-v", "./..."))
    assert dynamic.ok and "FAIL" not in dynamic.output
    out = dynamic.output
    assert "--- PASS: TestScenarios/wasm" in out and "--- PASS: TestScenarios/go" in out
    assert "--- PASS: TestBadConfiguration/wasm/not_JSON" in out
    compiled = go_test(built_examples[example].out_dir, env=env, args=("-count=1", "-v", "./..."))
    assert compiled.ok and "FAIL" not in compiled.output
    out = compiled.output
    assert "--- PASS: TestScenarios" in out and "--- PASS: TestBadConfigs" in out
    assert "--- PASS: TestInSDKHost" in out  # plugin.wasm in the SDK's wazero host


def test_compiled_module_shape(built_examples: dict[str, Built]) -> None:
    """Each build is a proxy-wasm reactor on the current SDK: _initialize, ABI 0.2.x, no _start."""
    for built in built_examples.values():
        info = inspect_module(built.wasm.read_bytes())
        assert info.is_reactor and not info.has_start
        assert info.abi_version in ("0.2.0", "0.2.1")
        callbacks = set(info.callbacks)
        assert {"proxy_on_configure", "proxy_on_context_create", "proxy_on_delete"} <= callbacks
        # Which header callbacks a compiled module exports follows its rules
        # (test_compiled_build checks the exact set); every plugin has at least one.
        assert callbacks & {"proxy_on_request_headers", "proxy_on_response_headers"}
        assert built.compat.loadable


def test_tinygo_go_mod_fits_every_supported_tinygo(tmp_path: Path) -> None:
    """The TinyGo flavour's go directive is one TinyGo 0.32, 0.33 and 0.34 all accept (per their
    release notes: Go 1.19-1.22, 1.19-1.23, 1.19-1.23), and no lower than its dependencies need.

    TinyGo itself cannot be installed here; the table in wasmgen.plan is checked against the
    go.mod files of the dependencies in the module cache."""
    wasmgen.generate(wasmgen.load_spec(EXAMPLES[0]), tmp_path, flavor="tinygo", backend="dynamic")
    directive = next(
        line.split()[1]
        for line in (tmp_path / "go.mod").read_text().splitlines()
        if line.startswith("go ")
    )
    version = tuple(int(x) for x in directive.split("."))
    assert set(TINYGO_GO_RANGES) == {(0, 32), (0, 33), (0, 34)}
    for release, (low, high) in TINYGO_GO_RANGES.items():
        assert low <= version <= high, (release, directive)
    result = go_test(
        tmp_path, args=("-count=1", "-run", "^$", "./...")
    )  # resolves the module graph
    assert result.ok, result.output


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_tinygo_flavour_passes_its_tests_natively(tmp_path: Path, example: str) -> None:
    """The dynamic backend's TinyGo flavour (tetratelabs SDK v0.24.0) passes its generated tests
    natively (its wasm half: tests/test_tinygo.py)."""
    out = tmp_path / example
    spec = wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml")
    wasmgen.generate(spec, out, flavor="tinygo", backend="dynamic")
    result = go_test(out, args=("-count=1", "-v", "./..."))
    assert result.ok and "--- PASS: TestScenarios/go" in result.output
    assert "plugin.wasm not built" in result.output


def test_tinygo_build_without_tinygo_says_what_to_do(tmp_path: Path) -> None:
    """--toolchain tinygo on a machine without TinyGo: exit 2, the reason, and what to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {
        "PATH": f"{empty}{os.pathsep}{os.environ['PATH']}",
        "WASMGEN_TINYGO": str(empty / "tinygo"),
    }
    result = run_cli("build", ROOT / "examples" / "seed-lab.yaml", "-o", tmp_path / "out",
                     "--toolchain", "tinygo", "--istio", "1.24", env=env)  # fmt: skip
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "tinygo" in result.stderr.lower() and "0.3" in result.stderr


@pytest.mark.parametrize("backend", ["compiled", "dynamic"])
@pytest.mark.parametrize(
    ("target", "example"),
    [
        ("FuzzParseConfig", "api-errors"),
        ("FuzzTraffic", "api-errors"),
        ("FuzzTraffic", "preview-beta"),  # random paths and cookies through query/cookie tests
        ("FuzzTraffic", "cookie-hardening"),  # Set-Cookie lines through cookieFlags
        ("FuzzTraffic", "clean-query"),  # paths through removeQuery and setQuery
        ("FuzzTraffic", "cors-dedupe"),  # values through dedupe's quoted-comma splitting
    ],
)
def test_generated_fuzz_targets_find_no_panic(
    built_examples: dict[str, Built],
    built_dynamic: dict[str, Built],
    target: str,
    example: str,
    backend: str,
) -> None:
    """A short `go test -fuzz` run of the generated fuzz targets finds no panic (natively)."""
    built = (built_examples if backend == "compiled" else built_dynamic)[example]
    result = go_test(
        built.out_dir, args=("-run", "^$", "-fuzz", f"^{target}$", "-fuzztime", "5s", ".")
    )
    assert result.ok and "PASS" in result.output
