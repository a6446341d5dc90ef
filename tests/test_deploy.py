"""The deploy/ files wasmgen writes for every example: valid for Istio's CRD, well-formed for Envoy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import wasmgen
from tests.crd import validate_wasmplugin
from tests.helpers import EXAMPLES, run_cli

pytestmark = pytest.mark.slow
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_generated_wasmplugin_is_valid_against_istio_crd(example: Path, tmp_path: Path) -> None:
    """Unpinned and pinned WasmPlugins pass the CRD's schema and CEL rules; pluginConfig is the plan's."""
    plain, pinned = tmp_path / "plain", tmp_path / "pinned"
    wasmgen.generate(wasmgen.load_spec(example), plain)
    spec = wasmgen.load_spec(example)
    result = run_cli(
        "manifests",
        example,
        "-o",
        pinned,
        "--image",
        "registry.example.com/team/p:v1",
        "--digest",
        DIGEST,
    )
    assert result.code == 0, result.stderr
    for out in (plain, pinned):
        text = (out / "deploy" / "wasm-plugin.yaml").read_text()
        assert validate_wasmplugin(text) == [], text
        doc = yaml.safe_load(text)
        assert doc["metadata"] == {"name": spec.name, "namespace": spec.namespace}
    pinned_doc = yaml.safe_load((pinned / "deploy" / "wasm-plugin.yaml").read_text())
    assert pinned_doc["spec"]["sha256"] == DIGEST.removeprefix("sha256:")
    assert pinned_doc["spec"]["url"] == "oci://registry.example.com/team/p:v1"


def test_plugin_config_equals_the_plan(tmp_path: Path) -> None:
    """The manifest carries exactly the configuration the generated go test runs with."""
    from wasmgen.backends.templating import goquote
    from wasmgen.plan import make_plan

    for example in EXAMPLES:
        spec = wasmgen.load_spec(example)
        for backend in ("dynamic", "compiled"):
            out = tmp_path / backend / example.stem
            wasmgen.generate(spec, out, backend=backend)
            doc = yaml.safe_load((out / "deploy" / "wasm-plugin.yaml").read_text())
            plan = make_plan(spec, backend=backend)
            assert doc["spec"].get("pluginConfig", {}) == plan.plugin_config
            if backend == "dynamic":
                assert goquote(plan.config_json) in (out / "main_test.go").read_text()
            else:  # the tests of the compiled plugin run with the same object
                rules = (out / "rules.go").read_text()
                literal = rules.split("const exampleConfig = `", 1)[1].split("`", 1)[0]
                assert json.loads(literal) == plan.plugin_config
        compiled = make_plan(spec, backend="compiled")
        assert set(compiled.plugin_config) == {slot.key for slot in compiled.values}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_envoy_bootstrap_shape(example: Path, tmp_path: Path) -> None:
    """envoy.yaml: the wasm filter before the router, the configuration a JSON StringValue, the local file."""
    spec = wasmgen.load_spec(example)
    wasmgen.generate(spec, tmp_path)
    boot = yaml.safe_load((tmp_path / "deploy" / "envoy.yaml").read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    config = hcm["http_filters"][0]["typed_config"]["config"]
    assert config["configuration"]["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    from wasmgen.plan import make_plan

    plan = make_plan(spec)
    value = config["configuration"]["value"]
    assert value == plan.config_json
    # An empty configuration is delivered as "" (what Istio sends without pluginConfig).
    assert (json.loads(value) if value else {}) == plan.plugin_config
    assert config["vm_config"]["code"]["local"]["filename"] == "plugin.wasm"
    assert config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"


def test_verify_script_checks_every_added_header(tmp_path: Path) -> None:
    """deploy/verify.sh for the lab checks header_1 and header_2 and is valid sh."""
    wasmgen.generate(
        wasmgen.load_spec(EXAMPLES[[e.stem for e in EXAMPLES].index("seed-lab")]), tmp_path
    )
    script = tmp_path / "deploy" / "verify.sh"
    text = script.read_text()
    assert (
        "curl -s --head" in text
        and "header_1" in text
        and "first_header" in text
        and "header_2" in text
    )
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert script.stat().st_mode & 0o111, "verify.sh is executable"


def _verify_for(tmp_path: Path, spec_text: str) -> Path | None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    wasmgen.generate(wasmgen.load_spec(spec), tmp_path / "out")
    script = tmp_path / "out" / "deploy" / "verify.sh"
    return script if script.exists() else None


BASE = "name: demo\nnamespace: apps\nimage: r.io/p:v1\n"


def test_verify_expects_what_the_rules_leave(tmp_path: Path) -> None:
    """Later remove and rename rules, and conditions, decide what verify.sh expects."""
    script = _verify_for(
        tmp_path,
        BASE + "selector: {app: httpbin}\nresponse:\n"
        "  - set: {x-gone: '1', x-old: '2', x-kept: '3'}\n"
        "  - remove: [x-gone]\n"
        "  - rename: {x-old: x-new}\n"
        "  - set: {x-api: '4'}\n    when: {path: {prefix: /api/}}\n",
    )
    assert script is not None
    checks = [ln for ln in script.read_text().splitlines() if ln.startswith("check ")]
    assert checks == ["check x-kept 3", "check x-new 2"]


def _run_with_kubectl(script: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    from tests.test_manifests import CURL_HEAD, KUBECTL_SHIM

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "kubectl").write_text(KUBECTL_SHIM)
    (bin_dir / "kubectl").chmod(0o755)
    (tmp_path / "response").write_text(CURL_HEAD)
    log = tmp_path / "kubectl.log"
    log.write_text("")
    full = {k: v for k, v in os.environ.items() if k not in ("NAMESPACE", "TARGET_URL")}
    full.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SHIM_LOG=str(log),
                SHIM_RESPONSE=str(tmp_path / "response"), **env)  # fmt: skip
    return subprocess.run(
        ["sh", str(script)], env=full, capture_output=True, text=True, check=False
    )


def test_verify_for_a_gateway_curls_its_address(tmp_path: Path) -> None:
    """targetRefs to a Gateway: the script asks the Gateway for its address and curls that."""
    script = _verify_for(
        tmp_path,
        BASE + "targetRefs: [{name: edge}]\nresponse:\n  - set: {header_1: first_header}\n",
    )
    assert script is not None
    done = _run_with_kubectl(script, tmp_path, SHIM_GATEWAY_ADDRESS="203.0.113.7")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (tmp_path / "kubectl.log").read_text().splitlines()
    assert calls[0].startswith("get gateway edge -n apps")
    assert calls[-1].endswith("curl -s --head http://203.0.113.7/get")
    missing = _run_with_kubectl(script, tmp_path, SHIM_GATEWAY_ADDRESS="")
    assert missing.returncode == 2 and "no address yet" in missing.stderr


def test_verify_for_other_workloads_needs_a_target(tmp_path: Path) -> None:
    """A selector other than the httpbin sample: the script cannot guess the URL, so it asks."""
    script = _verify_for(
        tmp_path, BASE + "selector: {app: orders}\nresponse:\n  - set: {header_1: first_header}\n"
    )
    assert script is not None
    asked = _run_with_kubectl(script, tmp_path)
    assert (
        asked.returncode == 2 and "set TARGET_URL" in asked.stderr and "app=orders" in asked.stderr
    )
    given = _run_with_kubectl(script, tmp_path, TARGET_URL="http://orders.apps:8080/x")
    assert given.returncode == 0, given.stdout + given.stderr
    assert (
        (tmp_path / "kubectl.log")
        .read_text()
        .splitlines()[-1]
        .endswith("curl -s --head http://orders.apps:8080/x")
    )
