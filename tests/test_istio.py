"""Every example through Istio's own code, then real Envoy, no cluster.

Each example is built, pushed to a real `docker-registry` on 127.0.0.1 and its deploy/ pinned to
the digest (as `wasmgen push` does); Istio's admission checks, istiod's translation for a workload
the manifest selects and istio-agent's image pull (tests/istio, see tests/istio_harness.py) then
run on deploy/wasm-plugin.yaml. Real Envoy 1.36 and 1.40 run the filter chain Istio built (the
agent's local file, Istio's configuration string and failure policy, the upstream-Envoy filters
around it in Istio's order), and the example's cases and derived traffic must give exactly what
the embedded host gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import wasmgen
from tests import istio_harness
from tests.helpers import EXAMPLES
from tests.registry_fixture import LocalRegistry
from wasmgen.deploy.envoy import FAILURE_POLICIES
from wasmgen.envoy import EnvoyBinary, find
from wasmgen.semantics import derive_for
from wasmgen.testing.envoy import run_in_envoy

pytestmark = pytest.mark.slow
VERSIONS = ("1.36", "1.40")
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
# What Istio puts around a plugin in this Istio version's sidecar and gateway chains, and which
# of those need istio-proxy (left out of the upstream Envoy runs).
ISTIO_ONLY = {"istio.metadata_exchange", "istio.alpn"}


@dataclass(frozen=True)
class IstioRun:
    """One example pushed and run through the harness."""

    pushed: istio_harness.Pushed
    report: dict[str, Any]
    ecds_name: str


@pytest.fixture(scope="module")
def istio_runs(
    oci_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, IstioRun]:
    root = tmp_path_factory.mktemp("istio")
    runs: dict[str, IstioRun] = {}
    for example in EXAMPLES:
        spec = wasmgen.load_spec(example)
        pushed = istio_harness.build_and_push(
            spec, root / example.stem, oci_registry.ref(example.stem)
        )
        request = {
            "manifests": pushed.manifests,
            "cacheDir": str(root / f"{example.stem}-agent-cache"),
            **istio_harness.workload(spec),
        }
        (report,) = istio_harness.run(request)
        names = [json.loads(json.dumps(e))["name"] for e in report.get("ecds", [])]
        runs[example.stem] = IstioRun(pushed, report, names[0] if names else "")
    return runs


@pytest.fixture(scope="module")
def envoys() -> dict[str, EnvoyBinary]:
    return {v: find(v) for v in VERSIONS}


@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_istio_accepts_translates_and_pulls(istio_runs: dict[str, IstioRun], example: str) -> None:
    run = istio_runs[example]
    report, plan, pin = run.report, run.pushed.built.plan, run.pushed.pin
    assert report["accepted"], report["admission"]
    assert all(not a["errors"] and not a["warnings"] for a in report["admission"])
    # istiod: one ECDS resource for the plugin, holding what deploy/ says.
    assert len(report["ecds"]) == 1
    resource = report["ecds"][0]
    assert resource["name"].endswith(f"/{plan.spec.namespace}.{plan.spec.name}"
                                     "~istio-translated-wasmplugin")  # fmt: skip
    wasm = resource["typedConfig"]
    assert wasm["@type"] == WASM_TYPE
    config = wasm["config"]
    # protojson leaves an empty string out: no pluginConfig is an empty configuration
    assert config["configuration"].get("value", "") == plan.config_json
    remote = config["vmConfig"]["code"]["remote"]
    assert remote["httpUri"]["uri"] == f"oci://{pin.image}"
    assert remote["sha256"] == pin.digest.removeprefix("sha256:")
    strategy = plan.spec.fail_strategy or "FAIL_CLOSE"
    assert config["failurePolicy"] == FAILURE_POLICIES[strategy]
    # The agent: pulled the image and points Envoy at a local copy of exactly our plugin.wasm.
    assert "convertError" not in report, report.get("convertError")
    (converted,) = istio_harness.wasm_filter(report)
    assert converted["@type"] == WASM_TYPE, report["log"]
    local = Path(converted["config"]["vmConfig"]["code"]["local"]["filename"])
    assert local.read_bytes() == run.pushed.built.wasm.read_bytes()
    assert "environmentVariables" not in converted["config"]["vmConfig"]
    # Where the plugin sits: an ECDS filter in every chain of the selected workload's listeners
    # that carries HTTP, before the router; Istio's own filters around it are known.
    chain = istio_harness.chain_with(report, run.ecds_name)
    names = [f["name"] for f in chain]
    assert names[-1] == "envoy.filters.http.router"
    assert names.index(run.ecds_name) < len(names) - 1
    _, left_out = istio_harness.envoy_http_filters(chain, {run.ecds_name: converted})
    assert set(left_out) <= ISTIO_ONLY, left_out


def test_istio_places_the_lab_plugin_as_documented(istio_runs: dict[str, IstioRun]) -> None:
    """The lab's sidecar (no phase) and the gateway example: the chains the README documents.
    Istio's API docs say a plugin without a phase goes "right before the Router"; istiod puts it
    right after istio.metadata_exchange, before grpc_stats, fault and cors."""
    lab = istio_runs["seed-lab"]
    names = [f["name"] for f in istio_harness.chain_with(lab.report, lab.ecds_name)]
    assert names == ["istio.metadata_exchange", lab.ecds_name, "envoy.filters.http.grpc_stats",
                     "envoy.filters.http.fault", "envoy.filters.http.cors",
                     "envoy.filters.http.router"], names  # fmt: skip
    gateway = istio_runs["secure-gateway"]
    chain = istio_harness.chain_with(gateway.report, gateway.ecds_name, listener="0.0.0.0_8080")
    names = [f["name"] for f in chain]
    assert names == ["istio.metadata_exchange", gateway.ecds_name, "envoy.filters.http.grpc_stats",
                     "istio.alpn", "envoy.filters.http.fault", "envoy.filters.http.cors",
                     "envoy.filters.http.router"], names  # fmt: skip


@pytest.mark.parametrize(("example", "version"), [(e.stem, v) for e in EXAMPLES for v in VERSIONS])
def test_istio_filter_chain_in_real_envoy(
    istio_runs: dict[str, IstioRun], envoys: dict[str, EnvoyBinary], example: str, version: str
) -> None:
    run = istio_runs[example]
    built = run.pushed.built
    (converted,) = istio_harness.wasm_filter(run.report)
    chain = istio_harness.chain_with(run.report, run.ecds_name)
    filters, left_out = istio_harness.envoy_http_filters(chain, {run.ecds_name: converted})
    assert set(left_out) <= ISTIO_ONLY
    local = Path(converted["config"]["vmConfig"]["code"]["local"]["filename"])
    scenarios = derive_for(built.plan).scenarios
    results = run_in_envoy(
        built.plan,
        scenarios,
        local,  # the agent's copy, which the embedded host runs too
        envoys[version],
        built.compat.target,
        bootstrap=lambda b: istio_harness.replace_http_filters(b, filters),
    )
    assert len(results) == len(scenarios)
    failed = {r.name: r.failures for r in results if not r.passed}
    assert not failed, failed
    assert {r.runner for r in results} == {envoys[version].name}
