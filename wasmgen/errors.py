"""One exception family for wasmgen; the CLI turns these into messages and exit codes."""

from __future__ import annotations

from enum import IntEnum

from wasmgen.records import record


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


def printable(text: str) -> str:
    """text with control characters and undecodable bytes (from a file name) escaped, so a
    name can neither drive the terminal nor break a line or an encoder: \\r, \\x1b, \\xff."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF:
            out.append(repr(char)[1:-1] if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


@record
class Problem:
    """One thing wrong with a spec, located in its source file when it came from one."""

    loc: str  # dotted key path, e.g. "spec.response[0].set"
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def render(self) -> str:
        where = printable(self.file or "<spec>")
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        key = f" {printable(self.loc)}:" if self.loc else ""
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
