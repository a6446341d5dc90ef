"""A proxy-wasm ABI 0.2.x host on wasmtime that runs an HTTP plugin the way Envoy does.

Envoy behaviour mirrored here (proxy-wasm-cpp-host src/exports.cc, Envoy's wasm
context.cc, HeaderMapImpl and the filter manager's local replies):

- Header maps keep lower-case names in order, pseudo-headers first. ``add`` is Envoy's
  ``addCopy``: it appends an entry, except for a header in Envoy's inline set of that map
  (68 request-side names such as ``x-forwarded-for``, ``user-agent``, ``cache-control``;
  38 response-side such as ``vary``, ``date``, ``etag``; see wasmgen.host.types), where it
  joins ``","`` + value onto the existing entry, so the plugin then reads ``"a,b"`` (an
  empty value adds nothing). The maps a plugin receives are built the same way, as Envoy's
  HTTP/1 codec joins repeated inline headers. In the request map ``host`` is
  ``:authority``. ``replace`` is Envoy's ``setCopy``: remove every entry of that name, then
  add one, so the entry moves to the end; ``remove`` drops every entry; ``get`` returns the
  first value (Envoy returns ``entry[0]``), an empty one included. The SDK's proxytest
  differs: its replace overwrites the first entry in place, its remove drops only the
  first, its add concatenates onto an existing value without a delimiter, and it reports
  an empty value as NOT_FOUND.
- A local reply (proxy_send_local_response from on_request_headers) is built like Envoy's
  ``Utility::prepareLocalReply`` once the callback returns: ``:status``, the plugin's headers
  added to a response map, ``content-length`` (and ``content-type: text/plain`` when absent)
  for a body, or neither for an empty body. It then passes through the same stream's
  ``proxy_on_response_headers`` (end_of_stream for HEAD or an empty body), and
  ``HttpResult.client`` shows what leaves the filter. A reply sent from the response callback
  goes out directly.
- WASI is limited to the target's set (see wasmgen.wasm) with that release's stubs;
  the calls Envoy forbids during ``_initialize`` trap there. stdout and stderr are
  logged at INFO and ERROR, one entry per line; Envoy logs one record per ``fd_write``
  (minus one trailing newline), which splits a Go panic into fragments.
- A trap fails the VM for good, as in Envoy; every later call raises HostError.
- Not emulated: bodies and trailers, timers, HTTP/gRPC callouts, shared data, metrics
  (those imports link and return UNIMPLEMENTED; see ``ProxyWasmHost.events``).
- What Envoy's connection manager, router and codecs do around the filter (x-request-id,
  x-forwarded-proto, date, server, x-envoy-* headers, framing, the 404 without a route) is
  opt-in: ``exchange(..., envoy=EnvoySurroundings())`` (see wasmgen.host.envoy_rules).

A host instance is single-threaded: use one per thread (compiled modules are shared).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import wasmtime

from wasmgen.envoy_headers import TEST_CLOCK
from wasmgen.errors import HostError
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.host.imports import INVALID_MEMORY_ACCESS, UNIMPLEMENTED, ProxyImports
from wasmgen.host.stream import HttpStream, run_exchange
from wasmgen.host.types import HttpRequest, HttpResponse, HttpResult, LogEntry
from wasmgen.host.wasi import EBADF, EFAULT, ENOENT, ENOSYS, OK, U32, Args, _Fault
from wasmgen.wasm.abi import ENV_MODULE, Header, LogLevel, PropertyValue
from wasmgen.wasm.compat import GO_POLL_ONEOFF_ISSUE, Target, check_compat, parse_target
from wasmgen.wasm.module import ModuleInfo, inspect_module, module_problems

__all__ = ["DEFAULT_FUEL_LIMIT", "HttpStream", "ProxyWasmHost"]  # HttpStream lives in .stream

DEFAULT_FUEL_LIMIT = 2_000_000_000  # per callback; wasmtime fuel ~ one unit per instruction
_LOG_TAIL = 8

# Parameter types of every emulated import ("i" i32, "I" i64); all return an i32 status
# except proc_exit, which returns nothing.
_SIGNATURES = {
    "proxy_log": "iii", "proxy_get_log_level": "i", "proxy_get_buffer_bytes": "iiiii",
    "proxy_get_header_map_pairs": "iii", "proxy_set_header_map_pairs": "iii",
    "proxy_get_header_map_value": "iiiii", "proxy_add_header_map_value": "iiiii",
    "proxy_replace_header_map_value": "iiiii", "proxy_remove_header_map_value": "iii",
    "proxy_get_property": "iiii", "proxy_set_property": "iiii",
    "proxy_send_local_response": "iiiiiiii", "proxy_set_effective_context": "i",
    "proxy_continue_stream": "i", "proxy_close_stream": "i", "proxy_continue_request": "",
    "proxy_continue_response": "", "proxy_clear_route_cache": "", "proxy_done": "",
    "proxy_get_current_time_nanoseconds": "i", "proxy_set_tick_period_milliseconds": "i",
    "fd_write": "iiii", "fd_read": "iiii", "fd_seek": "iIii", "fd_close": "i",
    "fd_fdstat_get": "ii", "fd_fdstat_set_flags": "ii", "fd_prestat_get": "ii",
    "fd_prestat_dir_name": "iii", "path_open": "iiiiiIIii", "environ_get": "ii",
    "environ_sizes_get": "ii", "args_get": "ii", "args_sizes_get": "ii", "clock_time_get": "iIi",
    "random_get": "ii", "proc_exit": "i", "sched_yield": "", "poll_oneoff": "iiii",
}  # fmt: skip
# Imports whose Envoy implementation only returns a constant (fd_seek and fd_close also log).
_CONSTANT = {
    "fd_read": ENOSYS, "fd_fdstat_set_flags": ENOSYS, "fd_prestat_get": EBADF,
    "fd_prestat_dir_name": ENOSYS, "path_open": ENOENT, "args_get": 0, "sched_yield": 0,
    "fd_seek": 0, "fd_close": 0, "proxy_set_tick_period_milliseconds": OK,
    "proxy_continue_stream": OK, "proxy_close_stream": OK, "proxy_continue_request": OK,
    "proxy_continue_response": OK, "proxy_clear_route_cache": OK, "proxy_done": OK,
}  # fmt: skip
_VAL = {"i": wasmtime.ValType.i32(), "I": wasmtime.ValType.i64()}


class _GuestTrap(Exception):
    """Raised in an import to trap the guest, like cpp-host's restricted-call failure."""


_MODULES: dict[str, wasmtime.Module] = {}  # compiled modules by sha256
_ENGINE: list[wasmtime.Engine] = []


def _engine() -> wasmtime.Engine:
    if not _ENGINE:
        config = wasmtime.Config()
        config.consume_fuel = True
        # wasmtime's on-disk code cache: a 3 MB Go plugin loads in ~20 ms instead of ~2 s;
        # without a writable cache directory it compiles every time.
        with contextlib.suppress(wasmtime.WasmtimeError):
            config.cache = True
        _ENGINE.append(wasmtime.Engine(config))
    return _ENGINE[0]


def _trap_reason(exc: BaseException) -> str:
    """The cause of a wasmtime trap and the innermost named frames."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next(
        (ln.removeprefix("wasm trap: ") for ln in lines if ln.startswith("wasm trap:")), ""
    )
    if not cause and "Caused by:" in lines[:-1]:  # wasmtime's innermost cause is the useful one
        cause = f"{lines[0]}: {lines[-1].split(': ', 1)[-1]}"
    text = cause or (lines[0] if lines else type(exc).__name__)
    if isinstance(exc, wasmtime.Trap):
        names = [f.func_name for f in exc.frames if f.func_name][:4]
        text += f" (in {' < '.join(names)})" if names else ""
    return text


class ProxyWasmHost(ProxyImports):
    """Loads one plugin into one VM and drives it like Envoy; single-threaded."""

    def __init__(
        self,
        wasm: bytes,
        *,
        plugin_config: bytes = b"",
        target: Target | None = None,
        vm_config: bytes = b"",
        env: Mapping[str, str] | None = None,
        properties: Mapping[str | tuple[str, ...], PropertyValue] | None = None,
        plugin_name: str = "wasmgen",
        root_id: str = "",
        fuel_limit: int = DEFAULT_FUEL_LIMIT,
        clock_ns: int | None = TEST_CLOCK * 10**9,
    ) -> None:
        self.info: ModuleInfo = inspect_module(wasm)
        # The wall clock the plugin reads: fixed, as every test host's (a ${time.*} value is
        # then what the reference model says), or None for the real one (serve).
        self.clock_ns = clock_ns
        self.target = target or parse_target(None, None)
        self.compat = check_compat(self.info, self.target)
        self.plugin_config, self.vm_config, self.env = plugin_config, vm_config, dict(env or {})
        props: dict[str | tuple[str, ...], PropertyValue] = {
            "plugin_name": plugin_name, "plugin_root_id": root_id, "plugin_vm_id": "",
            "source.address": "127.0.0.1:40000", "source.port": 40000,
            "destination.address": "127.0.0.1:8080", "destination.port": 8080,
            "request.protocol": "HTTP/1.1", **(properties or {}),
        }  # fmt: skip
        # By path segments; entries here win over values computed from the stream's headers
        # (request.path, request.host, response.code, ...). Callers may add more at any time.
        self.properties = {tuple(k.split(".")) if isinstance(k, str) else k: v
                           for k, v in props.items()}  # fmt: skip
        self.fuel_limit, self.root_id = fuel_limit, 1
        self.log_entries: list[LogEntry] = []
        self.events: list[str] = []  # host-side notes Envoy logs at trace: stubs hit, proc_exit
        self.fuel_consumed = 0  # wasm instructions (fuel) over the host's lifetime
        self.fuel_by_phase: dict[str, int] = {}
        self.failure: str | None = None
        self.configured = False
        self._phase, self._next_id = "load", 2
        self._stream: HttpStream | None = None  # whose headers the imports see
        self._streams: dict[int, HttpStream] = {}
        self._stdio, self._poll_failed = {1: "", 2: ""}, False
        self._check_loadable()
        if self.info.sha256 not in _MODULES:
            if len(_MODULES) >= 32:
                _MODULES.pop(next(iter(_MODULES)))
            try:
                _MODULES[self.info.sha256] = wasmtime.Module(_engine(), wasm)
            except wasmtime.WasmtimeError as exc:
                raise HostError(f"invalid WebAssembly module: {_trap_reason(exc)}") from None
        module = _MODULES[self.info.sha256]
        self._store, linker = wasmtime.Store(_engine()), wasmtime.Linker(_engine())
        for imp in {(i.module, i.name or ""): i for i in module.imports}.values():  # Go repeats
            self._link(linker, imp.module, imp.name or "", imp.type)
        try:
            instance = linker.instantiate(self._store, module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise HostError(f"cannot link module: {_trap_reason(exc)}") from None
        self._exports: dict[str, Any] = dict(instance.exports(self._store))
        self._memory: wasmtime.Memory = self._exports["memory"]
        # Envoy's host (proxy-wasm-cpp-host) allocates with an exported malloc when there is
        # one, and falls back to proxy_on_memory_allocate: a TinyGo module's never-freeing malloc
        # export grows Envoy's memory per request (tests/test_tinygo.py measures it).
        self._alloc: Any = self._exports.get("malloc") or self._exports["proxy_on_memory_allocate"]

    def _check_loadable(self) -> None:
        problems, abi = module_problems(self.info), self.info.abi_version or ""
        if problems:
            raise HostError(problems[0], hint="build with a proxy-wasm SDK and -buildmode=c-shared")
        if not abi.startswith("0.2."):
            raise HostError(f"proxy-wasm ABI {abi} is not supported by this host (0.2.x only)")
        if not {"proxy_on_memory_allocate", "malloc"} & set(self.info.exports):
            raise HostError("the module exports neither proxy_on_memory_allocate nor malloc")
        if self.compat.missing:
            raise HostError(
                f"{self.target.name} cannot load this module: {len(self.compat.missing)} "
                f"missing import(s): {self.compat.missing_names()}",
                hint=f"its WASI set {self.target.wasi_set} lacks them; target a newer release",
            )

    # -- public API -------------------------------------------------------------------

    def start(self) -> bool:
        """_initialize, then the root context, on_vm_start and on_configure like Envoy."""
        self._call("_initialize" if self.info.is_reactor else "_start", phase="initialize")
        self._call("proxy_on_context_create", self.root_id, 0)
        vm_size, cfg_size = len(self.vm_config), len(self.plugin_config)
        if not self._call("proxy_on_vm_start", self.root_id, vm_size, default=1):
            return False
        self.configured = bool(self._call("proxy_on_configure", self.root_id, cfg_size, default=1))
        return self.configured

    def open_stream(self) -> HttpStream:
        """Create an HTTP context: proxy_on_context_create(id, root)."""
        if not self.configured:
            raise HostError("the plugin is not started: call start() and check it returned True")
        stream_id, self._next_id = self._next_id, self._next_id + 1
        self._streams[stream_id] = HttpStream(self, stream_id)
        return self._streams[stream_id]

    def http_request(
        self,
        request: HttpRequest,
        response: HttpResponse | None = None,
        *,
        envoy: EnvoySurroundings | None = None,
    ) -> HttpResult:
        """Run one request and, unless the plugin answered or paused it, its response."""
        return self.exchange(
            request.header_list(),
            response.header_list() if response is not None else None,
            request_end=request.end_of_stream,
            response_end=response.end_of_stream if response is not None else False,
            envoy=envoy,
        )

    def exchange(
        self,
        request_headers: Sequence[Header],
        response_headers: Sequence[Header] | None = None,
        *,
        request_end: bool = True,
        response_end: bool = False,
        envoy: EnvoySurroundings | None = None,
    ) -> HttpResult:
        """Like http_request, with exact header lists (pseudo-headers included, or missing).

        With envoy, the request and response also pass what Envoy's connection manager and
        router do around the filter, and the result says what the upstream and the client
        receive (see wasmgen.host.envoy_rules).
        """
        return run_exchange(
            self,
            request_headers,
            response_headers,
            request_end=request_end,
            response_end=response_end,
            envoy=envoy,
        )

    def logs(self, level: LogLevel | str | None = None) -> list[str]:
        """Messages the plugin logged, optionally of one level (LogLevel.INFO or "info")."""
        if isinstance(level, str):
            level = LogLevel[level.upper()]
        return [e.message for e in self.log_entries if level is None or e.level == level]

    @property
    def memory_size(self) -> int:
        """Bytes of the plugin's linear memory now (what Envoy accounts to the VM)."""
        return int(self._memory.data_len(self._store))

    def close(self) -> None:
        """Finish open streams, then the root's proxy_on_done and proxy_on_delete; best effort."""
        try:
            for stream in list(self._streams.values()):
                stream.finish()
            if self.configured and self.failure is None:
                self._call("proxy_on_done", self.root_id)
                self._call("proxy_on_delete", self.root_id)
        except HostError as exc:
            self.events.append(f"close: {exc.message}")
        self.configured = False

    def __enter__(self) -> ProxyWasmHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calling into the guest -------------------------------------------------------

    def _call(self, export: str, *args: int, stream: HttpStream | None = None,
              phase: str | None = None, default: int = 0) -> int:  # fmt: skip
        """Call an export with fresh fuel; a trap fails the VM and raises HostError."""
        phase, func = phase or export.removeprefix("proxy_on_"), self._exports.get(export)
        if func is None:
            return default  # Envoy skips callbacks the module does not export
        if self.failure is not None:
            raise HostError(f"the VM failed earlier ({self.failure}); create a new host")
        self._phase, self._stream, self._poll_failed = phase, stream, False
        mark, reason = len(self.log_entries), None
        self._store.set_fuel(self.fuel_limit)
        try:
            result = func(self._store, *args)
        except _GuestTrap as exc:
            reason = str(exc)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            reason = _trap_reason(exc)
            if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
                reason += f"; over {self.fuel_limit} instructions: an endless loop?"
        finally:
            for fd, rest in self._stdio.items():  # an unterminated last line
                if rest:
                    self._stdio[fd] = ""
                    self._log(LogLevel.INFO if fd == 1 else LogLevel.ERROR, rest)
            used = self.fuel_limit - self._store.get_fuel()
            self.fuel_consumed += used
            self.fuel_by_phase[phase] = self.fuel_by_phase.get(phase, 0) + used
            if stream is not None:
                stream.fuel[phase] = stream.fuel.get(phase, 0) + used
            self._phase, self._stream = "idle", None
        if reason is not None:
            self._fail(export, reason, self.log_entries[mark:] or self.log_entries[-_LOG_TAIL:])
        return int(result or 0) & U32

    def _fail(self, export: str, reason: str, entries: list[LogEntry]) -> None:
        self.failure = f"{export} trapped: {reason}"
        lines = [f"  [{e.level.name.lower()}] {e.message}" for e in entries if e.message.strip()]
        if len(lines) > _LOG_TAIL + 2:  # a Go panic prints its message first, then the stack
            lines = [*lines[: _LOG_TAIL - 2], "  ...", *lines[-2:]]
        text = self.failure + ("\nplugin log:\n" + "\n".join(lines) if lines else "")
        hint = None
        if self._poll_failed:
            hint = (f"the Go runtime needed poll_oneoff, which {self.target.name} only stubs "
                    f"({GO_POLL_ONEOFF_ISSUE}); Envoy >= 1.39 (Istio >= 1.31) implements it")  # fmt: skip
        elif export == "_start":
            hint = "this is a WASI command module: build Go plugins with -buildmode=c-shared"
        raise HostError(text, hint=hint)

    def _log(self, level: LogLevel, message: str) -> None:
        stream, phase = self._stream, self._phase
        ctx = stream.context_id if stream else 0 if phase == "initialize" else self.root_id
        self.log_entries.append(entry := LogEntry(level, message, ctx, phase))
        if stream is not None:
            stream.logs.append(entry)

    def _link(self, linker: wasmtime.Linker, module: str, name: str, ty: Any) -> None:
        impl = getattr(self, f"_imp_{name}", None) or self._constant(module, name)
        fault = INVALID_MEMORY_ACCESS if module == ENV_MODULE else EFAULT
        if name in _SIGNATURES:  # a wrong signature then fails to link, as in Envoy
            results = [] if name == "proc_exit" else [_VAL["i"]]
            ty = wasmtime.FuncType([_VAL[ch] for ch in _SIGNATURES[name]], results)
        forbidden = {"proc_exit", "sched_yield", "fd_close", "fd_read", "path_open"}
        if self.target.wasi_set != "S45":
            forbidden.add("poll_oneoff")
        restricted = name in forbidden or (module == ENV_MODULE and name != "proxy_log")

        def call(c: wasmtime.Caller, *args: int) -> int | None:
            if restricted and self._phase == "initialize":
                self._poll_failed = name == "poll_oneoff"
                raise _GuestTrap(f"{module}.{name} called while the VM starts (Envoy forbids it)")
            try:
                return impl(c, args)  # type: ignore[no-any-return]
            except _Fault:
                return fault

        linker.define_func(module, name, ty, call, access_caller=True)

    def _constant(self, module: str, name: str) -> Any:
        value = _CONSTANT.get(name, UNIMPLEMENTED if module == ENV_MODULE else ENOSYS)
        note = f"wasi_unstable {name}" if name in ("fd_seek", "fd_close") else None
        if name not in _CONSTANT:
            note = f"{module}.{name} is not emulated here; returned {value}"

        def constant(c: wasmtime.Caller, a: Args) -> int:
            if note:
                self.events.append(note)
            return value

        return constant
