"""Writing files so that a reader never sees half of one, and reading a user's files only when
they are regular files of a bounded size."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from wasmgen.errors import WasmgenError


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, then rename over path; no temp is left behind."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class InputRefused(WasmgenError):
    """A file given by the user that wasmgen will not read: `reason` says why, without the path."""

    def __init__(self, path: Path, reason: str, hint: str | None = None) -> None:
        super().__init__(f"{path}: {reason}", hint)
        self.reason = reason


def read_input(path: Path, limit: int, hint: str | None = None) -> bytes:
    """A user's file, only when it is a regular file (after symlinks) of at most `limit` bytes:
    a device (/dev/zero), FIFO or socket could block forever or never end."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputRefused(path, "no such file", hint) from None
    except OSError as exc:
        raise InputRefused(path, f"cannot read: {exc.strerror or exc}", hint) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(path, f"is {_kind(info.st_mode)}, not a regular file", hint)
        if info.st_size > limit:
            raise InputRefused(
                path, f"is {info.st_size} bytes, more than the {limit} allowed", hint
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputRefused(path, f"cannot read: {exc.strerror or exc}", hint) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputRefused(path, f"grew past {limit} bytes while being read", hint)
    return data


def cache_home() -> Path:
    """wasmgen's cache: $WASMGEN_CACHE_DIR, else $XDG_CACHE_HOME/wasmgen or ~/.cache/wasmgen."""
    explicit = os.environ.get("WASMGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wasmgen"
