"""The deploy/ files wasmgen writes for every example: valid for Istio's CRD, well-formed for Envoy."""

from __future__ import annotations

import json
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
        wasmgen.generate(spec, tmp_path / example.stem)
        doc = yaml.safe_load((tmp_path / example.stem / "deploy" / "wasm-plugin.yaml").read_text())
        plan = make_plan(spec)
        assert doc["spec"]["pluginConfig"] == plan.config
        test_go = (tmp_path / example.stem / "main_test.go").read_text()
        assert f"const pluginConfig = {goquote(plan.config_json)}\n" in test_go


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

    assert json.loads(config["configuration"]["value"]) == make_plan(spec).config
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
