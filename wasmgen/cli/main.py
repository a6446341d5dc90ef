"""The console entry point: every error becomes one message and an exit code, here and only here."""

from __future__ import annotations

import copy
import gc
import importlib
import os
import sys
import traceback
from typing import NoReturn

import typer

from wasmgen.cli.app import DEBUG, STOP_SAID, app, err
from wasmgen.errors import ExitCode, WasmgenError, printable
from wasmgen.proc import Terminated, terminate_unwinds

_GLOBAL_FLAGS = frozenset({"--debug", "--trust-templates"})

# The module that registers each command on the app, in the order `--help` lists them.
# Running a command imports its module only (and what that module needs): generate never
# loads the modules, nor the stages, behind serve, ship, test or variants.
COMMANDS: dict[str, tuple[str, ...]] = {
    "wasmgen.cli.project": ("generate", "manifests", "init", "variant", "schema", "export"),
    "wasmgen.cli.run": ("build", "inspect"),
    "wasmgen.cli.serve": ("serve", "envoy"),
    "wasmgen.cli.ship": ("package", "push"),
    "wasmgen.cli.test": ("test",),
    "wasmgen.cli.variants": ("variants", "new-variant"),
}


def whole_app() -> typer.Typer:
    """The app with every command registered."""
    for module in COMMANDS:
        importlib.import_module(module)
    return app


def for_command(argv: list[str]) -> typer.Typer:
    """The app with only the command argv names (the one that runs), so typer builds one
    command's options instead of all of them, and only that command's module is imported;
    the whole app for anything else (--help, an unknown or missing command), whose messages
    must list every command."""
    i = 0
    while i < len(argv) and argv[i] in _GLOBAL_FLAGS:
        i += 1
    name = argv[i] if i < len(argv) else None
    module = next((m for m, names in COMMANDS.items() if name in names), None)
    if module is None:
        return whole_app()
    importlib.import_module(module)
    commands = [c for c in app.registered_commands if _name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:  # a stale COMMANDS (its test fails): the whole app still works
        return whole_app()
    slim = copy.copy(app)
    slim.registered_commands = commands
    slim.registered_groups = groups
    return slim


def _name(command: typer.models.CommandInfo) -> str | None:
    if command.name:
        return command.name
    callback = command.callback
    return callback.__name__.lower().replace("_", "-") if callback else None


def _exit(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.exit(code)


def _internal(exc: BaseException) -> NoReturn:
    if DEBUG["on"]:
        traceback.print_exception(exc)
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
        )
        err.print(
            f"internal error: {type(exc).__name__}: {exc}{where}\n"
            "  hint: this is a bug in wasmgen, not in your input; rerun with --debug for the "
            "traceback and report it",
            markup=False,
        )
    _exit(int(ExitCode.INTERNAL))


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI: 0 ok, 1 stale or failed tests, 2 user error, 3 internal error,
    130 Ctrl-C, 143 SIGTERM (children are stopped and temporary files removed first)."""
    terminate_unwinds()
    # pydantic looks for its plugins (observability hooks) through every installed package's
    # entry points when it builds the spec's validator: a fifth of a cold generate's own work,
    # for hooks wasmgen's models never use. PYDANTIC_DISABLE_PLUGINS= (empty) brings them back.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    for stream in (sys.stdout, sys.stderr):  # a file name may hold bytes no encoder takes
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(errors="backslashreplace")
    try:
        command = for_command(sys.argv[1:] if argv is None else argv)
        # main always ends the process: what is loaded now lives until then, so no collection
        # needs to walk it again, nor the last one at exit; the entry point (wasmgen.__main__)
        # kept the collector off until here.
        gc.freeze()
        gc.enable()
        code = command(args=argv, standalone_mode=False)
    except WasmgenError as exc:
        err.print(exc.render(), markup=False)
        _exit(int(exc.exit_code))
    except typer.Abort:
        err.print("interrupted")
        _exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        _exit(int(ExitCode.ERROR))
    except KeyboardInterrupt:
        err.print("interrupted")
        _exit(130)
    except Terminated:
        err.print("terminated")
        _exit(143)
    except OSError as exc:  # the disk or the network refused something wasmgen did not foresee
        where = f" {printable(str(exc.filename))}:" if exc.filename else ""
        err.print(
            f"error:{where} {exc.strerror or exc}\n"
            "  hint: check the path, its permissions and free space; --debug shows where",
            markup=False,
        )
        if DEBUG["on"]:
            traceback.print_exception(exc)
        _exit(int(ExitCode.ERROR))
    except Exception as exc:  # anything else is a bug in wasmgen, not the user's fault
        _internal(exc)
    if code == 130 and not STOP_SAID["on"]:  # typer returns Ctrl-C in a command as 130, unsaid
        err.print("interrupted")
    _exit(code if isinstance(code, int) else 0)
