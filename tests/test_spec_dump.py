"""plain_dump, which the plan uses to carry rules as configuration, is pydantic's own
model_dump(by_alias=True, exclude_none=True), for every rule of every example and variant."""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmgen
from tests.helpers import ROOT
from wasmgen.plan import make_plan
from wasmgen.spec.base import plain_dump

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_plain_dump_is_model_dump(example: Path) -> None:
    spec = wasmgen.load_spec(example)
    plan = make_plan(spec)  # a variant's rules are made by code and validated as a spec's
    rules = [*spec.request, *spec.response, *plan.spec.request, *plan.spec.response]
    assert rules or spec.variant != "headers"
    assert plan.config.get("request") or plan.config.get("response")
    for rule in rules:
        assert plain_dump(rule) == rule.model_dump(by_alias=True, exclude_none=True)
        assert rule.as_config() == rule.model_dump(by_alias=True, exclude_none=True)
        when = rule.when
        if when is not None:
            assert plain_dump(when) == when.model_dump(by_alias=True, exclude_none=True)
    for case in spec.tests:
        assert plain_dump(case) == case.model_dump(by_alias=True, exclude_none=True)
    assert plain_dump(spec) == spec.model_dump(by_alias=True, exclude_none=True)
