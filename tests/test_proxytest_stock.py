"""Issue 17, item 1: every example's plugin.wasm, built by either toolchain, runs in the proxy-wasm
Go SDK's stock, unmodified proxytest host (wazero), which calls every HTTP callback whether or not
the module exports it. sdktest/wasm_test.go makes the calls a plugin author's test makes: request
headers, body and trailers, response headers, body and trailers, then CompleteHttpContext
(proxy_on_done, proxy_on_log, proxy_on_delete), for every scenario."""

from __future__ import annotations

import pytest

from tests.helpers import EXAMPLES
from wasmgen.build.compile import go_test
from wasmgen.pipeline import Built

pytestmark = pytest.mark.slow
NAMES = [e.stem for e in EXAMPLES]


def _in_proxytest(built: Built) -> None:
    result = go_test(built.out_dir / "sdktest", args=("-count=1", "-v", "."), check=False)
    assert result.ok, result.output
    assert "--- PASS: TestScenarios" in result.output
    assert "panic" not in result.output


@pytest.mark.parametrize("example", NAMES)
def test_go_build_runs_in_stock_proxytest(built_examples: dict[str, Built], example: str) -> None:
    _in_proxytest(built_examples[example])


@pytest.mark.parametrize("example", NAMES)
def test_tinygo_build_runs_in_stock_proxytest(built_tinygo: dict[str, Built], example: str) -> None:
    _in_proxytest(built_tinygo[example])
