"""The deploy/ files of a project: manifests for every place the plugin runs, as data."""

from __future__ import annotations

from wasmgen.deploy.deployment import Deployment, TargetRef
from wasmgen.deploy.envoy import ServerHeader, envoy_bootstrap
from wasmgen.deploy.gateway import envoy_extension_policy
from wasmgen.deploy.istio import wasm_plugin
from wasmgen.deploy.samples import sample_workloads
from wasmgen.deploy.verify import verify_script
from wasmgen.deploy.yamlio import dump_yaml
from wasmgen.plan import Plan
from wasmgen.plan.pin import LOCK_FILE
from wasmgen.semantics.verification import verification


def deployment(plan: Plan) -> Deployment:
    """The manifest inputs for a plan, pinned to a pushed image when the plan has a pin."""
    spec, pin = plan.spec, plan.pin
    return Deployment(
        name=spec.name,
        namespace=spec.namespace,
        selector=dict(spec.selector) if spec.selector else None,
        target_refs=tuple(
            TargetRef(group=t.group, kind=t.kind, name=t.name) for t in spec.target_refs or ()
        ),
        url="oci://" + (pin.image if pin else spec.image),
        sha256=pin.digest.removeprefix("sha256:") if pin else None,
        image_pull_policy=spec.image_pull_policy,
        image_pull_secret=spec.image_pull_secret,
        plugin_config=plan.plugin_config,
        phase=spec.phase,
        priority=spec.priority,
        fail_strategy=spec.fail_strategy,
    )


def server_header(plan: Plan) -> ServerHeader | None:
    """PASS_THROUGH when the rules change `server` (Envoy's default overwrites it after them)."""
    return "PASS_THROUGH" if plan.touches_server else None


def deploy_files(plan: Plan) -> dict[str, bytes]:
    """deploy/*: Istio, Envoy Gateway and plain-Envoy manifests, the lab's samples, a verify script."""
    d = deployment(plan)
    samples = sample_workloads()
    files = {
        "deploy/wasm-plugin.yaml": dump_yaml([wasm_plugin(d)]),
        "deploy/envoy.yaml": dump_yaml(
            [envoy_bootstrap(d, "plugin.wasm", server_header=server_header(plan))]
        ),
        "deploy/httpbin.yaml": dump_yaml(
            [doc for doc in samples if doc["metadata"]["name"] == "httpbin"]
        ),
        "deploy/sleep.yaml": dump_yaml(
            [doc for doc in samples if doc["metadata"]["name"] == "sleep"]
        ),
    }
    if d.target_refs and all(t.kind == "Gateway" for t in d.target_refs):
        files["deploy/envoy-extension-policy.yaml"] = dump_yaml([envoy_extension_policy(d)])
    check = verification(plan)
    if check.expected:
        files["deploy/verify.sh"] = verify_script(
            d, check.expected, check=check, variant_dir=plan.spec.templates_dir()
        )
    out = {k: v.encode() for k, v in files.items()}
    if plan.pin is not None:
        out[LOCK_FILE] = plan.pin.lock_bytes()
    return out
