"""Scratch directories for Envoy runs and downloads (/tmp/wasmgen-envoy-*) that a killed wasmgen
does not leave behind for good: each holds an flock'ed owner file while in use, and every new
one first removes those whose owner is gone (the kernel drops the lock even on SIGKILL)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

PREFIX = "wasmgen-envoy-"
OWNER = ".owner"
_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def sweep() -> list[Path]:
    """Remove this user's scratch directories whose owner no longer runs; the ones removed."""
    gone: list[Path] = []
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            fd = os.open(folder / OWNER, _FLAGS)
        except OSError:  # no owner file: being created, or not one of these; leave it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its owner is running
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder)
    return gone


class Scratch:
    """A fresh scratch directory, owned (locked) until cleanup()."""

    def __init__(self) -> None:
        sweep()
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._fd: int | None = os.open(self.path / OWNER, _FLAGS | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def cleanup(self) -> None:
        """Remove the directory and give up its ownership."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
