"""Envoy Gateway EnvoyExtensionPolicy manifests."""

from __future__ import annotations

from typing import Any

from wasmgen.deploy.deployment import (
    ENVOY_GATEWAY_API_VERSION,
    Deployment,
    json_copy,
    resource,
    url_scheme,
)
from wasmgen.errors import WasmgenError


def envoy_extension_policy(d: Deployment) -> dict[str, Any]:
    """An Envoy Gateway EnvoyExtensionPolicy running the same plugin on the targetRefs."""
    if not d.target_refs:
        raise WasmgenError(
            f"EnvoyExtensionPolicy {d.name!r} needs target_refs",
            hint="Envoy Gateway attaches policies to a Gateway or HTTPRoute, not to pods; set "
            "target_refs=(TargetRef('gateway.networking.k8s.io', 'Gateway', 'eg'),)",
        )
    if d.type == "NETWORK":
        raise WasmgenError("EnvoyExtensionPolicy runs HTTP plugins only", hint="use type HTTP")
    if any(value is not None for _, value in d.vm_env):
        raise WasmgenError(
            "EnvoyExtensionPolicy cannot set inline VM environment values",
            hint="pass them in plugin_config, or use value None to read them from the host",
        )
    code: dict[str, Any]
    scheme = url_scheme(d.url)
    if scheme in ("", "oci"):
        image: dict[str, Any] = {"url": d.url.removeprefix("oci://")}
        if d.sha256:
            image["sha256"] = d.sha256
        if d.image_pull_secret:
            image["pullSecretRef"] = {"kind": "Secret", "name": d.image_pull_secret}
        code = {"type": "Image", "image": image}
    elif scheme in ("http", "https"):
        http: dict[str, Any] = {"url": d.url}
        if d.sha256:
            http["sha256"] = d.sha256
        code = {"type": "HTTP", "http": http}
    else:
        raise WasmgenError(
            f"Envoy Gateway cannot load {d.url!r}", hint="push the plugin to a registry (oci://)"
        )
    if d.image_pull_policy in ("IfNotPresent", "Always"):
        code["pullPolicy"] = d.image_pull_policy
    wasm: dict[str, Any] = {"name": d.plugin_name or d.name}
    if d.plugin_name:
        wasm["rootID"] = d.plugin_name
    wasm["code"] = code
    if d.plugin_config:
        wasm["config"] = json_copy(d.plugin_config)
    if d.fail_strategy is not None:
        wasm["failOpen"] = d.fail_strategy == "FAIL_OPEN"  # FAIL_RELOAD falls back to closed
    host_keys = [name for name, value in d.vm_env if value is None]
    if host_keys:
        wasm["env"] = {"hostKeys": host_keys}
    spec = {"targetRefs": [ref.as_dict() for ref in d.target_refs], "wasm": [wasm]}
    return resource(ENVOY_GATEWAY_API_VERSION, "EnvoyExtensionPolicy", d, spec)
