"""Child processes that never outlive wasmgen: own process group, killed as a group, and
(on Linux) a death signal so they die even when wasmgen itself is killed with SIGKILL."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(libc: Any) -> Callable[[], None]:
    """For the child, before exec: ask the kernel for SIGKILL when the parent dies."""

    def in_child() -> None:
        if libc is not None:
            with contextlib.suppress(OSError, AttributeError):
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return in_child


@functools.cache
def _libc() -> Any:
    """The C library, loaded in the parent (importing in a forked child can deadlock); ctypes
    loads only when wasmgen first starts a child, so `generate` never pays for it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def group_kwargs() -> dict[str, Any]:
    """Popen arguments: a new session (its own process group) that dies with us."""
    return {"start_new_session": True, "preexec_fn": _die_with_parent(_libc())}


def kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    """Signal the child's whole process group (go build's compilers, Envoy), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C so every cleanup (finally, context managers) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def terminate_unwinds() -> None:
    """Make SIGTERM raise Terminated in the main thread (the CLI installs this once)."""
    signal.signal(signal.SIGTERM, _raise_terminated)
