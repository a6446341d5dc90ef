"""The floor of wasmgen's stack: the least a typer + pydantic + jinja2 CLI does to turn a YAML
file into a generated one, with none of wasmgen's code. `tests.benchmark_cold` runs it beside
`wasmgen generate` and the bare imports, so what wasmgen itself costs is measured apart from
what its stack costs.

    python tests/cold_floor.py generate examples/seed-lab.yaml -o OUT

It takes generate's parameters, with the same types (typer builds a pydantic adapter for each
typed one it parses), validates the spec's top level with one pydantic model, renders one
sandboxed template and writes one file.

It runs its start-up as wasmgen's entry point does (wasmgen.__main__): the cyclic garbage
collector off while the stack imports, then what is loaded frozen and the collector back on,
so that generate minus the floor stays what wasmgen's own code costs.
"""

from __future__ import annotations

import gc

gc.disable()
# ruff: noqa: E402  (the imports below come after the collector is off, as in wasmgen's entry)

import os
from pathlib import Path
from typing import Annotated

import jinja2.sandbox
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # as wasmgen's CLI does


class Plugin(BaseModel):
    """A spec's top level, loosely: what the lab spec holds."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(min_length=1)]
    response: list[dict[str, object]] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


app = typer.Typer(add_completion=False)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug")] = False) -> None:
    """The floor CLI."""


@app.command()
def generate(
    spec: Path,
    out_dir: Annotated[Path | None, typer.Option("-o", "--out")] = None,
    check: Annotated[bool, typer.Option("--check")] = False,
    force: Annotated[bool, typer.Option("--force")] = False,
    toolchain: Annotated[str, typer.Option("--toolchain")] = "auto",
    backend: Annotated[str | None, typer.Option("--backend")] = None,
) -> None:
    """Validate SPEC and write one rendered file into OUT."""
    with spec.open("rb") as stream:
        data = yaml.load(stream, Loader=yaml.CSafeLoader)
    plugin = Plugin.model_validate(data)
    template = jinja2.sandbox.SandboxedEnvironment().from_string(
        "// {{ name }}: {{ rules | length }} response rules\n"
        "{% for rule in rules %}// {{ rule | tojson }}\n{% endfor %}"
    )
    target = out_dir or Path("build") / plugin.name
    target.mkdir(parents=True, exist_ok=True)
    (target / "floor.go").write_text(
        template.render(name=plugin.name, rules=plugin.response), encoding="utf-8"
    )


if __name__ == "__main__":
    gc.freeze()
    gc.enable()
    app()
