"""One exception family for wasmgen; the CLI turns these into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, decided in one place (the CLI)."""

    OK = 0
    DIFF = 1  # --check found stale files, or a test case failed
    ERROR = 2  # bad input, failed build, unreachable registry, ...
    INTERNAL = 3  # a bug in wasmgen: one line, and the traceback with --debug


class WasmgenError(Exception):
    """A problem the user can act on: printed without a traceback, exit code 2."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text the CLI prints for this error."""
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located in its source file when it came from one."""

    loc: str  # dotted key path, e.g. "spec.response[0].set"
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def render(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        key = f" {self.loc}:" if self.loc else ""
        return f"{where}:{key} {self.message}"


class SpecError(WasmgenError):
    """The spec is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in spec")

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class BuildError(WasmgenError):
    """The Go toolchain or a post-build check refused the plugin."""


class HostError(WasmgenError):
    """The embedded proxy-wasm host could not load or run a module."""


class RegistryError(WasmgenError):
    """Pushing to or reading from an OCI registry failed."""
