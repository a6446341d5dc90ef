"""Manifests as data: the lab's WasmPlugin, Istio's CRD and CEL rules, YAML, Envoy, verify.sh."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml as pyyaml
from ruamel.yaml import YAML

from tests.crd import validate_wasmplugin
from wasmgen.deploy.deployment import Deployment, Match, TargetRef
from wasmgen.deploy.envoy import envoy_bootstrap
from wasmgen.deploy.gateway import envoy_extension_policy
from wasmgen.deploy.istio import wasm_plugin
from wasmgen.deploy.samples import sample_workloads
from wasmgen.deploy.verify import verify_script
from wasmgen.deploy.yamlio import dump_json, dump_yaml
from wasmgen.errors import SpecError, WasmgenError

# wasm-plugin.yaml and httpbin.yaml from the lab (shared/seed/wasm-lab.md), verbatim.
LAB_WASM_PLUGIN = """\
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: wasm-example
  namespace: default
spec:
  selector:
    matchLabels:
      app: httpbin
  url: oci://$REPOSITORY/wasm:v1
  pluginConfig:
    header_1: first_header
    header_2: second_header
"""

LAB_HTTPBIN = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: httpbin
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  labels:
    app: httpbin
    service: httpbin
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 80
  selector:
    app: httpbin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
spec:
  replicas: 1
  selector:
    matchLabels:
      app: httpbin
      version: v1
  template:
    metadata:
      labels:
        app: httpbin
        version: v1
    spec:
      serviceAccountName: httpbin
      containers:
      - image: docker.io/kennethreitz/httpbin
        imagePullPolicy: IfNotPresent
        name: httpbin
        ports:
        - containerPort: 80
"""

LAB_CONFIG = {"header_1": "first_header", "header_2": "second_header"}
DIGEST = "3f1e5b2c9a7d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
GATEWAY = TargetRef("gateway.networking.k8s.io", "Gateway", "eg")

# Strings a careless YAML writer emits plain and some reader then takes for something else.
TRICKY = [
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "Y",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "",
    "1.0",
    "0x1",
    "0o17",
    "017",
    "08",
    "1e3",
    ".5",
    "+1",
    "-1",
    "1_000",
    "1:20",
    ".inf",
    "-.Inf",
    ".NaN",
    "2001-12-14",
    "2001-12-14T21:59:43Z",
    "=",
    "<<",
    "*alias",
    "&anchor",
    "!tag",
    "%directive",
    "@at",
    "`tick",
    "- dash",
    "? key",
    ": colon",
    "a: b",
    "a #b",
    "#comment",
    " lead",
    "trail ",
    "{x}",
    "[x]",
    "'single'",
    '"double"',
    "|",
    ">",
    "multi\nline",
    "trailing newline\n",
    "two\n\n",
    "\n lead",
    "tab\there",
    "bell\x07",
    "crlf\r\n",
    "cr\r",
    "nel\x85",
    "ls\u2028",
    "space \nbreak",
    "\ufeffbom",
    "unicode é ✓",
    "$REPOSITORY",
    "oci://$REPOSITORY/wasm:v1",
]


def lab() -> Deployment:
    """The lab's WasmPlugin as a Deployment."""
    return Deployment(
        name="wasm-example",
        namespace="default",
        selector={"app": "httpbin"},
        url="oci://$REPOSITORY/wasm:v1",
        plugin_config=dict(LAB_CONFIG),
    )


def full(**overrides: Any) -> Deployment:
    """A Deployment with every optional field set."""
    args: dict[str, Any] = {
        "name": "headers",
        "namespace": "apps",
        "selector": {"app": "httpbin", "app.kubernetes.io/version": "v1"},
        "url": "oci://registry.example.com:5000/team/headers:v1",
        "sha256": DIGEST,
        "image_pull_policy": "IfNotPresent",
        "image_pull_secret": "regcred",
        "plugin_config": {"response": {"set": [["x-a", "1"]]}, "enabled": True, "n": 2},
        "plugin_name": "headers_root",
        "phase": "AUTHZ",
        "priority": 10,
        "fail_strategy": "FAIL_OPEN",
        "vm_env": (("POD_NAME", None), ("MODE", "strict")),
        "match": (Match(mode="SERVER", ports=(8000, 9000)),),
    }
    args.update(overrides)
    return Deployment(**args)


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream, read by PyYAML (YAML 1.1)."""
    return list(pyyaml.safe_load_all(text))


# --- the lab's manifests ---------------------------------------------------------------


def test_lab_wasm_plugin_is_reproduced() -> None:
    doc = wasm_plugin(lab())
    assert doc == pyyaml.safe_load(LAB_WASM_PLUGIN)
    assert dump_yaml([doc]) == LAB_WASM_PLUGIN  # same bytes, key order included


def test_lab_httpbin_and_sleep_samples() -> None:
    docs = sample_workloads()
    assert docs[:3] == load_all(LAB_HTTPBIN)
    assert dump_yaml(docs[:3]) == LAB_HTTPBIN
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs[3:]]
    assert kinds == [("ServiceAccount", "sleep"), ("Service", "sleep"), ("Deployment", "sleep")]
    sleep = docs[5]["spec"]["template"]
    assert sleep["metadata"]["labels"] == {"app": "sleep"}
    assert sleep["spec"]["containers"][0]["command"] == ["/bin/sleep", "infinity"]
    assert all(d["metadata"]["namespace"] == "demo" for d in sample_workloads("demo"))
    assert "namespace" not in docs[0]["metadata"]


def test_wasm_plugin_key_order_and_omitted_fields() -> None:
    spec = wasm_plugin(full())["spec"]
    assert list(spec) == [
        "selector",
        "url",
        "sha256",
        "imagePullPolicy",
        "imagePullSecret",
        "phase",
        "priority",
        "failStrategy",
        "pluginConfig",
        "pluginName",
        "vmConfig",
        "match",
    ]
    assert spec["vmConfig"]["env"] == [
        {"name": "POD_NAME", "valueFrom": "HOST"},
        {"name": "MODE", "value": "strict"},
    ]
    assert spec["match"] == [{"mode": "SERVER", "ports": [{"number": 8000}, {"number": 9000}]}]
    refs = wasm_plugin(full(selector=None, target_refs=(GATEWAY,)))["spec"]
    assert list(refs)[:2] == ["targetRefs", "url"]
    assert refs["targetRefs"] == [{"group": GATEWAY.group, "kind": "Gateway", "name": "eg"}]
    assert wasm_plugin(full(type="NETWORK"))["spec"]["type"] == "NETWORK"
    bare = wasm_plugin(Deployment(name="x", url="oci://r/x:v1"))
    assert bare["spec"] == {"url": "oci://r/x:v1"}
    doc = wasm_plugin(d := lab())  # the output shares no mutable state with the input
    doc["spec"]["pluginConfig"]["header_1"] = doc["spec"]["selector"]["matchLabels"]["app"] = "x"
    assert wasm_plugin(d) == pyyaml.safe_load(LAB_WASM_PLUGIN)


def test_deployment_reports_every_problem_at_once() -> None:
    with pytest.raises(SpecError) as info:
        Deployment(
            name="Bad_Name",
            url="ftp://r/x:v1",
            selector={"app": "a*"},
            target_refs=(GATEWAY,),
            sha256="sha256:" + DIGEST,
            phase="EARLY",  # type: ignore[arg-type]
            priority=2**31,
            vm_env=(("A", "1"), ("A", "2")),
        )
    locs = {p.loc for p in info.value.problems}
    assert locs == {
        "deployment.name",
        "deployment.url",
        "deployment.selector['app']",
        "deployment.selector",
        "deployment.sha256",
        "deployment.phase",
        "deployment.priority",
        "deployment.vm_env[0]",
        "deployment.vm_env[1]",
    }
    with pytest.raises(SpecError, match="1 problem"):
        Deployment(name="x", url="oci://r/x", plugin_config={"bad": {1, 2}})


# --- Istio's CRD, structural schema and CEL rules (kube-apiserver code, via Go) ------------

VALID: dict[str, Callable[[], Deployment]] = {
    "lab": lab,
    "everything": full,
    "target-refs": lambda: full(selector=None, target_refs=(GATEWAY,)),
    "service-ref": lambda: full(selector=None, target_refs=(TargetRef("", "Service", "httpbin"),)),
    "reload": lambda: full(fail_strategy="FAIL_RELOAD", phase="STATS", priority=-5),
    "network": lambda: full(type="NETWORK", image_pull_policy="Always"),
    "https": lambda: full(url="https://example.com/plugin.wasm"),
    "file": lambda: full(url="file:///opt/plugins/plugin.wasm", sha256=None),
    "bare-ref": lambda: full(url="registry.example.com/headers:v1"),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VALID))
def test_crd_accepts(variant: str) -> None:
    assert validate_wasmplugin(dump_yaml([wasm_plugin(VALID[variant]())])) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets spec.<dotted path> on a WasmPlugin document."""

    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc["spec"]
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return apply


def _too_many_refs(doc: dict[str, Any]) -> None:
    del doc["spec"]["selector"]
    doc["spec"]["targetRefs"] = [GATEWAY.as_dict()] * 17


REF = GATEWAY.as_dict()
INVALID: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # the CEL rules (x-kubernetes-validations)
    "selector-and-target-refs": (
        _set("targetRefs", [REF]),
        "spec: Invalid value: only one of targetRefs or selector can be set",
    ),
    "url-scheme": (
        _set("url", "ftp://r/wasm:v1"),
        'spec.url: Invalid value: "ftp://r/wasm:v1": url must have schema one of [http, https,',
    ),
    "wildcard-label-value": (
        _set("selector.matchLabels.app", "http*"),
        'spec.selector.matchLabels[app]: Invalid value: "http*": wildcard not allowed in label',
    ),
    "wildcard-label-key": (_set("selector.matchLabels.*", "x"), "not allowed in label key"),
    "empty-label-key": (_set("selector.matchLabels.", "x"), "key must not be empty"),
    "host-env-with-value": (
        _set("vmConfig.env", [{"name": "A", "value": "1", "valueFrom": "HOST"}]),
        "spec.vmConfig.env[0]: Invalid value: value may only be set when valueFrom is INLINE",
    ),
    "cross-namespace-ref": (
        _set("targetRef", {**REF, "namespace": "other"}),
        'spec.targetRef.namespace: Invalid value: "other": cross namespace referencing',
    ),
    # the structural schema
    "sha256-pattern": (
        _set("sha256", "sha256:" + DIGEST),
        "spec.sha256 in body should match '(^$|^[a-f0-9]{64}$)'",
    ),
    "phase-enum": (_set("phase", "EARLY"), 'spec.phase: Unsupported value: "EARLY"'),
    "missing-url": (lambda doc: doc["spec"].pop("url"), "spec.url: Required value"),
    "unknown-field": (_set("pluginConfg", {}), "spec.pluginConfg: Forbidden: unknown field"),
    "priority-type": (_set("priority", "high"), 'spec.priority: Invalid value: "string"'),
    "duplicate-env": (_set("vmConfig.env", [{"name": "A"}] * 2), "env[1]: Duplicate value"),
    "too-many-refs": (_too_many_refs, "spec.targetRefs: Too many: 17: must have at most 16"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(INVALID))
def test_crd_rejects(case: str) -> None:
    mutate, expected = INVALID[case]
    doc = copy.deepcopy(wasm_plugin(lab()))
    mutate(doc)
    errors = validate_wasmplugin(dump_yaml([doc]))
    assert any(expected in line for line in errors), errors
    assert all(line.startswith("<stdin>#0 WasmPlugin/wasm-example: ") for line in errors)


@pytest.mark.slow
def test_crd_checks_each_document_and_the_kind() -> None:
    good = wasm_plugin(lab())
    bad = copy.deepcopy(good)
    bad["metadata"]["name"] = "second"
    bad["spec"]["url"] = "ftp://x/y"
    service = sample_workloads()[1]
    errors = validate_wasmplugin(dump_yaml([good, bad, service]))
    assert any(e.startswith("<stdin>#1 WasmPlugin/second: spec.url:") for e in errors), errors
    assert any(e.startswith("<stdin>#2 Service/httpbin: kind:") for e in errors), errors
    assert not any(e.startswith("<stdin>#0") for e in errors)


@pytest.mark.slow
def test_yaml_strings_survive_go_yaml() -> None:
    """kubectl reads YAML with go-yaml; a string field misread as bool/number fails the schema."""
    docs = []
    for i, text in enumerate(t for t in TRICKY if t.strip() and "\x07" not in t):
        doc = wasm_plugin(lab())
        doc["metadata"]["name"] = f"tricky-{i}"
        doc["spec"]["pluginName"] = text
        docs.append(doc)
    assert validate_wasmplugin(dump_yaml(docs)) == []


# --- YAML and JSON serialization -------------------------------------------------------------


def test_yaml_round_trips_tricky_strings() -> None:
    doc = {"values": TRICKY, "keys": {text: text for text in TRICKY if "\n" not in text}}
    text = dump_yaml([doc])
    assert pyyaml.safe_load(text) == doc  # YAML 1.1 reader
    ruamel = YAML(typ="safe", pure=True)
    assert ruamel.load(text) == doc  # YAML 1.2 reader
    assert json.loads(json.dumps(ruamel.load(text))) == doc


def test_yaml_quotes_only_when_needed() -> None:
    text = dump_yaml(
        [
            {
                "plain": "first_header",
                "url": "oci://r/x:v1",
                "yes": "on",
                "n": None,
                "t": True,
                "i": 1,
                "f": 1.5,
                "empty": {},
                "list": [],
            }
        ]
    )
    assert text == (
        "plain: first_header\nurl: oci://r/x:v1\n'yes': 'on'\n'n': null\nt: true\ni: 1\n"
        "f: 1.5\nempty: {}\nlist: []\n"
    )
    assert dump_yaml([{"s": "a\nb\n"}]) == "s: |\n  a\n  b\n"


def test_yaml_documents_and_determinism() -> None:
    docs = [wasm_plugin(full()), *sample_workloads()]
    text = dump_yaml(docs)
    assert text == dump_yaml(copy.deepcopy(docs))
    assert text.count("\n---\n") == len(docs) - 1 and not text.startswith("---")
    assert load_all(text) == docs
    assert dump_yaml([]) == ""
    assert dump_yaml([{"t": ("a", "b")}]) == "t:\n- a\n- b\n"
    with pytest.raises((TypeError, ValueError)):
        dump_yaml([{"bad": {1, 2}}])


def test_yaml_is_stable_across_hash_seeds(tmp_path: Path) -> None:
    code = (
        "from tests.test_manifests import full, sample_workloads\n"
        "from wasmgen.deploy.istio import wasm_plugin\nfrom wasmgen.deploy.yamlio import dump_yaml\n"
        "print(dump_yaml([wasm_plugin(full()), *sample_workloads()]), end='')\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def test_dump_json() -> None:
    doc = wasm_plugin(full())
    text = dump_json(doc)
    assert text.endswith("}\n") and json.loads(text) == doc
    assert text == dump_json(copy.deepcopy(doc))
    assert dump_json({"é": [1, None]}) == '{\n  "é": [\n    1,\n    null\n  ]\n}\n'
    with pytest.raises(ValueError):
        dump_json({"nan": float("nan")})


# --- Envoy Gateway --------------------------------------------------------------------------


def test_envoy_extension_policy_shape() -> None:
    eep = envoy_extension_policy(
        full(selector=None, target_refs=(GATEWAY,), vm_env=(("POD_NAME", None),))
    )
    assert eep["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    assert eep["kind"] == "EnvoyExtensionPolicy"
    assert eep["metadata"] == {"name": "headers", "namespace": "apps"}
    assert eep["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg"}
    ]
    [wasm] = eep["spec"]["wasm"]
    assert wasm == {
        "name": "headers_root",
        "rootID": "headers_root",
        "code": {
            "type": "Image",
            "image": {
                "url": "registry.example.com:5000/team/headers:v1",  # no oci:// scheme
                "sha256": DIGEST,
                "pullSecretRef": {"kind": "Secret", "name": "regcred"},
            },
            "pullPolicy": "IfNotPresent",
        },
        "config": full().plugin_config,
        "failOpen": True,
        "env": {"hostKeys": ["POD_NAME"]},
    }
    assert load_all(dump_yaml([eep])) == [eep]


@pytest.mark.parametrize(
    ("strategy", "fail_open"),
    [("FAIL_OPEN", True), ("FAIL_CLOSE", False), ("FAIL_RELOAD", False), (None, None)],
)
def test_envoy_extension_policy_fail_open(strategy: str | None, fail_open: bool | None) -> None:
    d = Deployment(name="p", url="r/x:v1", target_refs=(GATEWAY,), fail_strategy=strategy)  # type: ignore[arg-type]
    [wasm] = envoy_extension_policy(d)["spec"]["wasm"]
    assert wasm.get("failOpen") == fail_open
    assert wasm["name"] == "p" and "rootID" not in wasm and "config" not in wasm
    assert wasm["code"] == {"type": "Image", "image": {"url": "r/x:v1"}}


def test_envoy_extension_policy_http_source_and_refusals() -> None:
    d = full(selector=None, target_refs=(GATEWAY,), url="https://h/p.wasm", vm_env=())
    assert envoy_extension_policy(d)["spec"]["wasm"][0]["code"] == {
        "type": "HTTP",
        "http": {"url": "https://h/p.wasm", "sha256": DIGEST},
        "pullPolicy": "IfNotPresent",
    }
    with pytest.raises(WasmgenError, match="needs target_refs") as info:
        envoy_extension_policy(lab())
    assert info.value.hint and "TargetRef(" in info.value.hint
    with pytest.raises(WasmgenError, match="inline VM environment"):
        envoy_extension_policy(full(selector=None, target_refs=(GATEWAY,)))
    with pytest.raises(WasmgenError, match="cannot load"):
        envoy_extension_policy(Deployment(name="p", url="file:///p.wasm", target_refs=(GATEWAY,)))
    with pytest.raises(WasmgenError, match="HTTP plugins only"):
        envoy_extension_policy(
            Deployment(name="p", url="r/x", target_refs=(GATEWAY,), type="NETWORK")
        )


# --- standalone Envoy ----------------------------------------------------------------------


def _hcm(bootstrap: dict[str, Any]) -> dict[str, Any]:
    [listener] = bootstrap["static_resources"]["listeners"]
    [chain] = listener["filter_chains"]
    [hcm] = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    typed: dict[str, Any] = hcm["typed_config"]
    return typed


def test_envoy_bootstrap_wasm_filter_then_router() -> None:
    d = full()
    boot = envoy_bootstrap(d, "/srv/plugin.wasm")
    filters = _hcm(boot)["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    assert filters[1]["typed_config"] == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    }
    typed = filters[0]["typed_config"]
    assert typed["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    config = typed["config"]
    assert config["name"] == "headers" and config["root_id"] == "headers_root"
    value = config["configuration"]
    assert value["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    assert json.loads(value["value"]) == d.plugin_config
    vm = config["vm_config"]
    assert vm["runtime"] == "envoy.wasm.runtime.v8"
    assert vm["code"] == {"local": {"filename": "/srv/plugin.wasm"}}
    assert vm["environment_variables"] == {
        "host_env_keys": ["POD_NAME"],
        "key_values": {"MODE": "strict"},
    }
    assert config["failure_policy"] == "FAIL_OPEN"  # fail_open is deprecated since Envoy 1.36
    assert pyyaml.safe_load(dump_yaml([boot])) == boot  # the JSON string survives YAML as is


def test_envoy_bootstrap_listener_route_and_cluster() -> None:
    boot = envoy_bootstrap(lab(), "main.wasm", 18000, "httpbin.local", 8080, admin_port=9901)
    [listener] = boot["static_resources"]["listeners"]
    assert listener["address"] == {"socket_address": {"address": "0.0.0.0", "port_value": 18000}}
    [vhost] = _hcm(boot)["route_config"]["virtual_hosts"]
    [route] = vhost["routes"]
    [cluster] = boot["static_resources"]["clusters"]
    assert route == {"match": {"prefix": "/"}, "route": {"cluster": cluster["name"]}}
    assert cluster["type"] == "STRICT_DNS"
    [endpoints] = cluster["load_assignment"]["endpoints"]
    address = endpoints["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": "httpbin.local", "port_value": 8080}
    assert boot["admin"]["address"]["socket_address"]["port_value"] == 9901
    plain = envoy_bootstrap(lab(), "main.wasm")
    assert "admin" not in plain
    assert plain["static_resources"]["clusters"][0]["type"] == "STATIC"
    config = _hcm(plain)["http_filters"][0]["typed_config"]["config"]
    assert "root_id" not in config and "failure_policy" not in config
    assert config["configuration"]["value"] == json.dumps(LAB_CONFIG, separators=(",", ":"))
    v6 = envoy_bootstrap(lab(), "m.wasm", upstream_host="::1")["static_resources"]["clusters"]
    assert v6[0]["type"] == "STATIC"
    with pytest.raises(WasmgenError):
        envoy_bootstrap(full(type="NETWORK"), "m.wasm")


# --- verify.sh against a fake kubectl ---------------------------------------------------------

CURL_HEAD = (
    "HTTP/1.1 200 OK\r\nserver: envoy\r\ncontent-type: application/json\r\n"
    "content-length: 604\r\nHeader_1: first_header\r\nheader_2:   second_header  \r\n"
    "x-multi: a\r\nx-multi: b\r\n\r\n"
)

KUBECTL_SHIM = """\
#!/bin/sh
printf '%s\\n' "$*" >> "$SHIM_LOG"
[ "${SHIM_FAIL:-}" = "$1" ] && exit 1
case "$1" in
  get) case "$2" in
         gateway) printf '%s' "${SHIM_GATEWAY_ADDRESS:-}" ;;
         *) [ "${SHIM_FAIL:-}" = no-pod ] || printf 'sleep-7d9f8c-abcde' ;;
       esac ;;
  exec) cat "$SHIM_RESPONSE" ;;
  *) exit 9 ;;
esac
"""


def run_verify(
    tmp_path: Path, script: str, response: str = CURL_HEAD, **env: str
) -> tuple[int, str, list[str]]:
    """Run verify.sh with a fake kubectl first on PATH; returns exit code, stdout, kubectl calls."""
    (bin_dir := tmp_path / "bin").mkdir(exist_ok=True)
    (bin_dir / "kubectl").write_text(KUBECTL_SHIM)
    (bin_dir / "kubectl").chmod(0o755)
    (tmp_path / "response").write_bytes(response.encode())
    (tmp_path / "verify.sh").write_text(script)
    (log := tmp_path / "kubectl.log").write_text("")
    full_env = {k: v for k, v in os.environ.items() if k != "NAMESPACE"}
    full_env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SHIM_LOG=str(log),
        SHIM_RESPONSE=str(tmp_path / "response"),
        **env,
    )
    proc = subprocess.run(
        ["sh", str(tmp_path / "verify.sh")],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode, proc.stdout, log.read_text().splitlines()


def test_verify_script_passes(tmp_path: Path) -> None:
    script = verify_script(
        full(), [("header_1", "first_header"), ("HEADER_2", "second_header"), ("x-multi", "b")]
    )
    code, out, calls = run_verify(tmp_path, script)
    assert code == 0, out
    assert out.splitlines() == [
        "PASS header_1: first_header",
        "PASS HEADER_2: second_header",
        "PASS x-multi: b",
        "3 passed, 0 failed",
    ]
    assert calls == [
        "get pod -n apps -l app=sleep -o jsonpath={.items[0].metadata.name}",
        "exec -n apps sleep-7d9f8c-abcde -- curl -s --head http://httpbin:8000/get",
    ]


def test_verify_script_fails_on_missing_or_wrong_header(tmp_path: Path) -> None:
    script = verify_script(
        lab(),
        [
            ("header_1", "first_header"),
            ("header_3", "third"),
            ("header_2", "SECOND_HEADER"),
            ("x-multi", "c"),
        ],
    )
    code, out, calls = run_verify(tmp_path, script, NAMESPACE="other")
    assert code == 1
    assert out.splitlines() == [
        "PASS header_1: first_header",
        'FAIL header_3: want "third", got <missing>',
        'FAIL header_2: want "SECOND_HEADER", got "second_header"',
        'FAIL x-multi: want "c", got "a", "b"',
        "1 passed, 3 failed",
    ]
    assert calls[0].startswith("get pod -n other ")


def test_verify_script_quotes_values_and_handles_kubectl_failure(tmp_path: Path) -> None:
    value = 'it\'s $HOME `id` "q" \\n'
    response = f"HTTP/1.1 200 OK\r\nx-odd: {value}\r\nx-empty:\r\n\r\n"
    script = verify_script(lab(), [("x-odd", value), ("x-empty", ""), ("X-Odd", f" {value}\t")])
    code, out, _ = run_verify(tmp_path, script, response)
    assert code == 0, out
    assert out.splitlines()[:3] == [
        f"PASS x-odd: {value}",
        "PASS x-empty: ",
        f"PASS X-Odd: {value}",
    ]
    for failure in ("get", "exec", "no-pod"):
        code, out, calls = run_verify(
            tmp_path, verify_script(lab(), [("a", "b")]), SHIM_FAIL=failure
        )
        assert (code, out) == (2, ""), failure
        assert len(calls) == (2 if failure == "exec" else 1)
    with pytest.raises(WasmgenError):
        verify_script(lab(), [("bad name", "x")])
    with pytest.raises(WasmgenError):
        verify_script(lab(), [("x", "a\r\nInjected: 1")])


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_verify_script_is_shellcheck_clean(tmp_path: Path) -> None:
    path = tmp_path / "verify.sh"
    path.write_text(verify_script(full(), [("x-a", "it's $x"), ("x-b", "")]))
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
