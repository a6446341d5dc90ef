"""The wasmgen command line: every command maps user errors to messages and exit codes here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console

import wasmgen
from wasmgen.errors import ExitCode, WasmgenError
from wasmgen.plan import Flavor
from wasmgen.schema import spec_schema_text
from wasmgen.starter import SCHEMA_FILE, python_starter, yaml_starter
from wasmgen.writer import Changes

if TYPE_CHECKING:
    from wasmgen.project import Built

app = typer.Typer(
    help="Generate, build, test and ship proxy-wasm header plugins for Envoy and Istio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

oci_format = Literal["oci", "docker", "wasm-artifact"]
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
    raise WasmgenError(
        f"unknown toolchain {value!r}", hint="use --toolchain go or --toolchain tinygo"
    )


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
            err.print(
                f"{out_dir} is out of date with {spec}; run: wasmgen generate {spec} -o {out_dir}"
            )
            raise typer.Exit(ExitCode.DIFF)
        out.print(f"{out_dir} is up to date")
        return
    _summary(wasmgen.generate(loaded, out_dir, force=force, flavor=flavor), out_dir)


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
def variant(
    directory: Annotated[Path, typer.Argument(help="Where to put the copied templates.")],
) -> None:
    """Copy the built-in headers templates into DIRECTORY to start a plugin variant.

    Point a spec at it with `templates: DIRECTORY` (relative to the spec file); templates
    you add there (NAME.jinja) are rendered to NAME in the project as well.

    Example: wasmgen variant my-variant
    """
    import shutil

    from wasmgen.render import generators_root

    if directory.exists():
        raise WasmgenError(f"{directory} already exists", hint="choose a new directory")
    shutil.copytree(generators_root() / "headers", directory)
    out.print(f"wrote {directory}; set templates: {directory} in your spec")


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
    out.print(
        f"{r.path}  {r.size} bytes  sha256:{r.sha256}  ({state}, {r.toolchain}, loads on {target.name})"
    )


@app.command()
def inspect(
    wasm: Annotated[Path, typer.Argument(help="A compiled plugin (.wasm).", show_default=False)],
    run: Annotated[
        bool, typer.Option("--run", help="Also load and start it in the embedded host.")
    ] = False,
    config: Annotated[
        str, typer.Option("--config", help="Plugin configuration for --run: JSON text or @FILE.")
    ] = "",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
) -> None:
    """Show a module's ABI version, callbacks, imports, size and the Istio/Envoy versions that
    load it; exit 2 when no Envoy can run it (or, with --run, when it fails to start).

    Example: wasmgen inspect build/seed-lab/plugin.wasm --run --config @config.json
    """
    from wasmgen.errors import HostError
    from wasmgen.wasm import format_inspect, inspect_module, module_problems, module_warnings

    try:
        data = wasm.read_bytes()
    except OSError as exc:
        raise WasmgenError(f"{wasm}: {exc.strerror or exc}") from None
    try:
        info = inspect_module(data)
    except HostError as exc:
        raise HostError(f"{wasm}: {exc.message.splitlines()[0]}", exc.hint) from None
    out.print(format_inspect(info), markup=False)
    fatal = module_problems(info) + [w for w in module_warnings(info) if "_start" in w]
    if fatal:
        raise HostError(f"{wasm}: {fatal[0].split(':')[0]}: Envoy cannot run it", hint=fatal[0])
    if run:
        _inspect_run(wasm, data, config, istio, envoy)


def _inspect_run(
    wasm: Path, data: bytes, config: str, istio: str | None, envoy: str | None
) -> None:
    from wasmgen.errors import HostError
    from wasmgen.host import ProxyWasmHost
    from wasmgen.wasm import parse_target

    target = parse_target(istio, envoy)
    raw = Path(config[1:]).read_bytes() if config.startswith("@") else config.encode()
    try:
        with ProxyWasmHost(data, plugin_config=raw, target=target) as host:
            started = host.start()
            logs = host.logs("critical") or host.logs("error")
    except HostError as exc:
        raise HostError(f"{wasm}: {exc.message.splitlines()[0]}", exc.hint) from None
    if not started:
        reason = logs[-1] if logs else "on_configure returned false"
        raise WasmgenError(f"{wasm}: the plugin refused to start on {target.name}: {reason}")
    out.print(f"starts on {target.name}: yes")


@app.command("test")
def test_command(
    spec: SpecArg,
    out_dir: OutOpt = Path("."),
    toolchain: FlavorOpt = "go",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    force: ForceOpt = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    go: Annotated[
        bool, typer.Option("--go", help="Also run the generated Go tests (go test) in DIR.")
    ] = False,
) -> None:
    """Build if needed, then run the spec's test cases and every rule's derived traffic
    through plugin.wasm in wasmgen's embedded proxy-wasm host. Exits 1 on any failure.

    Example: wasmgen test examples/seed-lab.yaml -o build/seed-lab
    """
    from wasmgen.plan import make_plan
    from wasmgen.testing import report, run

    loaded, built = _build_for_ship(spec, out_dir, toolchain, istio, envoy, force)
    results = run(
        make_plan(loaded, _flavor(toolchain)), built.wasm.read_bytes(), built.compat.target
    )
    out.print(report(results), markup=False)
    if junit is not None:
        from wasmgen.testing import junit_xml

        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_bytes(junit_xml(loaded.name, results))
    failed = not all(r.passed for r in results)
    if go:
        from wasmgen.build import go_test

        env = {"WASMGEN_REQUIRE_WASM": "1"} if toolchain == "go" else {}
        result = go_test(out_dir, env=env, console=err, check=False)
        out.print(
            f"go test (native and in the SDK's wazero host): {'ok' if result.ok else 'FAILED'}"
        )
        failed = failed or not result.ok
    if failed:
        raise typer.Exit(ExitCode.DIFF)


@app.command()
def serve(
    spec: SpecArg,
    upstream: Annotated[str, typer.Option("--upstream", help="http://HOST:PORT to forward to.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 to listen on.")] = 10000,
    out_dir: OutOpt = Path("."),
    toolchain: FlavorOpt = "go",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build if needed and proxy 127.0.0.1:PORT to the upstream through the plugin (Ctrl-C stops).

    Example: wasmgen serve examples/seed-lab.yaml -o build/seed-lab --upstream http://127.0.0.1:8000 --port 10000
    """
    from wasmgen.host import ProxyWasmHost
    from wasmgen.plan import make_plan
    from wasmgen.serve import serve as run_proxy

    loaded, built = _build_for_ship(spec, out_dir, toolchain, istio, envoy, force)
    plan = make_plan(loaded, _flavor(toolchain))
    host = ProxyWasmHost(
        built.wasm.read_bytes(),
        plugin_config=plan.config_json.encode(),
        target=built.compat.target,
        plugin_name=plan.name,
    )
    if not host.start():
        reason = (host.logs("critical") or host.logs() or ["no log"])[-1]
        raise WasmgenError(f"the plugin refused to start: {reason}")

    def ready(bound: int) -> None:
        err.print(
            f"serving http://127.0.0.1:{bound} -> {upstream} through {built.wasm} (Ctrl-C stops)"
        )

    run_proxy(host, upstream, port, ready)
    err.print("stopped")


FormatOpt = Annotated[
    str,
    typer.Option("--format", help="oci (default), docker (v2 manifest) or wasm-artifact."),
]


def _format(value: str) -> oci_format:
    from wasmgen.oci import FORMATS

    if value not in FORMATS:
        raise WasmgenError(f"unknown image format {value!r}", hint="use " + ", ".join(FORMATS))
    return value


def _build_for_ship(
    spec: Path, out_dir: Path, toolchain: str, istio: str | None, envoy: str | None, force: bool
) -> tuple[wasmgen.Spec, Built]:
    from wasmgen.project import build as build_project
    from wasmgen.wasm import parse_target

    loaded = wasmgen.load_spec(spec)
    target = parse_target(istio, envoy)
    built = build_project(loaded, out_dir, _flavor(toolchain), target, force=force, console=err)
    return loaded, built


@app.command()
def package(
    spec: SpecArg,
    out_dir: OutOpt = Path("."),
    fmt: FormatOpt = "oci",
    tar: Annotated[bool, typer.Option("--tar", help="Also write DIR/image.tar.")] = False,
    toolchain: FlavorOpt = "go",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build the plugin and its image (no Docker needed) as an OCI layout in DIR/image.

    Example: wasmgen package examples/seed-lab.yaml -o build/seed-lab --tar
    """
    from wasmgen.project import package as package_image

    _, built = _build_for_ship(spec, out_dir, toolchain, istio, envoy, force)
    packaged = package_image(built, _format(fmt), tarball=tar)
    out.print(f"{packaged.layout}  {packaged.image.media_type}  {packaged.image.digest}")
    if packaged.tarball:
        out.print(f"{packaged.tarball}")


@app.command()
def push(
    spec: SpecArg,
    image: Annotated[str, typer.Option("--image", help="REGISTRY/REPO:TAG to push to.")],
    out_dir: OutOpt = Path("."),
    fmt: FormatOpt = "oci",
    username: Annotated[str | None, typer.Option("--username", help="Registry user.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Plain HTTP (automatic for localhost).")
    ] = False,
    toolchain: FlavorOpt = "go",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build, package and push the plugin, then pin DIR's manifests to the pushed digest.

    Credentials come from --username/--password-stdin, WASMGEN_REGISTRY_USERNAME and
    WASMGEN_REGISTRY_PASSWORD, or the docker config file.

    Example: wasmgen push examples/seed-lab.yaml -o build/seed-lab --image localhost:5000/wasm:v1
    """
    from wasmgen.project import package as package_image
    from wasmgen.project import push as push_image
    from wasmgen.registry import parse_reference

    parse_reference(image)  # a bad reference fails before anything is built
    password = None
    if password_stdin:
        if username is None:
            raise WasmgenError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    loaded, built = _build_for_ship(spec, out_dir, toolchain, istio, envoy, force)
    packaged = package_image(built, _format(fmt))
    pin = push_image(
        loaded, built, packaged, image, _flavor(toolchain), username, password, insecure
    )
    out.print(f"pushed {pin.image}@{pin.digest}")
    out.print(f"pinned {out_dir / 'deploy'} to sha256 {pin.digest.removeprefix('sha256:')}")


@app.command()
def manifests(
    spec: SpecArg,
    out_dir: OutOpt = Path("."),
    image: Annotated[
        str | None, typer.Option("--image", help="Image reference to point at.")
    ] = None,
    digest: Annotated[
        str | None, typer.Option("--digest", help="Manifest digest (sha256:...) to pin.")
    ] = None,
    toolchain: FlavorOpt = "go",
    force: ForceOpt = False,
) -> None:
    """Write DIR with its manifests (Istio, Envoy Gateway, Envoy) without building.

    Example: wasmgen manifests examples/seed-lab.yaml -o out --image reg/wasm:v1 --digest sha256:...
    """
    import re

    from wasmgen.deploy import Pin, read_lock
    from wasmgen.project import write
    from wasmgen.registry import parse_reference

    loaded = wasmgen.load_spec(spec)
    pin = read_lock(out_dir, loaded.name)
    if digest is not None:
        if not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            raise WasmgenError(f"--digest {digest!r} is not sha256:<64 hex digits>")
        ref = parse_reference(image or loaded.image)
        pin = Pin(loaded.name, f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}", digest)
    elif image is not None:
        raise WasmgenError("--image needs --digest", hint="or change image: in the spec")
    _summary(write(loaded, out_dir, _flavor(toolchain), pin, force), out_dir)


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
