"""The wasmgen command line: every command maps user errors to messages and exit codes here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

import wasmgen
from wasmgen.errors import ExitCode, WasmgenError
from wasmgen.plan import Flavor
from wasmgen.schema import spec_schema_text
from wasmgen.starter import SCHEMA_FILE, python_starter, yaml_starter
from wasmgen.writer import Changes

app = typer.Typer(
    help="Generate, build, test and ship proxy-wasm header plugins for Envoy and Istio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Project directory to write.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite files wasmgen did not write.")]
FlavorOpt = Annotated[
    str,
    typer.Option("--toolchain", help="go (upstream Go >= 1.24, wasip1) or tinygo (Istio <= 1.24)."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"wasmgen {wasmgen.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Generate, build, test and ship proxy-wasm header plugins for Envoy and Istio."""


def _flavor(value: str) -> Flavor:
    if value == "go":
        return "go"
    if value == "tinygo":
        return "tinygo"
    raise WasmgenError(f"unknown toolchain {value!r}", hint="use --toolchain go or --toolchain tinygo")


def _summary(changes: Changes, out_dir: Path) -> None:
    parts = [
        f"{len(changes.create)} created",
        f"{len(changes.update)} updated",
        f"{len(changes.delete)} removed",
        f"{len(changes.unchanged)} unchanged",
    ]
    out.print(f"{out_dir}: " + ", ".join(parts))


@app.command()
def generate(
    spec: SpecArg,
    out_dir: OutOpt = Path("."),
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 with a diff when DIR is stale; write nothing.")
    ] = False,
    force: ForceOpt = False,
    toolchain: FlavorOpt = "go",
) -> None:
    """Write the Go plugin, its tests, Dockerfile and manifests for SPEC into DIR.

    Example: wasmgen generate examples/seed-lab.yaml -o build/seed-lab
    """
    loaded = wasmgen.load_spec(spec)
    flavor = _flavor(toolchain)
    if check:
        changes, diff = wasmgen.check(loaded, out_dir, flavor)
        if changes.dirty:
            sys.stdout.write(diff)
            err.print(f"{out_dir} is out of date with {spec}; run: wasmgen generate {spec} -o {out_dir}")
            raise typer.Exit(ExitCode.DIFF)
        out.print(f"{out_dir} is up to date")
        return
    _summary(wasmgen.generate(loaded, out_dir, force=force, flavor=flavor), out_dir)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter spec.")] = Path("wasmgen.yaml"),
    python: Annotated[bool, typer.Option("--python", help="Write the Python DSL version.")] = False,
    name: Annotated[str, typer.Option("--name", help="Plugin name.")] = "my-plugin",
    force: ForceOpt = False,
) -> None:
    """Write a commented starter spec (and its JSON Schema, for editors).

    Example: wasmgen init my-plugin.yaml --name my-plugin
    """
    from wasmgen.names import check_k8s_name

    try:
        check_k8s_name(name)
    except ValueError as exc:
        raise WasmgenError(f"--name: {exc}") from None
    if python and path == Path("wasmgen.yaml"):
        path = Path("wasmgen_spec.py")
    if path.exists() and not force:
        raise WasmgenError(f"{path} already exists", hint="choose another path or pass --force")
    text = python_starter(name) if python else yaml_starter(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    written = [str(path)]
    if not python:
        schema_path = path.parent / SCHEMA_FILE
        schema_path.write_text(spec_schema_text())
        written.append(str(schema_path))
    out.print("wrote " + ", ".join(written))


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Print the spec's JSON Schema (for editors and CI validation).

    Example: wasmgen schema -o wasmgen-spec.schema.json
    """
    text = spec_schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


IstioOpt = Annotated[
    str | None, typer.Option("--istio", help="Target Istio version (default: a recent one).")
]
EnvoyOpt = Annotated[str | None, typer.Option("--envoy", help="Target Envoy version instead.")]


@app.command()
def build(
    spec: SpecArg,
    out_dir: OutOpt = Path("."),
    toolchain: FlavorOpt = "go",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Generate DIR and compile it into DIR/plugin.wasm, checked against the target Envoy.

    Example: wasmgen build examples/seed-lab.yaml -o build/seed-lab --istio 1.28
    """
    from wasmgen.project import build as build_project
    from wasmgen.wasm import parse_target

    target = parse_target(istio, envoy)
    built = build_project(
        wasmgen.load_spec(spec), out_dir, _flavor(toolchain), target, force=force, console=err
    )
    r = built.result
    state = "cached" if r.cached else "built"
    out.print(f"{r.path}  {r.size} bytes  sha256:{r.sha256}  ({state}, {r.toolchain}, loads on {target.name})")


@app.command()
def inspect(
    wasm: Annotated[Path, typer.Argument(help="A compiled plugin (.wasm).", show_default=False)],
) -> None:
    """Show a module's ABI version, callbacks, imports, size and the Istio/Envoy versions that load it.

    Example: wasmgen inspect build/seed-lab/plugin.wasm
    """
    from wasmgen.wasm import format_inspect, inspect_module

    try:
        data = wasm.read_bytes()
    except OSError as exc:
        raise WasmgenError(f"{wasm}: {exc.strerror or exc}") from None
    out.print(format_inspect(inspect_module(data)), markup=False)


def _fail(exc: WasmgenError) -> NoReturn:
    err.print(exc.render(), markup=False)
    sys.exit(int(exc.exit_code))


def main() -> None:
    """Console entry point."""
    try:
        app()
    except WasmgenError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def _json(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
