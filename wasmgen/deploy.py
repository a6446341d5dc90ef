"""The deployment files of a project: manifests for every place the plugin runs, as data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from wasmgen import manifests
from wasmgen.errors import WasmgenError
from wasmgen.plan import Plan

LOCK_FILE = "wasmgen.lock"


@dataclass(frozen=True)
class Pin:
    """A pushed image the manifests point at: tag reference plus manifest digest."""

    plugin: str  # the spec name this pin belongs to
    image: str  # registry/repo:tag, no scheme
    digest: str  # sha256:<hex> of the image manifest (what Istio compares)
    wasm_sha256: str | None = None  # the plugin.wasm inside, when wasmgen pushed it
    format: str | None = None

    def lock_bytes(self) -> bytes:
        """The lock file recording this pin."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


def read_lock(out_dir: Path, plugin: str | None = None) -> Pin | None:
    """The pin recorded in out_dir, if any (and if it belongs to plugin, when given)."""
    path = out_dir / LOCK_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        pin = Pin(
            plugin=str(data["plugin"]),
            image=str(data["image"]),
            digest=str(data["digest"]),
            wasm_sha256=data.get("wasm_sha256"),
            format=data.get("format"),
        )
    except (ValueError, KeyError, TypeError):
        raise WasmgenError(
            f"{path} is not a wasmgen lock file", hint="delete it, or push again to rewrite it"
        ) from None
    return pin if plugin is None or pin.plugin == plugin else None


def deployment(plan: Plan, pin: Pin | None = None) -> manifests.Deployment:
    """The manifest inputs for a plan, pinned to a pushed image when there is a pin."""
    spec = plan.spec
    return manifests.Deployment(
        name=spec.name,
        namespace=spec.namespace,
        selector=dict(spec.selector) if spec.selector else None,
        target_refs=tuple(
            manifests.TargetRef(group=t.group, kind=t.kind, name=t.name)
            for t in spec.target_refs or ()
        ),
        url="oci://" + (pin.image if pin else spec.image),
        sha256=pin.digest.removeprefix("sha256:") if pin else None,
        image_pull_policy=spec.image_pull_policy,
        image_pull_secret=spec.image_pull_secret,
        plugin_config=plan.config,
        phase=spec.phase,
        priority=spec.priority,
        fail_strategy=spec.fail_strategy,
    )


def deploy_files(plan: Plan, pin: Pin | None = None) -> dict[str, bytes]:
    """deploy/*: Istio, Envoy Gateway and plain-Envoy manifests, the lab's samples, a verify script."""
    d = deployment(plan, pin)
    samples = manifests.sample_workloads()
    files = {
        "deploy/wasm-plugin.yaml": manifests.dump_yaml([manifests.wasm_plugin(d)]),
        "deploy/envoy.yaml": manifests.dump_yaml([manifests.envoy_bootstrap(d, "plugin.wasm")]),
        "deploy/httpbin.yaml": manifests.dump_yaml(
            [doc for doc in samples if doc["metadata"]["name"] == "httpbin"]
        ),
        "deploy/sleep.yaml": manifests.dump_yaml(
            [doc for doc in samples if doc["metadata"]["name"] == "sleep"]
        ),
    }
    if d.target_refs and all(t.kind == "Gateway" for t in d.target_refs):
        files["deploy/envoy-extension-policy.yaml"] = manifests.dump_yaml(
            [manifests.envoy_extension_policy(d)]
        )
    if plan.added_headers:
        files["deploy/verify.sh"] = manifests.verify_script(d, list(plan.added_headers))
    out = {k: v.encode() for k, v in files.items()}
    if pin is not None:
        out[LOCK_FILE] = pin.lock_bytes()
    return out
