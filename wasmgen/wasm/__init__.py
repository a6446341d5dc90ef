"""Stage 7: proxy-wasm modules as files: inspection, ABI encodings, Envoy/Istio compatibility."""

from __future__ import annotations

from wasmgen.wasm.abi import Action, Header, LogLevel
from wasmgen.wasm.compat import CompatReport, Target, check_compat, parse_target
from wasmgen.wasm.module import ModuleInfo, inspect_module

__all__ = [
    "Action",
    "CompatReport",
    "Header",
    "LogLevel",
    "ModuleInfo",
    "Target",
    "check_compat",
    "inspect_module",
    "parse_target",
]
