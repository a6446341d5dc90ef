"""wasmgen: typed HTTP header rules in, a working proxy-wasm plugin out.

spec = wasmgen.load_spec("spec.yaml")          # or build one with wasmgen.Plugin(...)
wasmgen.generate(spec, "out/")                # the same files as `wasmgen generate spec.yaml -o out/`
built = wasmgen.build(spec, "out/")           # out/plugin.wasm, checked against the target Envoy
results = wasmgen.test(spec, "out/")          # the spec's cases and derived traffic, in the host

Everything not listed in __all__ is private and may change between releases.

Names load on first use (PEP 562), so `import wasmgen` itself imports almost nothing: the
console entry point (wasmgen.__main__) runs before the stack is imported, which is what lets it
keep the garbage collector out of the start-up (wasmgen.cli.main).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import wasmgen.build  # noqa: F401  the stage package, loaded now: see _BUILD_STAGE below
from wasmgen._version import __version__
from wasmgen.errors import SpecError, WasmgenError

if TYPE_CHECKING:
    from wasmgen.api import build, check, generate, package, push, render_files, test
    from wasmgen.artifacts import Changes
    from wasmgen.host import HttpRequest, HttpResponse, ProxyWasmHost
    from wasmgen.pipeline import Built, Packaged
    from wasmgen.plan import Pin
    from wasmgen.spec import (
        Plugin,
        Spec,
        add_if_absent,
        append,
        cookie_flags,
        copy_from_request,
        dedupe,
        load_spec,
        parse_spec,
        remove,
        remove_cookie,
        remove_query,
        rename,
        respond,
        rewrite,
        set_headers,
        set_query,
    )
    from wasmgen.testing import CaseResult

__all__ = [
    "Built",
    "CaseResult",
    "Changes",
    "HttpRequest",
    "HttpResponse",
    "Packaged",
    "Pin",
    "Plugin",
    "ProxyWasmHost",
    "Spec",
    "SpecError",
    "WasmgenError",
    "__version__",
    "add_if_absent",
    "append",
    "build",
    "check",
    "cookie_flags",
    "copy_from_request",
    "dedupe",
    "generate",
    "load_spec",
    "package",
    "parse_spec",
    "push",
    "remove",
    "remove_cookie",
    "remove_query",
    "rename",
    "render_files",
    "respond",
    "rewrite",
    "set_headers",
    "set_query",
    "test",
]

_API_NAMES = ("build", "check", "generate", "package", "push", "render_files", "test")
# Where each public name lives; each module loads when one of its names is first read. A name
# of __all__ not bound above nor listed after the spec's is the spec's (Plugin, load_spec, ...).
_LAZY: dict[str, str] = {
    **dict.fromkeys(__all__, "wasmgen.spec"),
    **dict.fromkeys(_API_NAMES, "wasmgen.api"),
    "Changes": "wasmgen.artifacts",
    "Built": "wasmgen.pipeline",
    "Packaged": "wasmgen.pipeline",
    "Backend": "wasmgen.plan",
    "Flavor": "wasmgen.plan",
    "Pin": "wasmgen.plan",
    "HttpRequest": "wasmgen.host",
    "HttpResponse": "wasmgen.host",
    "ProxyWasmHost": "wasmgen.host",
    "CaseResult": "wasmgen.testing",
}
# `build` names both a function and the stage package wasmgen.build. Importing a package binds
# it on its parent, once, when it is first loaded: loaded above and unbound here, the package
# can never again replace the function that __getattr__ binds to the name.
_BUILD_STAGE = globals().pop("build")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # read once: later reads find it without coming here
        return value
    if name.isidentifier():  # a stage by attribute (wasmgen.spec after `import wasmgen`)
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
