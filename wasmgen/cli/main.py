"""The console entry point: every error becomes one message and an exit code, here and only here."""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

from wasmgen.cli import project, run, ship  # noqa: F401  (registers the commands)
from wasmgen.cli.app import DEBUG, app, err
from wasmgen.errors import ExitCode, WasmgenError


def _exit(code: int) -> NoReturn:
    sys.exit(code)


def main() -> None:
    """Run the CLI: 0 ok, 1 stale or failed tests, 2 user error, 3 internal error, 130 Ctrl-C."""
    try:
        app()
    except WasmgenError as exc:
        err.print(exc.render(), markup=False)
        _exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print("interrupted")
        _exit(130)
    except Exception as exc:  # anything else is a bug in wasmgen, not the user's fault
        if DEBUG["on"]:
            traceback.print_exc()
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            err.print(
                f"internal error: {type(exc).__name__}: {exc} "
                f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})\n"
                "  hint: this is a bug in wasmgen; rerun with --debug for the traceback "
                "and report it",
                markup=False,
            )
        _exit(int(ExitCode.INTERNAL))
