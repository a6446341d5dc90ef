"""Read a WebAssembly module's imports and exports without running it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wasmgen.errors import HostError
from wasmgen.fsutil import InputRefused, read_input
from wasmgen.records import record
from wasmgen.wasm.abi import SUPPORTED_ABI_VERSIONS, WASI_MODULE

_SECTION_IMPORT, _SECTION_EXPORT = 2, 7


@record
class ModuleInfo:
    """What a .wasm file declares, read without running it."""

    size: int
    sha256: str
    abi_version: str | None  # "0.2.1" from proxy_abi_version_0_2_1, None when absent
    callbacks: tuple[str, ...]  # exported proxy_on_* functions, sorted
    exports: tuple[str, ...]  # every export name, sorted
    imports: tuple[tuple[str, str], ...]  # (module, name), sorted and deduplicated
    is_reactor: bool  # exports _initialize
    has_start: bool  # exports _start (a WASI command)
    exports_memory: bool

    def imports_from(self, module: str) -> tuple[str, ...]:
        """Names imported from one module, e.g. wasi_snapshot_preview1."""
        return tuple(name for mod, name in self.imports if mod == module)


class _Reader:
    """A cursor over wasm bytes that raises HostError on truncation."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise HostError(f"truncated WebAssembly module: unexpected end at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise HostError(f"malformed WebAssembly module: bad LEB128 at offset {self.pos}")

    def name(self) -> str:
        size = self.uleb()
        if self.pos + size > self.end:
            raise HostError(f"truncated WebAssembly module: name at {self.pos} runs past end")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HostError(f"malformed WebAssembly module: bad UTF-8 name at {self.pos}") from None

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 0x01:
            self.uleb()
        if flags & 0x08:
            self.uleb()


def _skip_import_desc(r: _Reader, kind: int) -> None:
    if kind == 0:  # func: type index
        r.uleb()
    elif kind == 1:  # table: reftype + limits
        r.byte()
        r.limits()
    elif kind == 2:  # memory
        r.limits()
    elif kind == 3:  # global: valtype + mutability
        r.byte()
        r.byte()
    elif kind == 4:  # tag: attribute + type index
        r.byte()
        r.uleb()
    else:
        raise HostError(f"malformed WebAssembly module: unknown import kind {kind} at {r.pos}")


def inspect_module(data: bytes) -> ModuleInfo:
    """Read imports and exports of a core wasm module; HostError when it is not one."""
    if len(data) < 8 or data[:4] != b"\0asm":
        raise HostError(f"not a WebAssembly module: expected \\0asm magic, got {data[:4]!r}")
    version = int.from_bytes(data[4:8], "little")
    if version != 1:
        kind = " (a component, not a core module)" if version & 0xFFFF == 0x0D else ""
        raise HostError(f"unsupported WebAssembly binary version {version:#x}{kind}")
    imports: set[tuple[str, str]] = set()
    exports: set[str] = set()
    r = _Reader(data, 8)
    while r.pos < len(data):
        section_id, size = r.byte(), r.uleb()
        start, end = r.pos, r.pos + size
        if end > len(data):
            raise HostError(
                f"truncated WebAssembly module: section {section_id} at offset {start} needs "
                f"{size} bytes, file has {len(data) - start}"
            )
        body = _Reader(data, start, end)
        if section_id == _SECTION_IMPORT:
            for _ in range(body.uleb()):
                module, field = body.name(), body.name()
                _skip_import_desc(body, body.byte())
                imports.add((module, field))
        elif section_id == _SECTION_EXPORT:
            for _ in range(body.uleb()):
                name = body.name()
                body.byte()
                body.uleb()
                exports.add(name)
        r.pos = end
    abi = sorted(e for e in exports if e.startswith("proxy_abi_version_"))
    return ModuleInfo(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        abi_version=abi[-1].removeprefix("proxy_abi_version_").replace("_", ".") if abi else None,
        callbacks=tuple(sorted(e for e in exports if e.startswith("proxy_on_"))),
        exports=tuple(sorted(exports)),
        imports=tuple(sorted(imports)),
        is_reactor="_initialize" in exports,
        has_start="_start" in exports,
        exports_memory="memory" in exports,
    )


def module_problems(info: ModuleInfo) -> list[str]:
    """Reasons no Envoy release runs the module, whatever its WASI set."""
    out: list[str] = []
    if info.abi_version is None:
        out.append("no proxy_abi_version_* export: not a proxy-wasm module, Envoy refuses it")
    elif info.abi_version not in SUPPORTED_ABI_VERSIONS:
        out.append(f"unknown proxy-wasm ABI version {info.abi_version}: Envoy refuses it")
    if not info.exports_memory:
        out.append("no exported memory: a proxy-wasm host cannot exchange data with it")
    return out


def module_warnings(info: ModuleInfo) -> list[str]:
    """Risks that do not depend on the target."""
    if info.has_start and not info.is_reactor:
        # A WASI command: Envoy runs its _start at VM start. Upstream Go's and TinyGo >= 0.35's
        # end in proc_exit, which fails the VM; TinyGo 0.33's returns, and a module that does
        # not import proc_exit cannot call it (tests/test_tinygo_envoy.py starts both kinds).
        if (WASI_MODULE, "proc_exit") not in info.imports:
            return []
        return [
            "exports _start but no _initialize (a WASI command) and imports proc_exit: Envoy "
            "runs _start at VM start, and if it ends in proc_exit (upstream Go commands, TinyGo "
            ">= 0.35) the VM fails; build with go -buildmode=c-shared or TinyGo 0.32-0.34"
        ]
    if not info.is_reactor:
        return ["no _initialize export: a Go runtime in it is never initialized"]
    return []


MAX_MODULE_BYTES = 256 * 1024 * 1024  # what Istio's image fetcher accepts at most


def read_module(path: Path, limit: int = MAX_MODULE_BYTES) -> bytes:
    """A module file's bytes: only a regular file, and at most `limit` bytes (never a device,
    FIFO or socket, which could block or never end)."""
    try:
        return read_input(path, limit)
    except InputRefused as exc:
        hint = "give the path of a .wasm file"
        if "bytes, more than" in exc.reason:
            hint = "Istio refuses modules over 256 MiB; is this really a plugin?"
        raise HostError(exc.message, hint=hint) from None


def validate_module(data: bytes) -> None:
    """Refuse bytes a WebAssembly engine would refuse (what V8 in Envoy checks at load)."""
    import wasmtime  # only inspect and build validate modules: generate never loads the engine

    try:
        wasmtime.Module.validate(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise HostError(f"invalid WebAssembly module: {reason}") from None
