"""The generated Go module compiles to wasm with the real toolchain and passes its own tests."""

from __future__ import annotations

import pytest

from tests.helpers import EXAMPLES
from wasmgen.build import go_test
from wasmgen.project import Built
from wasmgen.wasm import inspect_module

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_generated_go_test_passes_natively_and_in_wasm(
    built_examples: dict[str, Built], example: str
) -> None:
    """`go test` in the generated project runs every scenario natively and in plugin.wasm (wazero)."""
    built = built_examples[example]
    result = go_test(
        built.out_dir, env={"WASMGEN_REQUIRE_WASM": "1"}, args=("-count=1", "-v", "./...")
    )
    assert result.ok
    out = result.output
    assert "--- PASS: TestScenarios/wasm" in out and "--- PASS: TestScenarios/go" in out
    assert "--- PASS: TestBadConfiguration/wasm/not_JSON" in out
    assert "FAIL" not in out


def test_compiled_module_shape(built_examples: dict[str, Built]) -> None:
    """Each build is a proxy-wasm reactor on the current SDK: _initialize, ABI 0.2.x, no _start."""
    for built in built_examples.values():
        info = inspect_module(built.wasm.read_bytes())
        assert info.is_reactor and not info.has_start
        assert info.abi_version in ("0.2.0", "0.2.1")
        assert {
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_configure",
        } <= set(info.callbacks)
        assert built.compat.loadable
