"""Commands about variants: list the installed ones, start a new one."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer

from wasmgen.cli.app import app, err, out
from wasmgen.errors import ExitCode, WasmgenError
from wasmgen.variants import Loaded, VariantInfo, installed
from wasmgen.variants.scaffold import scaffold

COLUMNS = ("NAME", "VERSION", "PACKAGE", "DESCRIPTION")


def _row(info: VariantInfo) -> tuple[str, str, str, str]:
    about = f"BROKEN: {info.error}" if info.error else info.description
    return info.name, info.version, info.package, about


@app.command("variants")
def variants_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead.")] = False,
) -> None:
    """List the installed plugin variants: name, version, description and the package that
    provides it. A spec picks one with `variant: NAME` (default: headers). A variant that
    cannot load is listed as BROKEN with the reason, and the command exits 2.

    Example: wasmgen variants
    """
    infos = [v.info if isinstance(v, Loaded) else v for v in installed()]
    if as_json:
        keys = ("name", "version", "description", "package", "error")
        out.print(json.dumps([{k: getattr(i, k) for k in keys} for i in infos], indent=2))
    else:
        rows = [COLUMNS, *(_row(i) for i in infos)]
        widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.print("  ".join([*cells, row[-1]]).rstrip(), markup=False)
    broken = [i for i in infos if i.error]
    for info in broken:
        err.print(f"error: {info.label} is broken: {info.error}", markup=False)
    if broken:
        raise typer.Exit(ExitCode.ERROR)


@app.command("new-variant")
def new_variant(
    name: Annotated[str, typer.Argument(help="The variant's name, as specs will write it.")],
    directory: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Where to write the package (default: wasmgen-NAME)."),
    ] = None,
) -> None:
    """Write a pip-installable package for a new variant: its options model, the rules its
    options stand for, a template override, an example spec and its tests, all working as
    written. `pip install DIR` makes it appear in `wasmgen variants`.

    Example: wasmgen new-variant stamp -o wasmgen-stamp
    """
    try:
        files = scaffold(name)
    except ValueError as exc:
        raise WasmgenError(f"NAME: {exc}") from None
    target = directory or Path(f"wasmgen-{name.replace('_', '-')}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise WasmgenError(f"{target} already exists", hint="choose a new directory")
    try:
        for rel, text in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise WasmgenError(f"cannot write {target}: {exc.strerror or exc}") from None
    # pip reads a bare name as a project on PyPI: a local directory needs a path (./NAME)
    local = str(target) if target.is_absolute() or str(target).startswith(".") else f"./{target}"
    out.print(
        f"wrote {target}; install it with: pip install {shlex.quote(local)}  "
        "(then: wasmgen variants)",
        markup=False,
    )
