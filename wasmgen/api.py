"""The Python API's functions, one per CLI step; `wasmgen` re-exports them (see its __init__)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wasmgen import pipeline
from wasmgen.artifacts import Changes
from wasmgen.errors import WasmgenError
from wasmgen.pipeline import Built, Packaged
from wasmgen.plan import Backend, Flavor, Pin
from wasmgen.spec import Spec

if TYPE_CHECKING:
    from wasmgen.testing import CaseResult


def _spec(spec: object) -> Spec:
    if not isinstance(spec, Spec):
        raise WasmgenError(
            f"expected a wasmgen.Spec, got {type(spec).__name__}",
            hint="load one with wasmgen.load_spec(path) or build one with wasmgen.Plugin(...).build()",
        )
    return spec


def render_files(
    spec: Spec, flavor: Flavor = "go", pin: Pin | None = None, backend: Backend | None = None
) -> dict[str, bytes]:
    """Every file of the plugin project, in memory, keyed by relative path."""
    return pipeline.render(_spec(spec), flavor, pin, backend=backend).files


def generate(
    spec: Spec,
    out_dir: str | Path,
    force: bool = False,
    flavor: Flavor = "go",
    backend: Backend | None = None,
) -> Changes:
    """Write the plugin project for spec into out_dir (see `wasmgen generate`).

    Manifests stay pinned to the image recorded in out_dir/wasmgen.lock by `wasmgen push`.
    """
    return pipeline.generate(_spec(spec), Path(out_dir), flavor, force=force, backend=backend)


def check(
    spec: Spec, out_dir: str | Path, flavor: Flavor = "go", backend: Backend | None = None
) -> tuple[Changes, str]:
    """Compare out_dir with what generate would write; return the changes and a unified diff."""
    return pipeline.check(_spec(spec), Path(out_dir), flavor, backend=backend)


def build(
    spec: Spec,
    out_dir: str | Path,
    flavor: Flavor = "go",
    istio: str | None = None,
    envoy: str | None = None,
    force: bool = False,
    backend: Backend | None = None,
) -> Built:
    """Generate and compile out_dir/plugin.wasm, checked against the target (see `wasmgen build`)."""
    from wasmgen.wasm.compat import parse_target

    target = parse_target(istio, envoy)
    return pipeline.build(_spec(spec), Path(out_dir), flavor, target, force=force, backend=backend)


def test(
    spec: Spec, out_dir: str | Path, flavor: Flavor = "go", backend: Backend | None = None
) -> list[CaseResult]:
    """Build, then run the spec's cases and derived traffic in the embedded host."""
    from wasmgen.semantics import derive_for
    from wasmgen.testing import run

    built = build(spec, out_dir, flavor, backend=backend)
    scenarios = derive_for(built.plan).scenarios
    return run(built.plan, scenarios, built.wasm.read_bytes(), built.compat.target)


def package(built: Built, fmt: str = "oci", tarball: bool = False) -> Packaged:
    """The image of a built plugin as an OCI layout in DIR/image (see `wasmgen package`)."""
    from wasmgen.ship.oci import FORMATS

    if fmt not in FORMATS:
        raise WasmgenError(f"unknown image format {fmt!r}", hint="use " + ", ".join(FORMATS))
    return pipeline.package(built, fmt, tarball)


def push(
    spec: Spec,
    built: Built,
    packaged: Packaged,
    reference: str,
    username: str | None = None,
    password: str | None = None,
    insecure: bool = False,
) -> Pin:
    """Push, read back, and pin the manifests to the pushed digest (see `wasmgen push`)."""
    return pipeline.push(
        _spec(spec), built, packaged, reference, built.plan.flavor, username, password, insecure
    )
