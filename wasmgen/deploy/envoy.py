"""A standalone Envoy bootstrap (envoy.yaml) running the plugin in front of one upstream."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from wasmgen.deploy.deployment import (
    HCM_TYPE,
    ROUTER_TYPE,
    STRING_VALUE_TYPE,
    WASM_FILTER_TYPE,
    Deployment,
)
from wasmgen.errors import WasmgenError
from wasmgen.plan.plan import config_json

ServerHeader = Literal["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"]
# Istio's failStrategy -> the Envoy wasm filter's failure_policy.
FAILURE_POLICIES = {
    "FAIL_CLOSE": "FAIL_CLOSED",
    "FAIL_OPEN": "FAIL_OPEN",
    "FAIL_RELOAD": "FAIL_RELOAD",
}


def envoy_bootstrap(
    d: Deployment,
    wasm_path: str,
    listen_port: int = 10000,
    upstream_host: str = "127.0.0.1",
    upstream_port: int = 8000,
    *,
    listen_address: str = "0.0.0.0",
    admin_port: int | None = None,
    server_header: ServerHeader | None = None,
) -> dict[str, Any]:
    """A standalone envoy.yaml: one listener, the wasm filter before the router, one upstream.

    server_header sets the connection manager's server_header_transformation: Envoy's default
    (OVERWRITE) writes `server: envoy` after the filter chain, so a plugin that removes or sets
    `server` needs PASS_THROUGH for that to reach the client. failStrategy maps to the wasm
    filter's failure_policy (fail_open is deprecated since Envoy 1.36).
    """
    if d.type == "NETWORK":
        raise WasmgenError("the standalone bootstrap runs HTTP plugins only")
    vm_config: dict[str, Any] = {
        "vm_id": d.plugin_name or d.name,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": str(wasm_path)}},
    }
    inline = {name: value for name, value in d.vm_env if value is not None}
    host_keys = [name for name, value in d.vm_env if value is None]
    if inline or host_keys:
        env: dict[str, Any] = {}
        if host_keys:
            env["host_env_keys"] = host_keys
        if inline:
            env["key_values"] = inline
        vm_config["environment_variables"] = env
    config: dict[str, Any] = {"name": d.name}
    if d.plugin_name:
        config["root_id"] = d.plugin_name
    config["configuration"] = {"@type": STRING_VALUE_TYPE, "value": plugin_config_json(d)}
    config["vm_config"] = vm_config
    if d.fail_strategy is not None:
        config["failure_policy"] = FAILURE_POLICIES[d.fail_strategy]
    http_filters = [
        {
            "name": "envoy.filters.http.wasm",
            "typed_config": {"@type": WASM_FILTER_TYPE, "config": config},
        },
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "ingress_http",
        "codec_type": "AUTO",
        "route_config": {
            "name": "local_route",
            "virtual_hosts": [
                {
                    "name": "upstream",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                }
            ],
        },
        "http_filters": http_filters,
    }
    if server_header is not None:
        hcm["server_header_transformation"] = server_header
    listener = {
        "name": "listener_0",
        "address": _socket(listen_address, listen_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm},
                ]
            }
        ],
    }
    cluster = {
        "name": "upstream",
        "type": "STRICT_DNS" if _is_hostname(upstream_host) else "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket(upstream_host, upstream_port)}},
                    ]
                }
            ],
        },
    }
    out: dict[str, Any] = {"static_resources": {"listeners": [listener], "clusters": [cluster]}}
    if admin_port is not None:
        out["admin"] = {"address": _socket("127.0.0.1", admin_port)}
    return out


def plugin_config_json(d: Deployment) -> str:
    """The plugin configuration as the JSON string Istio hands to the plugin (sorted keys, Go's
    escapes), so the standalone Envoy runs exactly what a sidecar would."""
    return config_json(d.plugin_config)


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _is_hostname(host: str) -> bool:
    """True unless host is an IP literal (which a STATIC cluster needs)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False
