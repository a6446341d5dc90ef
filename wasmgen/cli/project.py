"""Commands that write a project or a starter: generate, manifests, init, variant, schema, export."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from wasmgen import pipeline
from wasmgen.cli.app import (
    BackendOpt,
    FlavorOpt,
    ForceOpt,
    OutOpt,
    SpecArg,
    app,
    backend_of,
    err,
    flavor_of,
    load,
    out,
    out_dir_for,
    summary,
)
from wasmgen.errors import ExitCode, WasmgenError
from wasmgen.plan import Pin
from wasmgen.ship.lock import read_lock
from wasmgen.variants import find


@app.command()
def generate(
    spec: SpecArg,
    out_dir: OutOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 with a diff when DIR is stale; write nothing.")
    ] = False,
    force: ForceOpt = False,
    toolchain: FlavorOpt = "auto",
    backend: BackendOpt = None,
) -> None:
    """Write the Go plugin, its tests, Dockerfile and manifests for SPEC into DIR.

    Example: wasmgen generate examples/seed-lab.yaml -o build/seed-lab
    """
    loaded = load(spec)
    flavor = flavor_of(toolchain, backend=backend)
    target = out_dir_for(loaded, out_dir)
    if check:
        changes, diff = pipeline.check(loaded, target, flavor, backend=backend_of(backend))
        if changes.dirty:
            sys.stdout.write(diff)
            force_flag = " --force" if changes.conflicts else ""
            why = (
                f" ({', '.join(changes.conflicts)} edited by hand or not written by wasmgen; "
                "--force keeps NAME.orig copies)"
                if changes.conflicts
                else ""
            )
            err.print(
                f"{target} is out of date with {spec}{why}; run: "
                f"wasmgen generate {shlex.quote(str(spec))} -o {shlex.quote(str(target))}"
                f"{force_flag}",
                markup=False,
            )
            raise typer.Exit(ExitCode.DIFF)
        out.print(f"{target} is up to date", markup=False)
        return
    summary(
        pipeline.generate(loaded, target, flavor, force=force, backend=backend_of(backend)), target
    )


@app.command()
def manifests(
    spec: SpecArg,
    out_dir: OutOpt = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Image reference to point at.")
    ] = None,
    digest: Annotated[
        str | None, typer.Option("--digest", help="Manifest digest (sha256:...) to pin.")
    ] = None,
    toolchain: FlavorOpt = "auto",
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write DIR with its manifests (Istio, Envoy Gateway, Envoy) without building.

    Example: wasmgen manifests examples/seed-lab.yaml -o out --image reg/wasm:v1 --digest sha256:...
    """
    from wasmgen.ship.reference import parse_reference

    loaded = load(spec)
    target = out_dir_for(loaded, out_dir)
    pin = read_lock(target, loaded.name)
    if digest is not None:
        if not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            raise WasmgenError(f"--digest {digest!r} is not sha256:<64 hex digits>")
        ref = parse_reference(image or loaded.image)
        pin = Pin(loaded.name, f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}", digest)
    elif image is not None:
        raise WasmgenError("--image needs --digest", hint="or change image: in the spec")
    changes = pipeline.write_manifests(
        loaded,
        target,
        pin,
        flavor_of(toolchain, backend=backend),
        force,
        backend=backend_of(backend),
    )
    summary(changes, target)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter spec.")] = Path(
        "wasmgen.yaml"
    ),
    python: Annotated[bool, typer.Option("--python", help="Write the Python DSL version.")] = False,
    name: Annotated[str, typer.Option("--name", help="Plugin name.")] = "my-plugin",
    force: ForceOpt = False,
) -> None:
    """Write a commented starter spec (and its JSON Schema, for editors).

    Example: wasmgen init my-plugin.yaml --name my-plugin
    """
    from wasmgen.spec.names import check_k8s_name

    try:
        check_k8s_name(name)
    except ValueError as exc:
        raise WasmgenError(f"--name: {exc}") from None
    if python and path == Path("wasmgen.yaml"):
        path = Path("wasmgen_spec.py")
    if path.exists() and not force:
        raise WasmgenError(f"{path} already exists", hint="choose another path or pass --force")
    from wasmgen.spec.schema import spec_schema_text  # init's and schema's own modules
    from wasmgen.spec.starter import SCHEMA_FILE, python_starter, yaml_starter

    text = python_starter(name) if python else yaml_starter(name)
    files = {path: text} if python else {path: text, path.parent / SCHEMA_FILE: spec_schema_text()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, content in files.items():
            target.write_text(content)
    except OSError as exc:
        raise WasmgenError(f"cannot write {path}: {exc.strerror or exc}") from None
    written = [str(p) for p in files]
    out.print("wrote " + ", ".join(written), markup=False)


@app.command()
def variant(
    directory: Annotated[Path, typer.Argument(help="Where to put the copied templates.")],
    of: Annotated[
        str | None,
        typer.Option("--of", help="Also copy this installed variant's template overrides."),
    ] = None,
) -> None:
    """Copy the built-in headers templates into DIRECTORY to start a plugin variant.

    Point a spec at it with `templates: DIRECTORY` (relative to the spec file); templates
    you add there (NAME.jinja) are rendered to NAME in the project as well. For a variant
    with options and its own package, see `wasmgen new-variant`.

    Example: wasmgen variant my-variant
    """
    import shutil

    from wasmgen.backends.templating import generators_root

    overrides = find(of).info.templates if of is not None else None
    if directory.exists():
        raise WasmgenError(f"{directory} already exists", hint="choose a new directory")
    shutil.copytree(generators_root() / "headers", directory)
    if overrides is not None:
        shutil.copytree(overrides, directory, dirs_exist_ok=True)
    out.print(f"wrote {directory}; set templates: {directory} in your spec", markup=False)


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option("--variant", help="The schema of this variant's specs, with its options."),
    ] = None,
) -> None:
    """Print the spec's JSON Schema (for editors and CI validation); with --variant NAME, the
    schema of that variant's specs (variant: NAME, options: typed).

    Example: wasmgen schema -o wasmgen-spec.schema.json
    """
    from wasmgen.spec.schema import spec_schema_text

    if variant is None:
        text = spec_schema_text()
    else:
        loaded = find(variant)
        text = spec_schema_text(variant, loaded.variant.options_model)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command()
def export(
    spec: SpecArg,
    python: Annotated[
        bool, typer.Option("--python", help="Write the spec as a Python DSL script.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Write SPEC in another form: --python, a script using wasmgen's Python DSL (formatted
    with black) that builds the same spec; `python SCRIPT DIR` writes the same project as
    `wasmgen generate SPEC -o DIR`.

    Example: wasmgen export examples/cors.yaml --python -o cors_spec.py
    """
    from wasmgen.spec.emit import python_script
    from wasmgen.variants import resolve

    if not python:
        raise WasmgenError("say which form to export", hint="wasmgen export SPEC --python")
    loaded = load(spec)
    resolve(loaded)  # refuse what generate would refuse: unknown variants, bad options
    text = python_script(
        loaded, f"The {loaded.name} plugin as a wasmgen spec in Python, exported from {spec.name}."
    )
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise WasmgenError(f"cannot write {output}: {exc.strerror or exc}") from None
    out.print(f"wrote {output}", markup=False)
