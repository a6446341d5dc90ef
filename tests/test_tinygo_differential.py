"""The hypothesis differential of tests/test_differential.py on TinyGo: random rule sets and
random traffic through the reference model and the compiled plugin built by TinyGo 0.33, which
must give the same headers (the same strategies and profile; upstream Go's build is checked
there)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console

from tests.test_differential import Exchange, agree, rule_sets, traffic
from wasmgen import pipeline
from wasmgen.build.toolchain import TinyGoToolchain
from wasmgen.errors import SpecError
from wasmgen.spec import validate

pytestmark = pytest.mark.slow
QUIET = Console(stderr=True, quiet=True)


@given(config=rule_sets(), exchanges=st.lists(traffic(), min_size=8, max_size=8))
def test_model_and_compiled_on_tinygo_agree(
    tmp_path_factory: pytest.TempPathFactory,
    tinygo: TinyGoToolchain,
    config: dict[str, Any],
    exchanges: list[Exchange],
) -> None:
    try:
        spec = validate({"name": "diff", "image": "r.io/p:v1", **config})
    except SpecError:
        assume(False)  # an order-dependent map or the like: the spec refuses it
        return
    out = tmp_path_factory.mktemp("diff-tinygo")
    built = pipeline.build(spec, out, "tinygo", console=QUIET)
    assert built.result.toolchain == tinygo.version_string
    agree({"compiled on TinyGo": built}, config, exchanges)
