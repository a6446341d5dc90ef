"""The build pipeline for one spec: generate, compile, and check the module against its target host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from wasmgen.build import BuildResult, compile_project
from wasmgen.errors import BuildError
from wasmgen.plan import Flavor, make_plan
from wasmgen.render import render
from wasmgen.spec import Spec
from wasmgen.wasm import CompatReport, Target, check_compat, inspect_module, parse_target
from wasmgen.writer import Changes, write_project

WASM_NAME = "plugin.wasm"


@dataclass(frozen=True)
class Built:
    """A compiled plugin and what wasmgen knows about it."""

    out_dir: Path
    wasm: Path
    result: BuildResult
    compat: CompatReport
    changes: Changes


def build(
    spec: Spec,
    out_dir: Path,
    flavor: Flavor = "go",
    target: Target | None = None,
    force: bool = False,
    console: Console | None = None,
) -> Built:
    """Generate into out_dir, compile plugin.wasm (cached), and refuse it if the target can't load it."""
    target = target or parse_target(None, None)
    console = console or Console(stderr=True)
    changes = write_project(out_dir, render(make_plan(spec, flavor)), force=force)
    result = compile_project(out_dir, out_dir / WASM_NAME, flavor, console)
    info = inspect_module(result.path.read_bytes())
    compat = check_compat(info, target)
    for warning in compat.warnings:
        console.print(f"[yellow]warning:[/] {target.name}: {warning}", markup=True, highlight=False)
    if not compat.loadable:
        reasons = list(compat.problems)
        if compat.missing:
            reasons.append(
                f"it imports {len(compat.missing)} function(s) that host lacks: {compat.missing_names()}"
            )
        hint = None
        if flavor == "go" and target.wasi_set == "S15":
            hint = (
                "Envoy <= 1.32 (Istio <= 1.24) cannot load upstream Go wasip1 builds; use "
                "--toolchain tinygo (TinyGo 0.32-0.34) for that version, or target Istio >= 1.25"
            )
        raise BuildError(f"{result.path} cannot load on {target.name}: " + "; ".join(reasons), hint=hint)
    return Built(out_dir, result.path, result, compat, changes)
