"""The pipeline for one spec: generate, compile, check against the target host, package, push."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from wasmgen import oci, registry
from wasmgen.build import BuildResult, compile_project
from wasmgen.deploy import Pin, read_lock
from wasmgen.errors import BuildError, RegistryError
from wasmgen.plan import Flavor, make_plan
from wasmgen.render import render
from wasmgen.spec import Spec
from wasmgen.wasm import CompatReport, Target, check_compat, inspect_module, parse_target
from wasmgen.writer import Changes, write_project

WASM_NAME = "plugin.wasm"
IMAGE_DIR = "image"


@dataclass(frozen=True)
class Built:
    """A compiled plugin and what wasmgen knows about it."""

    out_dir: Path
    wasm: Path
    result: BuildResult
    compat: CompatReport
    changes: Changes


def write(
    spec: Spec, out_dir: Path, flavor: Flavor = "go", pin: Pin | None = None, force: bool = False
) -> Changes:
    """Render and write the project (manifests pinned when pin is given)."""
    return write_project(out_dir, render(make_plan(spec, flavor), pin=pin), force=force)


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
    pin = read_lock(out_dir, spec.name)
    changes = write(spec, out_dir, flavor, pin, force)
    result = compile_project(out_dir, out_dir / WASM_NAME, flavor, console)
    if pin is not None and pin.wasm_sha256 not in (None, result.sha256):
        console.print(
            f"[yellow]note:[/] plugin.wasm changed since it was pushed as {pin.image}; "
            "manifests are unpinned until the next `wasmgen push`"
        )
        changes = write(spec, out_dir, flavor, None, force)
    info = inspect_module(result.path.read_bytes())
    compat = check_compat(info, target)
    for warning in compat.warnings:
        console.print(f"[yellow]warning:[/] {target.name}: {warning}", highlight=False)
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
        raise BuildError(
            f"{result.path} cannot load on {target.name}: " + "; ".join(reasons), hint=hint
        )
    return Built(out_dir, result.path, result, compat, changes)


@dataclass(frozen=True)
class Packaged:
    """An image built from plugin.wasm and written as an OCI layout (and tarball)."""

    image: oci.Image
    layout: Path
    tarball: Path | None


def package(built: Built, fmt: oci.Format = "oci", tarball: bool = False) -> Packaged:
    """Build the image of the generated Dockerfile without Docker, into DIR/image/."""
    image = oci.build_image(built.wasm.read_bytes(), fmt)
    layout = oci.write_layout(image, built.out_dir / IMAGE_DIR)
    tar = oci.write_layout_tar(image, built.out_dir / "image.tar") if tarball else None
    return Packaged(image, layout, tar)


def push(
    spec: Spec,
    built: Built,
    packaged: Packaged,
    reference: str,
    flavor: Flavor = "go",
    username: str | None = None,
    password: str | None = None,
    insecure: bool = False,
) -> Pin:
    """Push, read the manifest back to verify it, then pin the manifests to its digest."""
    ref = registry.parse_reference(reference)
    result = registry.push(
        packaged.image, reference, username=username, password=password, insecure=insecure
    )
    pulled = registry.pull(
        f"{ref.registry}/{ref.repository}:{ref.tag}" if ref.tag else reference,
        username=username,
        password=password,
        insecure=insecure,
    )
    if pulled.digest != packaged.image.digest or pulled.manifest != packaged.image.manifest:
        raise RegistryError(
            f"{reference} reads back as {pulled.digest}, not the pushed {packaged.image.digest}",
            hint="another push to the same tag raced this one; push again",
        )
    image_ref = f"{ref.registry}/{ref.repository}" + (f":{ref.tag}" if ref.tag else "")
    pin = Pin(spec.name, image_ref, result.digest, built.result.sha256, packaged.image.format)
    write(spec, built.out_dir, flavor, pin, force=False)
    return pin
