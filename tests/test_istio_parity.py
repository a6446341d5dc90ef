"""Where wasmgen's reading of Istio meets Istio's own code (tests/istio): pluginConfig, failStrategy,
phase and priority. Manifests are rendered as `wasmgen manifests --image --digest` writes them; no
build or push is needed for what istiod alone decides."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

import wasmgen
from tests import istio_harness
from wasmgen.deploy import deployment
from wasmgen.deploy.deployment import Deployment, TargetRef
from wasmgen.deploy.envoy import FAILURE_POLICIES
from wasmgen.deploy.istio import wasm_plugin
from wasmgen.deploy.yamlio import dump_yaml
from wasmgen.envoy import find, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.errors import SpecError
from wasmgen.pipeline import render
from wasmgen.plan import Plan
from wasmgen.plan.pin import Pin

pytestmark = pytest.mark.slow
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
LAB = """
name: {name}
namespace: default
selector: {{app: httpbin}}
image: 127.0.0.1:{port}/{name}:v1
{extra}
response:
  - set:
      header_2: second_header
      header_1: first_header
"""


def lab(name: str = "wasm-example", port: int = 1, extra: str = "") -> wasmgen.Spec:
    """The lab's spec (pluginConfig written with header_2 first), with extra top-level fields."""
    return wasmgen.parse_spec(LAB.format(name=name, port=port, extra=extra).encode())


def manifests(spec: wasmgen.Spec, backend: str = "compiled") -> tuple[Plan, str]:
    """The plan and deploy/wasm-plugin.yaml, pinned to a digest as `wasmgen push` leaves it."""
    pin = Pin(spec.name, spec.image, "sha256:" + "a" * 64)
    rendered = render(spec, pin=pin, backend=backend)  # type: ignore[arg-type]
    return rendered.plan, rendered.files["deploy/wasm-plugin.yaml"].decode()


def istiod(spec: wasmgen.Spec, docs: str, tmp_path: Path, convert: bool = False) -> dict[str, Any]:
    """Istio's verdict and translation for the workload the spec selects."""
    request = {
        "manifests": docs,
        "cacheDir": str(tmp_path / "agent-cache"),
        "skipConvert": not convert,
        **istio_harness.workload(spec),
    }
    (report,) = istio_harness.run(request)
    return report


SPECIAL = """
  - set:
      x-b: "<https://cdn.example/a.css>; rel=preload & as=style"
      x-a: "it's \\"quoted\\" \\\\ back=slash"
    when:
      path: {prefix: /docs/}
      headers: [{name: x-z, matches: "^a&b<c>$"}]
"""


@pytest.mark.parametrize("backend", ["compiled", "dynamic"])
def test_plugin_config_istio_delivers_is_what_the_host_feeds(backend: str, tmp_path: Path) -> None:
    """Byte for byte: keys Istio sorts at every level, and values with characters a JSON
    encoder may escape (<, >, &, quotes, backslash)."""
    spec = wasmgen.parse_spec((LAB.format(name="special", port=1, extra="") + SPECIAL).encode())
    plan, docs = manifests(spec, backend)
    report = istiod(spec, docs, tmp_path)
    (wasm,) = istio_harness.wasm_filter(report, "ecds")
    delivered = wasm["config"]["configuration"].get("value", "")  # protojson omits ""
    assert delivered == plan.config_json  # what run_in_envoy and `wasmgen test` feed the host
    envoy_yaml = yaml.safe_load(render(spec, backend=backend).files["deploy/envoy.yaml"])  # type: ignore[arg-type]
    listener = envoy_yaml["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    ours = hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]
    assert ours == delivered  # deploy/envoy.yaml hands the plugin what Istio hands it


@pytest.mark.parametrize("strategy", [None, "FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"])
def test_fail_strategy_maps_to_the_documented_policy(
    strategy: str | None, closed_port: int, tmp_path: Path
) -> None:
    """istiod's failurePolicy is the one deploy/envoy.yaml uses; when the agent cannot pull the
    image, only FAIL_OPEN lets traffic through (an allow-all RBAC filter); every other strategy
    puts a deny-all RBAC filter in the plugin's place."""
    extra = f"failStrategy: {strategy}" if strategy else ""
    spec = lab(port=closed_port, extra=extra)
    _, docs = manifests(spec)
    report = istiod(spec, docs, tmp_path, convert=True)
    (wasm,) = istio_harness.wasm_filter(report, "ecds")
    assert wasm["config"]["failurePolicy"] == FAILURE_POLICIES[strategy or "FAIL_CLOSE"]
    envoy_yaml = yaml.safe_load(render(spec).files["deploy/envoy.yaml"])
    listener = envoy_yaml["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    ours = hcm["http_filters"][0]["typed_config"]["config"].get("failure_policy")
    assert ours == (FAILURE_POLICIES[strategy] if strategy else None)  # Envoy: unset = closed
    assert "convertError" not in report  # the agent does not NACK: it substitutes a filter
    (fallback,) = istio_harness.wasm_filter(report)
    assert fallback["@type"] == RBAC_TYPE
    denies = "rules" in fallback
    assert denies == (strategy != "FAIL_OPEN"), fallback


ORDER_CASES = {
    # (phase, priority) of plugin "a" and of plugin "b", and which comes first in the chain.
    "AUTHN before AUTHZ": (("AUTHN", None), ("AUTHZ", None), "a"),
    "AUTHZ before STATS": (("AUTHZ", None), ("STATS", None), "a"),
    "STATS before no phase": (("STATS", None), (None, None), "a"),
    "AUTHN before no phase": ((None, None), ("AUTHN", None), "b"),
    "higher priority first": (("AUTHN", 1), ("AUTHN", 10), "b"),
    "unset priority is the lowest": (("STATS", -5), ("STATS", None), "a"),
    "priority 0 is not unset": (("STATS", None), ("STATS", 0), "b"),
    "priority only orders within a phase": (("AUTHN", -100), ("AUTHZ", 100), "a"),
}


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_phase_and_priority_order_two_plugins(case: str, tmp_path: Path) -> None:
    (phase_a, prio_a), (phase_b, prio_b), first = ORDER_CASES[case]
    specs, docs = [], []
    for name, phase, prio in (("a", phase_a, prio_a), ("b", phase_b, prio_b)):
        extra = "\n".join(
            line
            for line in (
                f"phase: {phase}" if phase else "",
                f"priority: {prio}" if prio is not None else "",
            )
            if line
        )
        spec = lab(name=name, extra=extra)
        specs.append(spec)
        docs.append(manifests(spec)[1])
    report = istiod(specs[0], "---\n".join(docs), tmp_path)
    ecds = [r["name"] for r in report["ecds"]]
    assert len(ecds) == 2
    chain = [f["name"] for f in istio_harness.chain_with(report, ecds[0])]
    a = next(i for i, n in enumerate(chain) if n.endswith("default.a~istio-translated-wasmplugin"))
    b = next(i for i, n in enumerate(chain) if n.endswith("default.b~istio-translated-wasmplugin"))
    assert (a < b) == (first == "a"), chain


# Deployment fields set to what the WasmPlugin CRD or Istio's webhook must refuse.
REFUSED: dict[str, dict[str, Any]] = {
    "selector and targetRefs": {
        "target_refs": (TargetRef("gateway.networking.k8s.io", "Gateway", "gw"),)
    },
    "wildcard label key": {"selector": {"*": "x"}},
    "sha256 with prefix": {"sha256": "sha256:" + "a" * 64},
    "url scheme": {"url": "ftp://registry/x:v1"},
    "phase": {"phase": "LOGGING"},
    "priority beyond int32": {"priority": 2**31},
    "pull policy": {"image_pull_policy": "Never"},
    "fail strategy": {"fail_strategy": "FAIL_SOMETIMES"},
    "17 targetRefs": {
        "selector": None,
        "target_refs": tuple(
            TargetRef("gateway.networking.k8s.io", "Gateway", f"g{i}") for i in range(17)
        ),
    },
}
# Refused by wasmgen and by Kubernetes itself (apiserver's ObjectMeta checks), which Istio's own
# admission (CRD schema and webhook) leaves to it: the harness shows Istio accepting them.
KUBERNETES_REFUSES: dict[str, dict[str, Any]] = {
    "name not DNS-1123": {"name": "Bad_Name"},
    "namespace not a label": {"namespace": "Team.A"},
}
# Edge values both must accept.
ACCEPTED: dict[str, dict[str, Any]] = {
    "int32 extremes": {"priority": -(2**31)},
    "priority max": {"priority": 2**31 - 1},
    "url without scheme": {"url": "registry.example/x:v1", "sha256": None},
    "16 targetRefs": {
        "selector": None,
        "target_refs": tuple(
            TargetRef("gateway.networking.k8s.io", "Gateway", f"g{i}") for i in range(16)
        ),
    },
    "all optional fields": {
        "image_pull_policy": "Always",
        "image_pull_secret": "regcred",
        "phase": "AUTHZ",
        "fail_strategy": "FAIL_RELOAD",
        "plugin_name": "root",
    },
}


def _unchecked(base: Deployment, changes: dict[str, Any]) -> Deployment:
    """The deployment with changes applied, bypassing wasmgen's checks (to render it anyway)."""
    d = copy.copy(base)
    for key, value in changes.items():
        object.__setattr__(d, key, value)
    return d


@pytest.mark.parametrize("case", [*REFUSED, *ACCEPTED, *KUBERNETES_REFUSES])
def test_istio_and_wasmgen_refuse_the_same_manifests(case: str, tmp_path: Path) -> None:
    spec = lab()
    plan, _ = manifests(spec)
    d = _unchecked(deployment(plan), {**REFUSED, **ACCEPTED, **KUBERNETES_REFUSES}[case])
    docs = dump_yaml([wasm_plugin(d)])
    try:  # wasmgen's own checks, as every manifest it writes goes through them
        Deployment(**{f.name: getattr(d, f.name) for f in dataclasses.fields(d)})
        why = ""
    except SpecError as exc:
        why = str(exc)
    report = istiod(spec, docs, tmp_path)
    assert bool(why) == (case not in ACCEPTED), why
    assert (not report["accepted"]) == (case in REFUSED), report["admission"]


@pytest.mark.parametrize("strategy", ["FAIL_OPEN", "FAIL_CLOSE"])
def test_unpulled_plugin_in_real_envoy(strategy: str, closed_port: int, tmp_path: Path) -> None:
    """The chain Istio leaves when the image cannot be pulled, in real Envoy 1.40: FAIL_OPEN
    lets requests through untouched, FAIL_CLOSE answers every one with 403."""
    spec = lab(port=closed_port, extra=f"failStrategy: {strategy}")
    plan, docs = manifests(spec)
    report = istiod(spec, docs, tmp_path, convert=True)
    (fallback,) = istio_harness.wasm_filter(report)
    name = report["converted"][0]["name"]
    chain = istio_harness.chain_with(report, name)
    filters, _ = istio_harness.envoy_http_filters(chain, {name: fallback})
    upstream = ScriptedUpstream()
    try:
        unused = tmp_path / "never-loaded.wasm"  # the wasm filter is replaced by Istio's chain
        with plugin_process(find("1.40"), unused, plan, ("127.0.0.1", upstream.port)) as process:
            istio_harness.replace_http_filters(process.bootstrap, filters)
            process.start()
            request = [(":method", "GET"), (":path", "/get"), (":authority", "httpbin")]
            wire = exchange(process.listener_port, upstream, request, [(":status", "200")])
    finally:
        upstream.close()
    headers = dict(wire.response)
    if strategy == "FAIL_OPEN":
        assert wire.status == 200 and wire.upstream_request is not None
        assert "header_1" not in headers  # no plugin ran
    else:
        assert wire.status == 403 and wire.upstream_request is None
        assert wire.body == b"RBAC: access denied"
