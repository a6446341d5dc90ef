"""The deployment files of a project: manifests for every place the plugin runs, as data."""

from __future__ import annotations

from wasmgen import manifests
from wasmgen.plan import Plan


def deployment(plan: Plan, image: str | None = None, digest: str | None = None) -> manifests.Deployment:
    """The manifest inputs for a plan, pinned to a pushed image when digest is known."""
    spec = plan.spec
    return manifests.Deployment(
        name=spec.name,
        namespace=spec.namespace,
        selector=dict(spec.selector) if spec.selector else None,
        target_refs=tuple(
            manifests.TargetRef(group=t.group, kind=t.kind, name=t.name) for t in spec.target_refs or ()
        ),
        url="oci://" + (image or spec.image),
        sha256=digest.removeprefix("sha256:") if digest else None,
        image_pull_policy=spec.image_pull_policy,
        image_pull_secret=spec.image_pull_secret,
        plugin_config=plan.config,
        phase=spec.phase,
        priority=spec.priority,
        fail_strategy=spec.fail_strategy,
    )


def deploy_files(plan: Plan, image: str | None = None, digest: str | None = None) -> dict[str, bytes]:
    """deploy/*: the WasmPlugin and the lab's sample workloads."""
    d = deployment(plan, image, digest)
    samples = manifests.sample_workloads()
    httpbin = [doc for doc in samples if doc["metadata"]["name"] == "httpbin"]
    sleep = [doc for doc in samples if doc["metadata"]["name"] == "sleep"]
    return {
        "deploy/wasm-plugin.yaml": manifests.dump_yaml([manifests.wasm_plugin(d)]).encode(),
        "deploy/httpbin.yaml": manifests.dump_yaml(httpbin).encode(),
        "deploy/sleep.yaml": manifests.dump_yaml(sleep).encode(),
    }
