"""The human-readable module report of `wasmgen inspect`."""

from __future__ import annotations

from collections.abc import Iterable

from wasmgen.wasm.compat import loadable_on
from wasmgen.wasm.module import ModuleInfo, module_problems, module_warnings


def _wrap(items: Iterable[str], indent: str = "  ") -> list[str]:
    return [indent + item for item in items]


def format_inspect(info: ModuleInfo) -> str:
    """The human-readable report for `wasmgen inspect`."""
    abi = f"proxy-wasm {info.abi_version}" if info.abi_version else "none"
    if info.is_reactor:
        kind = "reactor (_initialize)"
    else:
        kind = "WASI command (_start)" if info.has_start else "neither _initialize nor _start"
    lines = [
        f"size:       {info.size} bytes",
        f"sha256:     {info.sha256}",
        f"ABI:        {abi}",
        f"module:     {kind}",
        f"callbacks ({len(info.callbacks)}):",
        *_wrap(info.callbacks),
        f"imports ({len(info.imports)}):",
        *_wrap(f"{mod}.{name}" for mod, name in info.imports),
    ]
    if module_problems(info):
        lines += ["problems:", *_wrap(module_problems(info))]
    if module_warnings(info):
        lines += ["warnings:", *_wrap(module_warnings(info))]
    lines.append("loads on:")
    for rng in loadable_on(info):
        head = f"  {rng.describe()}, WASI set {rng.wasi_set}: "
        if rng.loadable:
            lines.append(head + "yes")
            lines.extend(_wrap(rng.warnings, "    warning: "))
        elif rng.missing:
            names = ", ".join(f"{mod}.{name}" for mod, name in rng.missing)
            lines.append(head + f"no, missing {len(rng.missing)} import(s): {names}")
        else:
            lines.append(head + "no, see problems above")
    return "\n".join(lines) + "\n"
