"""Random rule sets and random traffic through real Envoy 1.36 and 1.40 and through the embedded
host with Envoy's surroundings: whatever the upstream and the client receive must agree, header
by header (where they differ, Envoy is right and the host is fixed).

tests/test_differential.py checks the plugins against the reference model in the host; this
checks the host against Envoy on the same kind of traffic (odd spacing, empty values, repeated
and joined headers, fragments, cookies, query strings, x-forwarded-for chains) and on headers
Envoy sanitizes or consumes. One dynamic
plugin built with TinyGo serves every rule set (its rules live in pluginConfig, and a TinyGo
plugin is ready in Envoy in well under a second). HYPOTHESIS_PROFILE=thorough draws more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console

from tests.test_differential import Exchange, rule_sets, traffic
from wasmgen import pipeline
from wasmgen.build.toolchain import TinyGoToolchain
from wasmgen.envoy import EnvoyBinary, find
from wasmgen.errors import SpecError
from wasmgen.pipeline import Built
from wasmgen.plan import make_plan
from wasmgen.spec import validate
from wasmgen.testing.envoy import compare_exchanges

pytestmark = pytest.mark.slow
VERSIONS = ("1.36", "1.40")
NAME = {"name": "diff", "image": "r.io/p:v1"}


@pytest.fixture(scope="module")
def envoys() -> dict[str, EnvoyBinary]:
    return {v: find(v) for v in VERSIONS}


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory, tinygo: TinyGoToolchain) -> Built:
    """The dynamic plugin, built once: any rule set is only its pluginConfig."""
    spec = validate({**NAME, "response": [{"set": {"x-a": "1"}}]})
    out = tmp_path_factory.mktemp("envoy-diff")
    quiet = Console(stderr=True, quiet=True)
    return pipeline.build(spec, out, "tinygo", console=quiet, backend="dynamic")


def disagreements(
    built: Built, binary: EnvoyBinary, config: dict[str, Any], exchanges: list[Exchange]
) -> list[str]:
    """Every difference between Envoy and the host for config's rules over exchanges."""
    plan = make_plan(validate({**NAME, **config}), "tinygo", backend="dynamic")
    assert plan.name == built.plan.name and plan.flavor == built.plan.flavor  # the same module
    results = compare_exchanges(plan, exchanges, built.wasm, binary, built.compat.target)
    assert len(results) == len(exchanges), [r.failures for r in results]
    return [f"{r.name} {exchanges[int(r.name.split()[-1])]}: {f}"
            for r in results for f in r.failures]  # fmt: skip


# Headers beyond the rules' own: upper case, underscores, what Envoy sanitizes or consumes
# (te, x-envoy-*, x-forwarded-client-cert), and values in UTF-8, with tabs, long or empty.
# Not referer: Envoy drops one its URL parser refuses, which the host does not model.
ODD_NAMES = ["X-A", "x_under", "Vary", "te", "via", "forwarded", "user-agent", "content-type",
             "x-envoy-retry-on", "x-envoy-internal", "x-envoy-original-path",
             "x-envoy-expected-rq-timeout-ms", "x-forwarded-client-cert", "x-forwarded-host"]  # fmt: skip
ODD_VALUES = ["v", "caf\u00e9", "\u20ac1", "a\tb", "", "1, 2", "trailers", "gzip, trailers",
              "Trailers", "x" * 300, "a;b", '"q"']  # fmt: skip
odd_headers = st.lists(
    st.tuples(st.sampled_from(ODD_NAMES), st.sampled_from(ODD_VALUES)), max_size=3
)


@st.composite
def odd_traffic(draw: st.DrawFn) -> Exchange:
    """traffic(), with odd headers on both sides."""
    request, response = draw(traffic())
    return request + draw(odd_headers), response + draw(odd_headers)


@given(config=rule_sets(), exchanges=st.lists(odd_traffic(), min_size=8, max_size=8))
def test_envoy_and_the_host_agree_on_random_rules_and_traffic(
    dynamic: Built,
    envoys: dict[str, EnvoyBinary],
    config: dict[str, Any],
    exchanges: list[Exchange],
) -> None:
    try:
        validate({**NAME, **config})
    except SpecError:
        assume(False)  # an order-dependent map or the like: the spec refuses it
    for version, binary in envoys.items():
        found = disagreements(dynamic, binary, config, exchanges)
        assert not found, f"Envoy {version}, rules {config}:\n" + "\n".join(found)


@pytest.mark.parametrize("version", VERSIONS)
def test_what_the_codecs_and_the_connection_manager_do_is_modelled(
    dynamic: Built, envoys: dict[str, EnvoyBinary], version: str
) -> None:
    """docs/envoy-behaviour.md section d, exchange by exchange: spaces and tabs around values
    go, an empty x-request-id is replaced, a fragment is a 400 no filter sees."""
    config = {"request": [{"set": {"x-req": "${request.id}"}}], "response": [{"set": {"x-b": "1"}}]}
    base = [(":authority", "example.com"), (":scheme", "http")]
    exchanges: list[Exchange] = [
        ([*base, (":method", "GET"), (":path", "/a"), ("x-sp", "\t a  b "), ("x-request-id", "")],
         [(":status", "200"), ("x-up", "  v \t")]),
        ([*base, (":method", "GET"), (":path", "/a?q=1#top")], [(":status", "200")]),
        ([*base, (":method", "HEAD"), (":path", "/a#")], [(":status", "200")]),
    ]  # fmt: skip
    assert disagreements(dynamic, envoys[version], config, exchanges) == []


def test_a_wrong_host_is_caught(
    dynamic: Built, envoys: dict[str, EnvoyBinary], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison can fail: a host that forgets Envoy refuses fragments disagrees."""
    from wasmgen.host.envoy_rules import EnvoySurroundings

    monkeypatch.setattr(EnvoySurroundings, "rejects", lambda self, headers: False)
    exchanges: list[Exchange] = [
        ([(":authority", "example.com"), (":method", "GET"), (":path", "/a#top"),
          (":scheme", "http")], [(":status", "200")]),
    ]  # fmt: skip
    found = disagreements(dynamic, envoys["1.40"], {"response": [{"set": {"x-b": "1"}}]}, exchanges)
    assert any("status: Envoy 400, embedded host 200" in f for f in found), found


def test_the_plugin_is_one_module_for_every_rule_set(tmp_path: Path, dynamic: Built) -> None:
    """Why one build serves all: a dynamic plugin for other rules is the same module."""
    spec = validate({**NAME, "request": [{"remove": ["x-b"]}]})
    quiet = Console(stderr=True, quiet=True)
    other = pipeline.build(spec, tmp_path / "other", "tinygo", console=quiet, backend="dynamic")
    assert other.wasm.read_bytes() == dynamic.wasm.read_bytes()
