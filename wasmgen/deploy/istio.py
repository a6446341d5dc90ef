"""Istio WasmPlugin manifests."""

from __future__ import annotations

from typing import Any

from wasmgen.deploy.deployment import ISTIO_API_VERSION, Deployment, Match, json_copy, resource
from wasmgen.errors import Problem
from wasmgen.plan import Plan


def wasm_plugin(d: Deployment) -> dict[str, Any]:
    """An Istio WasmPlugin (extensions.istio.io/v1alpha1); unset fields are left out."""
    spec: dict[str, Any] = {}
    if d.selector is not None:
        spec["selector"] = {"matchLabels": dict(d.selector)}
    if d.target_refs:
        spec["targetRefs"] = [ref.as_dict() for ref in d.target_refs]
    spec["url"] = d.url
    optional: list[tuple[str, Any]] = [
        ("sha256", d.sha256),
        ("imagePullPolicy", d.image_pull_policy),
        ("imagePullSecret", d.image_pull_secret),
        ("phase", d.phase),
        ("priority", d.priority),
        ("failStrategy", d.fail_strategy),
        ("pluginConfig", json_copy(d.plugin_config) if d.plugin_config else None),
        ("pluginName", d.plugin_name),
        ("type", None if d.type == "HTTP" else d.type),
    ]
    spec.update((k, v) for k, v in optional if v is not None)
    if d.vm_env:
        spec["vmConfig"] = {"env": [_env_var(name, value) for name, value in d.vm_env]}
    if d.match:
        spec["match"] = [_match(m) for m in d.match]
    return resource(ISTIO_API_VERSION, "WasmPlugin", d, spec)


def _env_var(name: str, value: str | None) -> dict[str, str]:
    if value is None:
        return {"name": name, "valueFrom": "HOST"}
    return {"name": name, "value": value}


def _match(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.mode is not None:
        out["mode"] = m.mode
    if m.ports:
        out["ports"] = [{"number": p} for p in m.ports]
    return out


def istio_warnings(plan: Plan) -> tuple[Problem, ...]:
    """Manifest settings that Istio's own code (tests/test_istio_agent.py) shows do nothing."""
    if plan.pin is not None and plan.spec.image_pull_policy == "Always":
        return (
            Problem(
                "imagePullPolicy",
                "Always has no effect on a manifest pinned to a digest (sha256, as `wasmgen push` "
                "writes it): Istio's agent serves the module it cached for that digest and never "
                "pulls it again; push a new image to roll out a change",
            ),
        )
    return ()
