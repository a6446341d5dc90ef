"""wasmgen: typed HTTP header rules in, a working proxy-wasm plugin out.

spec = wasmgen.load_spec("spec.yaml")          # or build one with wasmgen.Plugin(...)
wasmgen.generate(spec, "out/")                # the same files as `wasmgen generate spec.yaml -o out/`
"""

from __future__ import annotations

__version__ = "0.1.0"

from pathlib import Path

from wasmgen.deploy import Pin, read_lock
from wasmgen.dsl import (
    Plugin,
    add_if_absent,
    append,
    copy_from_request,
    remove,
    rename,
    respond,
    set_headers,
)
from wasmgen.errors import SpecError, WasmgenError
from wasmgen.loader import load_spec, parse_spec
from wasmgen.plan import Flavor, make_plan
from wasmgen.render import render as render_plan
from wasmgen.spec import Spec
from wasmgen.writer import Changes, check_project, write_project


def render_files(spec: Spec, flavor: Flavor = "go", pin: Pin | None = None) -> dict[str, bytes]:
    """Every file of the plugin project, in memory, keyed by relative path."""
    return render_plan(make_plan(spec, flavor), pin=pin)


def generate(
    spec: Spec, out_dir: str | Path, force: bool = False, flavor: Flavor = "go"
) -> Changes:
    """Write the plugin project for spec into out_dir (see `wasmgen generate`).

    Manifests stay pinned to the image recorded in out_dir/wasmgen.lock by `wasmgen push`.
    """
    out = Path(out_dir)
    return write_project(out, render_files(spec, flavor, read_lock(out, spec.name)), force=force)


def check(spec: Spec, out_dir: str | Path, flavor: Flavor = "go") -> tuple[Changes, str]:
    """Compare out_dir with what generate would write; return the changes and a unified diff."""
    out = Path(out_dir)
    return check_project(out, render_files(spec, flavor, read_lock(out, spec.name)))


__all__ = [
    "Changes",
    "Pin",
    "Plugin",
    "Spec",
    "SpecError",
    "WasmgenError",
    "__version__",
    "add_if_absent",
    "append",
    "check",
    "copy_from_request",
    "generate",
    "load_spec",
    "parse_spec",
    "remove",
    "rename",
    "render_files",
    "respond",
    "set_headers",
]
