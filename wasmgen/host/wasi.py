"""The wasi_snapshot_preview1 functions as proxy-wasm-cpp-host (Envoy) provides them, and guest memory access."""

from __future__ import annotations

import os
import struct
import time
from typing import Any

import wasmtime

from wasmgen.wasm.abi import LogLevel, to_text
from wasmgen.wasm.compat import Target

Args = tuple[int, ...]
OK = 0  # proxy-wasm status
EBADF, EFAULT, EINVAL, ENOENT, ENOSYS, ENOTSUP = 8, 21, 28, 44, 52, 58  # WASI errno
RANDOM_GET_MAX = 64 * 1024
U32 = 0xFFFFFFFF


class _Fault(Exception):
    """A guest pointer is out of bounds."""


class GuestMemory:
    """Reads and writes the plugin's linear memory; out-of-bounds access raises _Fault."""

    _memory: wasmtime.Memory
    _alloc: Any  # malloc (or proxy_on_memory_allocate), as Envoy picks

    def _read(self, c: wasmtime.Caller, ptr: int, size: int) -> bytes:
        ptr, size = ptr & U32, size & U32
        if ptr + size > self._memory.data_len(c):
            raise _Fault
        return bytes(self._memory.read(c, ptr, ptr + size)) if size else b""

    def _text(self, c: wasmtime.Caller, ptr: int, size: int) -> str:
        return to_text(self._read(c, ptr, size))

    def _write(self, c: wasmtime.Caller, ptr: int, data: bytes) -> None:
        if (ptr & U32) + len(data) > self._memory.data_len(c):
            raise _Fault
        if data:
            self._memory.write(c, data, ptr & U32)

    def _out(self, c: wasmtime.Caller, data: bytes, ptr_ptr: int, size_ptr: int) -> int:
        """Allocate in the guest, copy data in, write pointer and size (cpp-host)."""
        ptr = int(self._alloc(c, len(data))) & U32 if data else 0
        if data and not ptr:
            raise _Fault
        self._write(c, ptr, data)
        self._write(c, ptr_ptr, struct.pack("<I", ptr))
        self._write(c, size_ptr, struct.pack("<I", len(data)))
        return OK


class WasiImports(GuestMemory):
    """The WASI imports with Envoy's stub behaviour for the target's WASI set."""

    env: dict[str, str]
    events: list[str]
    target: Target
    _phase: str
    _poll_failed: bool
    _stdio: dict[int, str]

    def _log(self, level: LogLevel, message: str) -> None:
        raise NotImplementedError

    def _imp_fd_write(self, c: wasmtime.Caller, a: Args) -> int:
        if a[0] not in (1, 2):
            return EBADF
        iovs = [struct.unpack("<II", self._read(c, a[1] + 8 * i, 8)) for i in range(a[2] & U32)]
        data = b"".join(self._read(c, ptr, size) for ptr, size in iovs)
        # Envoy logs each write (fd 1 at info, fd 2 at error); Go prints a panic in many
        # small writes, so whole lines are logged here instead.
        *lines, self._stdio[a[0]] = (self._stdio[a[0]] + data.decode(errors="replace")).split("\n")
        for line in lines:
            self._log(LogLevel.INFO if a[0] == 1 else LogLevel.ERROR, line)
        self._write(c, a[3], struct.pack("<I", len(data)))
        return 0

    def _imp_fd_fdstat_get(self, c: wasmtime.Caller, a: Args) -> int:
        if a[0] not in (1, 2):
            return EBADF
        self._write(c, a[1], struct.pack("<QQQ", 0, 64, 0))  # rights_base = FD_WRITE
        return 0

    def _imp_environ_sizes_get(self, c: wasmtime.Caller, a: Args) -> int:
        env = [f"{k}={v}".encode() + b"\0" for k, v in self.env.items()]
        self._write(c, a[0], struct.pack("<I", len(env)))
        self._write(c, a[1], struct.pack("<I", sum(map(len, env))))
        return 0

    def _imp_environ_get(self, c: wasmtime.Caller, a: Args) -> int:
        buf = a[1] & U32
        for i, (key, value) in enumerate(self.env.items()):
            item = f"{key}={value}".encode() + b"\0"
            self._write(c, a[0] + 4 * i, struct.pack("<I", buf))
            self._write(c, buf, item)
            buf += len(item)
        return 0

    def _imp_args_sizes_get(self, c: wasmtime.Caller, a: Args) -> int:
        self._write(c, a[0], struct.pack("<I", 0))
        self._write(c, a[1], struct.pack("<I", 0))
        return 0

    clock_ns: int | None = None  # a fixed wall clock; None: the real one

    def wall_clock_ns(self) -> int:
        """The wall clock the plugin reads (WASI realtime, proxy_get_current_time_nanoseconds)."""
        return time.time_ns() if self.clock_ns is None else self.clock_ns

    def _imp_clock_time_get(self, c: wasmtime.Caller, a: Args) -> int:
        if a[0] not in (0, 1):
            return ENOTSUP
        self._write(
            c, a[2], struct.pack("<Q", self.wall_clock_ns() if a[0] == 0 else time.monotonic_ns())
        )
        return 0

    def _imp_random_get(self, c: wasmtime.Caller, a: Args) -> int:
        if a[1] & U32 > RANDOM_GET_MAX:
            return EINVAL
        self._write(c, a[0], os.urandom(a[1] & U32))
        return 0

    def _imp_proc_exit(self, c: wasmtime.Caller, a: Args) -> None:
        self.events.append(f"wasi_unstable proc_exit({a[0]}) in {self._phase}: returned")

    def _imp_poll_oneoff(self, c: wasmtime.Caller, a: Args) -> int:
        if self.target.wasi_set != "S45":
            self._poll_failed = True
            return ENOSYS  # the S18 stub: nevents is left unwritten
        self._write(c, a[3], struct.pack("<I", 0))
        return 0
