"""Stage 9: the embedded proxy-wasm host (wasmtime) and a loopback proxy around it.

It runs any proxy-wasm module the way Envoy does; it knows nothing of specs or backends.
"""

from __future__ import annotations

from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.host.types import (
    ClientResponse,
    HeaderMap,
    HttpRequest,
    HttpResponse,
    HttpResult,
    LocalResponse,
    LogEntry,
    UpstreamRequest,
)
from wasmgen.host.vm import HttpStream, ProxyWasmHost
from wasmgen.wasm.abi import Action, LogLevel

__all__ = [
    "Action",
    "ClientResponse",
    "EnvoySurroundings",
    "HeaderMap",
    "HttpRequest",
    "HttpResponse",
    "HttpResult",
    "HttpStream",
    "LocalResponse",
    "LogEntry",
    "LogLevel",
    "ProxyWasmHost",
    "UpstreamRequest",
]
