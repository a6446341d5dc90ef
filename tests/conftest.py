"""Session fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import EXAMPLES
from wasmgen.build.toolchain import TinyGoToolchain, find_tinygo
from wasmgen.errors import BuildError
from wasmgen.pipeline import Built, build

# Specs may take their image registry from $REPOSITORY (as the lab does); the goldens assume
# the default, whatever the developer has exported.
os.environ.pop("REPOSITORY", None)
# The suite means upstream Go unless a test names a toolchain (tests/test_tinygo*.py pass
# --toolchain or WASMGEN_TOOLCHAIN themselves): with a TinyGo installed, auto would pick it for
# every CLI run a test starts, and a serve of a shared session build would swap its module.
os.environ.setdefault("WASMGEN_TOOLCHAIN", "go")

pytest_plugins = ["tests.registry_fixture"]
from tests.conftest_host import raw_command_wasm, raw_wasm, sdk_wasm  # noqa: E402, F401


@pytest.fixture(scope="session")
def built_examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every example generated and compiled once per session with the real Go toolchain."""
    root = tmp_path_factory.mktemp("built")
    quiet = Console(stderr=True, quiet=True)
    return {
        example.stem: build(wasmgen.load_spec(example), root / example.stem, "go", console=quiet)
        for example in EXAMPLES
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under .ci/run (WASMGEN_STRICT_SKIPS=1) a skipped test fails: CI installs everything the
    tests need, so a skip there means a missing dependency, not an optional extra."""
    report = yield
    if (
        os.environ.get("WASMGEN_STRICT_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be missing: {reason}"
    return report


@pytest.fixture(scope="session")
def built_dynamic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every example built with the dynamic backend (rules in pluginConfig), once per session."""
    root = tmp_path_factory.mktemp("built-dynamic")
    quiet = Console(stderr=True, quiet=True)
    return {
        example.stem: build(
            wasmgen.load_spec(example), root / example.stem, "go", console=quiet, backend="dynamic"
        )
        for example in EXAMPLES
    }


@pytest.fixture(scope="session")
def tinygo() -> TinyGoToolchain:
    """The TinyGo that builds the TinyGo suite ($WASMGEN_TINYGO or PATH). Missing, the TinyGo
    tests skip on a developer's machine and fail in CI, which builds it
    (`bash ../shared/tinygo/build.sh`)."""
    try:
        return find_tinygo()
    except BuildError as exc:
        pytest.skip(f"no TinyGo: {exc.message}; run `bash ../shared/tinygo/build.sh`")


@pytest.fixture(scope="session")
def built_tinygo(
    tmp_path_factory: pytest.TempPathFactory, tinygo: TinyGoToolchain
) -> dict[str, Built]:
    """Every example compiled on TinyGo with the default (compiled) backend, once per session."""
    root = tmp_path_factory.mktemp("built-tinygo")
    quiet = Console(stderr=True, quiet=True)
    return {
        example.stem: build(
            wasmgen.load_spec(example), root / example.stem, "tinygo", console=quiet
        )
        for example in EXAMPLES
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep fast tests first so a broken basic feature fails before the slow builds."""
    items.sort(key=lambda item: 1 if item.get_closest_marker("slow") else 0)


__all__ = ["Path", "built_dynamic", "built_examples", "built_tinygo", "tinygo"]
