"""One writer per output directory: every command that writes one holds an exclusive lock on it.

The lock is flock(2) on DIR/.wasmgen-lock, which names its holder (pid, command, since when);
the kernel releases it when the holder dies, even by SIGKILL, so a lock is never stale. A
second writer waits up to WASMGEN_LOCK_WAIT seconds (default 300), saying whom it waits for,
then gives up naming the holder. Within one process the lock is reentrant, so the pipeline's
steps and the command around them share it. Taking it also removes what an interrupted run
left behind: temporary files and build directories of wasmgen's own naming.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wasmgen.errors import WasmgenError
from wasmgen.records import record

LOCK_FILE = ".wasmgen-lock"
WAIT_ENV = "WASMGEN_LOCK_WAIT"
DEFAULT_WAIT = 300.0
_POLL = 0.1
# Left by a killed run: write_atomic's `.NAME.XXXXXXXX.tmp` files and the compiler's
# `.NAME.XXXXXXXX` directories (holding at most NAME).
_TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_TEMP_DIR = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}$")


@record(frozen=False)
class _Held:
    fd: int
    depth: int
    made: list[Path]  # directories created to hold the lock, deepest first


_HELD: dict[Path, _Held] = {}
_THREADS: dict[Path, threading.RLock] = {}
_GUARD = threading.Lock()


def holder(out_dir: Path) -> str:
    """Who holds (or last held) the lock of out_dir, as the lock file records it."""
    try:
        data = json.loads((out_dir / LOCK_FILE).read_text(errors="replace") or "{}")
        return f"pid {int(data['pid'])} ({data['command']}, since {data['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _wait_seconds() -> float:
    raw = os.environ.get(WAIT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_WAIT
    except ValueError:
        raise WasmgenError(
            f"{WAIT_ENV}={raw!r} is not a number of seconds", hint=f"e.g. {WAIT_ENV}=60"
        ) from None


def check_location(out_dir: Path) -> None:
    """out_dir must be a directory (or creatable as one)."""
    for parent in (out_dir, *out_dir.parents):
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out_dir else f"is inside {parent}, which is a file"
                raise WasmgenError(f"output directory {out_dir} {what}", hint="choose another -o")
            return


def _make_dirs(out_dir: Path) -> list[Path]:
    """Create out_dir and its missing parents; the ones created, deepest first."""
    missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            raise WasmgenError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    return missing


def _open_locked(out_dir: Path, wait: float) -> tuple[int, list[Path]]:
    """An fd of out_dir's lock file, flock'ed exclusively, and the directories created for it."""
    deadline = time.monotonic() + wait
    said = False
    made: list[Path] = []
    while True:
        check_location(out_dir)
        made += [p for p in _make_dirs(out_dir) if p not in made]
        path = out_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the holder removed the directory it had made: start over
            continue
        except OSError as exc:
            raise WasmgenError(
                f"cannot lock {out_dir}: {path}: {exc.strerror or exc}",
                hint="wasmgen keeps its lock there while it writes; check the permissions",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise WasmgenError(
                    f"{out_dir} is locked by {holder(out_dir)}; gave up after {wait:.0f} s",
                    hint=f"wait for it to finish or use another -o ({WAIT_ENV}=SECONDS waits "
                    "longer)",
                ) from None
            if not said:
                print(f"waiting for {out_dir}: locked by {holder(out_dir)}", file=sys.stderr)
                said = True
            time.sleep(_POLL)
            continue
        try:  # the holder may have unlinked the file just before we locked it: start over
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd, made
        os.close(fd)


def _record(fd: int) -> None:
    """Write this process's name into the lock file, for a waiting writer to show."""
    argv = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    command = "".join(c if c.isprintable() else "?" for c in argv)[:200] or "python"
    since = time.strftime("%H:%M:%S")
    body = json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, body + b"\n", 0)


def leftovers(out_dir: Path) -> list[str]:
    """Temporary files and build directories an interrupted wasmgen run left in out_dir."""
    found: list[str] = []
    if not out_dir.is_dir():
        return found
    for root, dirs, files in os.walk(out_dir):
        base = Path(root)
        for name in files:
            if _TEMP_FILE.match(name):
                found.append((base / name).relative_to(out_dir).as_posix())
        for name in list(dirs):
            match = _TEMP_DIR.match(name)
            folder = base / name
            if match and not folder.is_symlink():
                inner = {p.name for p in folder.iterdir()}
                if inner <= {match["name"]}:
                    found.append(folder.relative_to(out_dir).as_posix())
                    dirs.remove(name)
    return sorted(found)


def sweep(out_dir: Path) -> list[str]:
    """Remove leftovers(out_dir); call only while holding its lock."""
    gone = leftovers(out_dir)
    for rel in gone:
        path = out_dir / rel
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return gone


def _release(out_dir: Path, held: _Held) -> None:
    path = out_dir / LOCK_FILE
    try:  # unlink while still locked: a waiter that opened this inode sees it and starts over
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(held.fd).st_ino:
            path.unlink()
    except OSError:
        pass
    os.close(held.fd)
    for folder in held.made:  # directories made only to hold the lock, now empty again
        try:
            folder.rmdir()
        except OSError:
            break


@contextmanager
def locked(out_dir: Path, wait: float | None = None) -> Iterator[None]:
    """Hold out_dir's exclusive write lock (creating out_dir when needed) for the block."""
    key = Path(os.path.abspath(out_dir))
    with _GUARD:
        thread_lock = _THREADS.setdefault(key, threading.RLock())
    seconds = _wait_seconds() if wait is None else wait
    got = thread_lock.acquire(timeout=seconds) if seconds > 0 else thread_lock.acquire(False)
    if not got:
        raise WasmgenError(f"{out_dir} is locked by another thread of this process")
    try:
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
        else:
            fd, made = _open_locked(key, seconds)
            held = _HELD[key] = _Held(fd, 1, made)
            try:
                _record(fd)
                sweep(key)
            except BaseException:
                del _HELD[key]
                _release(key, held)
                raise
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                del _HELD[key]
                _release(key, held)
    finally:
        thread_lock.release()


__all__ = ["LOCK_FILE", "WAIT_ENV", "check_location", "holder", "leftovers", "locked", "sweep"]
