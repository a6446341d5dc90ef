"""The proxy-wasm module format: static inspection, ABI encodings, and Envoy/Istio compatibility."""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from wasmgen.errors import HostError, WasmgenError

WASI_MODULE = "wasi_snapshot_preview1"
ENV_MODULE = "env"
GO_POLL_ONEOFF_ISSUE = "golang/go#78513"

# proxy-wasm-cpp-host's FOR_ALL_WASI_FUNCTIONS, by the commit that changed it (see WASI.md).


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


S15 = _names(
    "fd_write fd_read fd_seek fd_close fd_fdstat_get environ_get environ_sizes_get args_get "
    "args_sizes_get clock_time_get random_get proc_exit path_open fd_prestat_get "
    "fd_prestat_dir_name"
)
S18 = S15 | _names("fd_fdstat_set_flags sched_yield poll_oneoff")
S45 = S18 | _names(
    "fd_fdstat_set_rights clock_res_get fd_advise fd_allocate fd_datasync fd_filestat_set_size "
    "fd_filestat_set_times fd_pread fd_pwrite fd_readdir fd_renumber fd_sync fd_tell "
    "path_create_directory path_filestat_set_times path_link path_readlink "
    "path_remove_directory path_rename path_symlink path_unlink_file sock_accept sock_recv "
    "sock_send sock_shutdown path_filestat_get fd_filestat_get"
)
WASI_SETS: dict[str, frozenset[str]] = {"S15": S15, "S18": S18, "S45": S45}

# proxy-wasm-cpp-host's FOR_ALL_HOST_FUNCTIONS (module "env"), ABI 0.1.0 and 0.2.x together.
ENVOY_ENV_FUNCTIONS = _names(
    "proxy_log proxy_get_log_level proxy_set_property proxy_get_property proxy_get_status "
    "proxy_get_configuration proxy_continue_request proxy_continue_response "
    "proxy_continue_stream proxy_close_stream proxy_send_local_response "
    "proxy_clear_route_cache proxy_get_shared_data proxy_set_shared_data "
    "proxy_register_shared_queue proxy_resolve_shared_queue proxy_dequeue_shared_queue "
    "proxy_enqueue_shared_queue proxy_get_header_map_value proxy_add_header_map_value "
    "proxy_replace_header_map_value proxy_remove_header_map_value proxy_get_header_map_pairs "
    "proxy_set_header_map_pairs proxy_get_header_map_size proxy_get_buffer_status "
    "proxy_get_buffer_bytes proxy_set_buffer_bytes proxy_http_call proxy_grpc_call "
    "proxy_grpc_stream proxy_grpc_close proxy_grpc_cancel proxy_grpc_send "
    "proxy_set_tick_period_milliseconds proxy_get_current_time_nanoseconds "
    "proxy_define_metric proxy_increment_metric proxy_record_metric proxy_get_metric "
    "proxy_set_effective_context proxy_done proxy_call_foreign_function "
    "emscripten_notify_memory_growth pthread_equal"
)
SUPPORTED_ABI_VERSIONS = ("0.1.0", "0.2.0", "0.2.1")

# Istio 1.N ships Envoy 1.(N+8). Newest Istio whose Envoy pin is confirmed to have S18;
# wasmgen's default target when the user names none.
DEFAULT_ISTIO = "1.28"
ISTIO_TO_ENVOY_OFFSET = 8
LAST_S15_ENVOY = 32  # confirmed: Envoy 1.32 / Istio 1.24
LAST_S18_ENVOY = 38  # confirmed: Envoy 1.38 / Istio 1.30; 1.40-dev has S45
INFERRED_ENVOY_MINORS = frozenset({34, 35, 36, 37, 39})  # WASI.md: pins not read off Envoy

Header = tuple[str, str]
PropertyValue = bytes | str | int | bool | Sequence[Header]
_SECTION_IMPORT, _SECTION_EXPORT = 2, 7
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")


class Action(IntEnum):
    """What a header callback asks of the stream."""

    CONTINUE = 0
    PAUSE = 1


class LogLevel(IntEnum):
    """proxy_log levels."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


def serialize_pairs(pairs: Sequence[Header]) -> bytes:
    """proxy-wasm pairs: u32 count, (u32 key_len, u32 value_len)*, each key\\0 value\\0."""
    items = [(k.encode(), v.encode()) for k, v in pairs]
    sizes = b"".join(struct.pack("<II", len(k), len(v)) for k, v in items)
    return struct.pack("<I", len(items)) + sizes + b"".join(k + b"\0" + v + b"\0" for k, v in items)


def deserialize_pairs(data: bytes) -> list[Header]:
    """Inverse of serialize_pairs; malformed input gives [] like cpp-host's toPairs."""
    count = struct.unpack_from("<I", data)[0] if len(data) >= 4 else 0
    pos, out = 4 + 8 * count, []
    for i in range(count):
        klen, vlen = struct.unpack_from("<II", data, 4 + 8 * i) if pos <= len(data) else (0, 0)
        if pos + klen + vlen + 2 > len(data):
            return []
        key, value = data[pos : pos + klen], data[pos + klen + 1 : pos + klen + 1 + vlen]
        out.append((key.decode(errors="replace"), value.decode(errors="replace")))
        pos += klen + vlen + 2
    return out


def encode_property(value: PropertyValue) -> bytes:
    """Envoy's encoding: raw strings, int64 LE, one-byte bools, pair-encoded maps."""
    if isinstance(value, bytes | str):
        return value.encode() if isinstance(value, str) else value
    if isinstance(value, bool):
        return b"\1" if value else b"\0"
    if isinstance(value, int):
        return struct.pack("<q", value)
    return serialize_pairs(list(value))


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Target:
    """An Envoy release (optionally via the Istio that ships it) and its WASI host set."""

    name: str  # "Istio 1.28 (Envoy 1.36)"
    envoy: tuple[int, int]
    istio: tuple[int, int] | None
    wasi_set: str  # "S15" | "S18" | "S45"
    wasi_functions: frozenset[str] = field(repr=False)
    inferred: bool  # the WASI set of this Envoy is inferred, not read off its lock file


@dataclass(frozen=True)
class CompatReport:
    """Whether one module loads on one target, with every missing import and the risks."""

    target: Target
    missing: tuple[tuple[str, str], ...]  # imports the target does not provide: load fails
    problems: tuple[str, ...]  # module defects that make every Envoy refuse it
    warnings: tuple[str, ...]  # loads, but may fail at run time

    @property
    def loadable(self) -> bool:
        """True when the target can load the module."""
        return not self.missing and not self.problems

    def missing_names(self) -> str:
        """The missing imports as "module.name, ..." for one-line messages."""
        return ", ".join(f"{mod}.{name}" for mod, name in self.missing)


@dataclass(frozen=True)
class VersionRange:
    """A range of Envoy (and Istio) releases sharing one WASI set."""

    wasi_set: str
    envoy_min: int | None  # minor versions of 1.x; None = open end
    envoy_max: int | None
    loadable: bool
    missing: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]  # runtime risks specific to this range

    def describe(self) -> str:
        """E.g. "Istio 1.25-1.30 (Envoy 1.33-1.38)"."""
        return f"Istio {_span(self.envoy_min, self.envoy_max, -ISTIO_TO_ENVOY_OFFSET)} " + (
            f"(Envoy {_span(self.envoy_min, self.envoy_max, 0)})"
        )


def _span(lo: int | None, hi: int | None, shift: int) -> str:
    if lo is None and hi is not None:
        return f"<= 1.{hi + shift}"
    if hi is None and lo is not None:
        return f">= 1.{lo + shift}"
    return f"1.{(lo or 0) + shift}-1.{(hi or 0) + shift}"


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


def wasi_set_for_envoy(minor: int) -> str:
    """The WASI set name Envoy 1.<minor> provides."""
    if minor <= LAST_S15_ENVOY:
        return "S15"
    return "S18" if minor <= LAST_S18_ENVOY else "S45"


def _parse_version(text: str, product: str) -> tuple[int, int]:
    match = _VERSION_RE.match(text.strip())
    if not match or int(match.group(1)) != 1:
        example = DEFAULT_ISTIO if product == "Istio" else f"1.{_envoy_minor(DEFAULT_ISTIO)}"
        raise WasmgenError(
            f"invalid {product} version {text!r}",
            hint=f"give MAJOR.MINOR (patch optional), e.g. {example}",
        )
    return int(match.group(1)), int(match.group(2))


def _envoy_minor(istio: str) -> int:
    return int(istio.split(".")[1]) + ISTIO_TO_ENVOY_OFFSET


def parse_target(istio: str | None, envoy: str | None) -> Target:
    """Resolve --istio/--envoy version strings into a Target (default: Istio DEFAULT_ISTIO)."""
    if istio is None and envoy is None:
        istio = DEFAULT_ISTIO
    istio_v = _parse_version(istio, "Istio") if istio is not None else None
    envoy_v = _parse_version(envoy, "Envoy") if envoy is not None else None
    if istio_v is not None:
        shipped = (1, istio_v[1] + ISTIO_TO_ENVOY_OFFSET)
        if envoy_v is not None and envoy_v != shipped:
            raise WasmgenError(
                f"Istio {istio_v[0]}.{istio_v[1]} ships Envoy 1.{shipped[1]}, "
                f"not {envoy_v[0]}.{envoy_v[1]}",
                hint="give only one of the two versions",
            )
        envoy_v = shipped
        name = f"Istio 1.{istio_v[1]} (Envoy 1.{shipped[1]})"
    else:
        assert envoy_v is not None
        name = f"Envoy 1.{envoy_v[1]}"
    wasi_set = wasi_set_for_envoy(envoy_v[1])
    return Target(
        name=name,
        envoy=envoy_v,
        istio=istio_v,
        wasi_set=wasi_set,
        wasi_functions=WASI_SETS[wasi_set],
        inferred=envoy_v[1] in INFERRED_ENVOY_MINORS,
    )


def _missing(info: ModuleInfo, wasi: frozenset[str]) -> tuple[tuple[str, str], ...]:
    provided = {WASI_MODULE: wasi, ENV_MODULE: ENVOY_ENV_FUNCTIONS}
    return tuple(imp for imp in info.imports if imp[1] not in provided.get(imp[0], ()))


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
        return [
            "exports _start but no _initialize (a WASI command): Envoy runs _start at VM start "
            "and a Go command then calls proc_exit, which fails it; build with -buildmode=c-shared"
        ]
    if not info.is_reactor:
        return ["no _initialize export: a Go runtime in it is never initialized"]
    return []


def target_warnings(info: ModuleInfo, wasi_set: str) -> list[str]:
    """Runtime risks of this module on hosts with the given WASI set."""
    if wasi_set == "S18" and (WASI_MODULE, "poll_oneoff") in info.imports:
        return [
            "imports poll_oneoff, which these Envoy releases stub with ENOSYS: the Go runtime "
            "aborts (fatal error: poll_oneoff failed errno=52) where it needs to sleep or park, "
            f"e.g. time.Sleep with goroutines, and some GC paths ({GO_POLL_ONEOFF_ISSUE})"
        ]
    return []


def check_compat(info: ModuleInfo, target: Target) -> CompatReport:
    """List every import the target lacks (not just the first) and the known runtime risks."""
    warnings = module_warnings(info) + target_warnings(info, target.wasi_set)
    return CompatReport(
        target=target,
        missing=_missing(info, target.wasi_functions),
        problems=tuple(module_problems(info)),
        warnings=tuple(warnings),
    )


def loadable_on(info: ModuleInfo) -> list[VersionRange]:
    """Each Envoy/Istio version range with whether the module loads there, oldest first."""
    bounds: list[tuple[str, int | None, int | None]] = [
        ("S15", None, LAST_S15_ENVOY),
        ("S18", LAST_S15_ENVOY + 1, LAST_S18_ENVOY),
        ("S45", LAST_S18_ENVOY + 1, None),
    ]
    blocked = bool(module_problems(info))
    ranges = []
    for name, lo, hi in bounds:
        missing = _missing(info, WASI_SETS[name])
        loadable = not missing and not blocked
        ranges.append(
            VersionRange(name, lo, hi, loadable, missing, tuple(target_warnings(info, name)))
        )
    return ranges


def _wrap(items: Iterable[str], indent: str = "  ") -> list[str]:
    return [indent + item for item in items]


def format_inspect(info: ModuleInfo) -> str:
    """The human-readable report for `wasmgen inspect`."""
    abi = f"proxy-wasm {info.abi_version}" if info.abi_version else "none"
    if info.is_reactor:
        kind = "reactor (_initialize)"
    else:
        kind = "WASI command (_start)" if info.has_start else "neither _initialize nor _start"
    lines = [
        f"size:       {info.size} bytes",
        f"sha256:     {info.sha256}",
        f"ABI:        {abi}",
        f"module:     {kind}",
        f"callbacks ({len(info.callbacks)}):",
        *_wrap(info.callbacks),
        f"imports ({len(info.imports)}):",
        *_wrap(f"{mod}.{name}" for mod, name in info.imports),
    ]
    if module_problems(info):
        lines += ["problems:", *_wrap(module_problems(info))]
    if module_warnings(info):
        lines += ["warnings:", *_wrap(module_warnings(info))]
    lines.append("loads on:")
    for rng in loadable_on(info):
        head = f"  {rng.describe()}, WASI set {rng.wasi_set}: "
        if rng.loadable:
            lines.append(head + "yes")
            lines.extend(_wrap(rng.warnings, "    warning: "))
        elif rng.missing:
            names = ", ".join(f"{mod}.{name}" for mod, name in rng.missing)
            lines.append(head + f"no, missing {len(rng.missing)} import(s): {names}")
        else:
            lines.append(head + "no, see problems above")
    return "\n".join(lines) + "\n"
