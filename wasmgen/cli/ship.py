"""Commands that ship a plugin: package (an OCI image without Docker) and push."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from wasmgen import pipeline
from wasmgen.cli.app import (
    BackendOpt,
    EnvoyOpt,
    FlavorOpt,
    ForceOpt,
    FormatOpt,
    IstioOpt,
    OutOpt,
    SpecArg,
    app,
    format_of,
    out,
)
from wasmgen.cli.run import built_for
from wasmgen.errors import WasmgenError


@app.command()
def package(
    spec: SpecArg,
    out_dir: OutOpt = None,
    fmt: FormatOpt = "oci",
    tar: Annotated[bool, typer.Option("--tar", help="Also write DIR/image.tar.")] = False,
    toolchain: FlavorOpt = "auto",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build the plugin and its image (no Docker needed) as an OCI layout in DIR/image.

    Example: wasmgen package examples/seed-lab.yaml -o build/seed-lab --tar
    """
    image_format = format_of(fmt)
    with ExitStack() as hold:
        _, built = built_for(spec, out_dir, toolchain, istio, envoy, force, backend, hold)
        packaged = pipeline.package(built, image_format, tarball=tar)
    out.print(
        f"{packaged.layout}  {packaged.image.media_type}  {packaged.image.digest}", markup=False
    )
    if packaged.tarball:
        out.print(f"{packaged.tarball}", markup=False)


@app.command()
def push(
    spec: SpecArg,
    image: Annotated[str, typer.Option("--image", help="REGISTRY/REPO:TAG to push to.")],
    out_dir: OutOpt = None,
    fmt: FormatOpt = "oci",
    username: Annotated[str | None, typer.Option("--username", help="Registry user.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Plain HTTP (automatic for localhost).")
    ] = False,
    toolchain: FlavorOpt = "auto",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build, package and push the plugin, then pin DIR's manifests to the pushed digest.

    Credentials come from --username/--password-stdin, WASMGEN_REGISTRY_USERNAME and
    WASMGEN_REGISTRY_PASSWORD, or the docker config file.

    Example: wasmgen push examples/seed-lab.yaml -o build/seed-lab --image localhost:5000/wasm:v1
    """
    from wasmgen.ship.reference import parse_reference

    parse_reference(image)  # a bad reference fails before anything is built
    image_format = format_of(fmt)
    password = None
    if password_stdin:
        if username is None:
            raise WasmgenError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    with ExitStack() as hold:
        loaded, built = built_for(spec, out_dir, toolchain, istio, envoy, force, backend, hold)
        packaged = pipeline.package(built, image_format)
        pin = pipeline.push(
            loaded, built, packaged, image, built.plan.flavor, username, password, insecure
        )
    out.print(f"pushed {pin.image}@{pin.digest}", markup=False)
    deploy_dir = Path(built.out_dir) / "deploy"
    out.print(f"pinned {deploy_dir} to sha256 {pin.digest.removeprefix('sha256:')}", markup=False)
