"""Commands that compile and run a plugin: build, test, serve, inspect."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from wasmgen import pipeline
from wasmgen.artifacts import locked
from wasmgen.cli.app import (
    BackendOpt,
    EnvoyOpt,
    FlavorOpt,
    ForceOpt,
    IstioOpt,
    OutOpt,
    SpecArg,
    app,
    backend_of,
    err,
    flavor_of,
    load,
    out,
    out_dir_for,
)
from wasmgen.errors import HostError, WasmgenError, printable
from wasmgen.fsutil import InputRefused, read_input
from wasmgen.spec import Spec


def built_for(
    spec: Path,
    out_dir: Path | None,
    toolchain: str,
    istio: str | None,
    envoy: str | None,
    force: bool,
    backend: str | None = None,
    hold: ExitStack | None = None,
) -> tuple[Spec, pipeline.Built]:
    """Load the spec and build it (the first half of test, serve, package and push); with
    hold, the output directory stays locked until hold closes."""
    chosen = backend_of(backend)
    loaded = load(spec)
    from wasmgen.wasm.compat import parse_target  # only commands that build load it

    target = parse_target(istio, envoy)
    directory = out_dir_for(loaded, out_dir)
    if hold is not None:
        hold.enter_context(locked(directory))
    built = pipeline.build(
        loaded,
        directory,
        flavor_of(toolchain, target),
        target,
        force=force,
        console=err,
        backend=chosen,
    )
    for warning in built.changes.warnings:
        err.print(f"warning: {warning.render()}", markup=False)
    return loaded, built


def check_upstream(url: str) -> tuple[str, int]:
    """(host, port) of an http://HOST[:PORT] upstream URL, or a user error saying what is wrong
    with it: the proxy forwards each request's own path, so a path, query, fragment or
    credentials in the URL would be silently dropped, and are refused instead."""
    from urllib.parse import urlsplit

    hint = "e.g. --upstream http://127.0.0.1:8000"
    shown = ascii(url)
    if any(not c.isprintable() or c.isspace() for c in url):
        raise WasmgenError(f"--upstream {shown} holds white space or control characters", hint=hint)
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise WasmgenError(f"--upstream {shown}: {exc}", hint=hint) from None
    if parts.scheme != "http" or not parts.hostname:
        raise WasmgenError(f"--upstream {shown} must be an http:// URL with a host", hint=hint)
    extra = [
        what
        for what, present in (
            ("credentials", parts.username is not None or parts.password is not None),
            ("a path", parts.path not in ("", "/")),
            ("a query", bool(parts.query) or url.endswith("?")),
            ("a fragment", bool(parts.fragment) or "#" in url),
        )
        if present
    ]
    if extra:
        raise WasmgenError(
            f"--upstream {shown} has {' and '.join(extra)}, which the proxy would not use: it "
            "forwards each request's own path and query, without credentials",
            hint=f"give only the scheme, host and port: http://{parts.netloc.rsplit('@', 1)[-1]}",
        )
    return parts.hostname, port


MAX_CONFIG_BYTES = 4 << 20  # a pluginConfig file for inspect --run


@app.command()
def build(
    spec: SpecArg,
    out_dir: OutOpt = None,
    toolchain: FlavorOpt = "auto",
    istio: IstioOpt = None,
    envoy: EnvoyOpt = None,
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Generate DIR and compile it into DIR/plugin.wasm, checked against the target Envoy.

    Example: wasmgen build examples/seed-lab.yaml -o build/seed-lab --istio 1.28
    """
    _, built = built_for(spec, out_dir, toolchain, istio, envoy, force, backend)
    r = built.result
    state = "cached" if r.cached else "built"
    out.print(
        f"{r.path}  {r.size} bytes  sha256:{r.sha256}  "
        f"({state}, {r.toolchain}, loads on {built.compat.target.name})",
        markup=False,
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
    from wasmgen.wasm.module import (
        inspect_module,
        module_problems,
        module_warnings,
        read_module,
        validate_module,
    )
    from wasmgen.wasm.report import format_inspect

    data = read_module(wasm)
    try:
        info = inspect_module(data)
        validate_module(data)
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
    from wasmgen.host import ProxyWasmHost
    from wasmgen.wasm.compat import parse_target  # only commands that build load it

    target = parse_target(istio, envoy)
    raw = config.encode()
    if config.startswith("@"):
        try:
            raw = read_input(Path(config[1:]), MAX_CONFIG_BYTES)
        except InputRefused as exc:
            raise WasmgenError(f"--config {printable(config)}: {exc.reason}") from None
    try:
        with ProxyWasmHost(data, plugin_config=raw, target=target) as host:
            started = host.start()
            logs = host.logs("critical") or host.logs("error")
    except HostError as exc:
        raise HostError(f"{wasm}: {exc.message.splitlines()[0]}", exc.hint) from None
    if not started:
        reason = logs[-1] if logs else "on_configure returned false"
        raise WasmgenError(f"{wasm}: the plugin refused to start on {target.name}: {reason}")
    out.print(f"starts on {target.name}: yes", markup=False)
