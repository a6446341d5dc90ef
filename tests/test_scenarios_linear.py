"""Deriving test traffic stays linear in the number of rules, and gives the same answers as
running every rule."""

from __future__ import annotations

from typing import Any

import pytest

import wasmgen
from tests.helpers import EXAMPLES
from wasmgen.plan import make_plan
from wasmgen.semantics import derive, model
from wasmgen.semantics.relevance import PHASES, RuleIndex

INTERACTING: dict[str, Any] = {
    "request": [
        {"set": {"x-flag": "on"}},
        {"respond": {"status": 403}, "when": {"headers": [{"name": "x-flag", "absent": True}]}},
        {"rename": {"x-old": "x-new"}},
        {"set": {"x-new": "forced"}, "when": {"headers": [{"name": "x-new", "present": True}]}},
        {"remove": ["x-debug-*"]},
        {"append": {"x-debug-level": "1"}, "when": {"method": ["POST"]}},
    ],
    "response": [
        {"set": {"cache-control": "no-store"}, "when": {"status": ["5xx"]}},
        {"append": {"cache-control": "private"}},
        {"remove": ["cache-*"], "when": {"path": {"prefix": "/raw/"}}},
        {"copyFromRequest": {"x-new": "x-echo"}},
        {
            "rename": {"x-echo": "x-echoed"},
            "when": {"headers": [{"name": "x-old", "present": True}]},
        },
    ],
}


def _configs() -> list[tuple[str, dict[str, Any]]]:
    out = [(e.stem, make_plan(wasmgen.load_spec(e)).config) for e in EXAMPLES]
    return [*out, ("interacting", INTERACTING)]


@pytest.mark.parametrize(("name", "config"), _configs(), ids=[n for n, _ in _configs()])
def test_checks_from_the_relevant_rules_equal_a_full_run(name: str, config: dict[str, Any]) -> None:
    """Every derived check, computed over the rules that can affect it, is what running all
    rules gives (both in Envoy's semantics and in the SDK test host's)."""
    derived = derive(config, [])
    assert len(derived.scenarios) > 1
    for scenario in derived.scenarios:
        if scenario.name == "baseline":
            continue
        envoy = model.run(config, scenario.request, scenario.response)
        assert scenario.want_local == envoy.local_status, scenario.name
        for mapname, header, value in scenario.envoy_checks:
            headers = envoy.request if mapname == "request" else (envoy.response or [])
            assert model.first(headers, header) == value, (scenario.name, header)


def _spec(n: int) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            rules.append({"set": {f"x-h{i}": "v"}, "when": {"path": {"prefix": f"/p{i}/"}}})
        elif kind == 1:
            rules.append({"remove": [f"x-r{i}", f"x-pre{i}-*"]})
        elif kind == 2:
            rules.append({"append": {f"x-a{i}": "v"},
                          "when": {"status": ["5xx"], "headers": [{"name": f"x-c{i}", "present": True}]}})  # fmt: skip
        elif kind == 3:
            rules.append({"rename": {f"x-o{i}": f"x-n{i}"}})
        else:
            rules.append(
                {"addIfAbsent": {f"x-d{i}": "v"}, "when": {"path": {"regex": f"^/r{i}/[0-9]+$"}}}
            )
    return {"response": rules}


def test_work_grows_linearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four times the rules means about four times the rule evaluations, not sixteen (the old
    derivation ran every scenario through every rule). Counted, not timed."""
    counted = {"n": 0}
    real = model.matches

    def counting(*args: Any, **kwargs: Any) -> bool:
        counted["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "matches", counting)
    work = {}
    for n in (100, 400):
        counted["n"] = 0
        derive(_spec(n), [])
        work[n] = counted["n"]
    assert work[400] < 5 * work[100], work


@pytest.mark.parametrize("backend", ["compiled", "dynamic"])
def test_rendering_grows_linearly(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """The whole of generation (traffic, the backend's test data, manifests) does rule work
    linear in the number of rules, for both backends. Counted, not timed."""
    from wasmgen import pipeline
    from wasmgen.spec import validate

    counted = {"n": 0}
    real = model.apply

    def counting(rule: Any, headers: Any, *args: Any, **kwargs: Any) -> None:
        counted["n"] += 1 + len(headers)  # a rule applied to a long header list costs more
        real(rule, headers, *args, **kwargs)

    monkeypatch.setattr(model, "apply", counting)
    work = {}
    for n in (100, 400):
        spec = validate({"name": "big", "image": "r.io/p:v1", **_spec(n)})
        counted["n"] = 0
        pipeline.render(spec, backend=backend)  # type: ignore[arg-type]
        work[n] = counted["n"]
    assert work[400] < 5 * work[100], work


def test_the_index_finds_prefix_writers() -> None:
    index = RuleIndex(INTERACTING)
    assert list(index.writers("request", "x-debug-level")) == [5, 4]
    assert sorted(index.writers("response", "cache-control")) == [0, 1, 2]
    assert set(PHASES) == {"request", "response"}


@pytest.mark.slow
def test_a_spec_of_thousands_of_rules_loads() -> None:
    """The alias-bomb guard counts only what aliases repeat: 6,000 rules written out (over
    100,000 YAML nodes) load."""
    lines = ["name: big", "selector: {app: x}", "image: r.io/p:v1", "response:"]
    for i in range(6000):
        lines.append(
            f"  - set: {{x-h{i}: v}}\n    when: {{path: {{prefix: /p{i}/}}, method: [GET, HEAD]}}"
        )
    spec = wasmgen.parse_spec("\n".join(lines).encode())
    assert len(spec.response) == 6000
