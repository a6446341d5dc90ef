"""The typer application, the consoles, and the option types the commands share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer

from wasmgen._version import __version__
from wasmgen.artifacts import Changes
from wasmgen.errors import WasmgenError
from wasmgen.plan import BACKENDS, DEFAULT_BACKEND, Backend, Flavor
from wasmgen.spec.models import Spec

if TYPE_CHECKING:
    from rich.console import Console

    from wasmgen.wasm.compat import Target

app = typer.Typer(
    help="Generate, build, test and ship proxy-wasm header plugins for Envoy and Istio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Console:
    """stdout or stderr: plain text goes straight out; rich (~40 ms to import) loads only for
    markup, which only build and serve print."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._rich: Console | None = None

    def print(self, *objects: Any, markup: bool | None = None, **options: Any) -> None:
        """Like rich's Console.print; markup=False text is written as it is."""
        if markup is False and not options and all(isinstance(o, str) for o in objects):
            stream = sys.stderr if self._stderr else sys.stdout
            stream.write(" ".join(objects) + "\n")
            return
        self.rich.print(*objects, markup=markup, **options)

    @property
    def rich(self) -> Console:
        """The rich console behind this one."""
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._rich

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


# Typed as rich consoles: the pipeline takes either.
out = cast("Console", _Console(stderr=False))
err = cast("Console", _Console(stderr=True))
DEBUG = {"on": False}  # --debug: show tracebacks of internal errors
TRUST = {"templates": False}  # --trust-templates: a spec's templates: may name any folder
# A command that reported its own stop on Ctrl-C (serve's "stopped"); main() says
# "interrupted" for every other one (typer turns Ctrl-C in a command into a silent code 130).
STOP_SAID = {"on": False}

OciFormat = Literal["oci", "docker", "wasm-artifact"]
SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--out",
        help="Project directory to write (default: build/<plugin name> in the current directory).",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite files wasmgen did not write.")]
FlavorOpt = Annotated[
    str,
    typer.Option(
        "--toolchain",
        envvar="WASMGEN_TOOLCHAIN",
        help="tinygo (TinyGo 0.32-0.34: small modules, fast start, any Istio) or go (upstream "
        "Go >= 1.24, Istio >= 1.25). Default (auto): TinyGo when one is on PATH or in "
        "$WASMGEN_TINYGO, else Go.",
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="compiled (Go written for this spec against the proxy-wasm ABI; rules fixed at "
        "build time, values in pluginConfig) or dynamic (a rule interpreter on the Go SDK; "
        "rules in pluginConfig, changeable without a rebuild). Default: "
        f"{DEFAULT_BACKEND}.",
    ),
]
IstioOpt = Annotated[
    str | None, typer.Option("--istio", help="Target Istio version (default: 1.28).")
]
EnvoyOpt = Annotated[str | None, typer.Option("--envoy", help="Target Envoy version instead.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="oci (default), docker (v2 manifest) or wasm-artifact."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"wasmgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an internal error.")
    ] = False,
    trust_templates: Annotated[
        bool,
        typer.Option(
            "--trust-templates",
            help="Let a spec's templates: name any folder (absolute, or outside the spec's own).",
        ),
    ] = False,
) -> None:
    """Generate, build, test and ship proxy-wasm header plugins for Envoy and Istio."""
    DEBUG["on"] = debug
    TRUST["templates"] = trust_templates


def load(spec: Path) -> Spec:
    """The spec at spec, its templates: confined to its folder unless --trust-templates."""
    from wasmgen.spec import load_spec

    return load_spec(spec, trust_templates=TRUST["templates"])


def flavor_of(value: str, target: Target | None = None, backend: str | None = None) -> Flavor:
    """The toolchain named by --toolchain; "auto" picks one for the target (TinyGo when found).

    Without a target (generate, manifests) the compiled backend's files are the same for both
    toolchains, so "auto" looks for TinyGo only for the dynamic backend."""
    if value == "go":
        return "go"
    if value == "tinygo":
        return "tinygo"
    if value == "auto":
        if target is None and backend != "dynamic":
            return "go"
        from wasmgen.build.toolchain import auto_toolchain
        from wasmgen.wasm.compat import parse_target

        chosen = auto_toolchain((target or parse_target(None, None)).envoy[1])
        return "tinygo" if chosen == "tinygo" else "go"
    raise WasmgenError(f"unknown toolchain {value!r}", hint="use --toolchain go, tinygo or auto")


def backend_of(value: str | None) -> Backend | None:
    """The backend named by --backend (None: the flavour's default)."""
    if value is None:
        return None
    for backend in BACKENDS:
        if value == backend:
            return backend
    raise WasmgenError(f"unknown backend {value!r}", hint="use --backend compiled or dynamic")


def format_of(value: str) -> OciFormat:
    """The image format named by --format."""
    from wasmgen.ship.oci import FORMATS

    if value not in FORMATS:
        raise WasmgenError(f"unknown image format {value!r}", hint="use " + ", ".join(FORMATS))
    return value


def out_dir_for(spec: Spec, out_dir: Path | None) -> Path:
    """-o, or build/<plugin name> under the current directory."""
    return out_dir if out_dir is not None else Path("build") / spec.name


def summary(changes: Changes, out_dir: Path) -> None:
    """One line saying what generate did, then any warnings."""
    for warning in changes.warnings:
        err.print(f"warning: {warning.render()}", markup=False)
    parts = [
        f"{len(changes.create)} created",
        f"{len(changes.update)} updated",
        f"{len(changes.delete)} removed",
        f"{len(changes.unchanged)} unchanged",
    ]
    out.print(f"{out_dir}: " + ", ".join(parts), markup=False)
    if changes.backups:
        out.print("kept copies of hand-edited files: " + ", ".join(changes.backups), markup=False)
