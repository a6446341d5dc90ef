"""The proxy-wasm host functions (module env) with Envoy's semantics, over the stream in flight."""

from __future__ import annotations

import struct
from collections.abc import Mapping

import wasmtime

from wasmgen.host.types import HeaderMap, LocalResponse, StreamState
from wasmgen.host.wasi import OK, U32, Args, WasiImports
from wasmgen.wasm.abi import (
    LogLevel,
    PropertyValue,
    deserialize_pairs,
    encode_property,
    serialize_pairs,
    to_bytes,
)

NOT_FOUND, BAD_ARGUMENT, INVALID_MEMORY_ACCESS, UNIMPLEMENTED = 1, 2, 6, 12  # Status (OK=0)


class ProxyImports(WasiImports):
    """The env imports a plugin calls; the VM (ProxyWasmHost) supplies the state they read."""

    plugin_config: bytes
    vm_config: bytes
    properties: dict[tuple[str, ...], PropertyValue]
    root_id: int
    _stream: StreamState | None
    _streams: Mapping[int, StreamState]
    refuse_local_responses: bool = False  # answer proxy_send_local_response with BAD_ARGUMENT

    # -- what the imports see ---------------------------------------------------------

    def _map(self, map_type: int) -> HeaderMap | None:
        """Request (0) or response (2) headers of the stream; None when not available."""
        if self._stream is None or map_type not in (0, 2):
            return None  # trailers are never present in this host
        return self._stream.request_headers if map_type == 0 else self._stream.response_headers

    def _property(self, path: tuple[str, ...]) -> bytes | None:
        if path == ("source", "address") and self._stream and self._stream.source_address:
            return encode_property(self._stream.source_address)
        if path in self.properties:
            return encode_property(self.properties[path])
        s = self._stream
        hm = (s.request_headers if path[0] == "request" else s.response_headers) if s else None
        if hm is None or len(path) != 2:
            return None
        names = {"path": ":path", "host": ":authority", "method": ":method", "id": "x-request-id",
                 "scheme": ":scheme", "referer": "referer", "useragent": "user-agent"}  # fmt: skip
        value: PropertyValue | None = None
        if path[1] == "headers":
            value = hm.pairs
        elif path == ("request", "url_path"):
            value = (hm.get(":path") or "").split("?")[0]
        elif path == ("response", "code"):
            value = int(hm.get(":status") or 0)
        elif path[0] == "request" and path[1] in names:
            value = hm.get(names[path[1]])
        return None if value is None else encode_property(value)

    # -- env: proxy-wasm imports ------------------------------------------------------

    def _imp_proxy_log(self, c: wasmtime.Caller, a: Args) -> int:
        if not 0 <= a[0] <= LogLevel.CRITICAL:
            return BAD_ARGUMENT
        self._log(LogLevel(a[0]), self._text(c, a[1], a[2]))
        return OK

    def _imp_proxy_get_log_level(self, c: wasmtime.Caller, a: Args) -> int:
        self._write(c, a[0], struct.pack("<I", LogLevel.TRACE))  # capture everything
        return OK

    def _imp_proxy_get_buffer_bytes(self, c: wasmtime.Caller, a: Args) -> int:
        buf = {6: self.vm_config, 7: self.plugin_config}.get(a[0])
        if a[0] == 7 and self._phase not in ("vm_start", "configure"):
            buf = None  # Envoy exposes the plugin configuration only while configuring
        start, length = a[1] & U32, a[2] & U32
        if buf is None or start > len(buf):
            return NOT_FOUND if buf is None else BAD_ARGUMENT
        data = buf[start : start + length]  # an empty read leaves the out-params alone
        return self._out(c, data, a[3], a[4]) if data else OK

    def _imp_proxy_get_header_map_pairs(self, c: wasmtime.Caller, a: Args) -> int:
        hm = self._map(a[0])
        if hm is None:
            return BAD_ARGUMENT
        return self._out(c, serialize_pairs(hm.pairs) if hm.pairs else b"", a[1], a[2])

    def _imp_proxy_set_header_map_pairs(self, c: wasmtime.Caller, a: Args) -> int:
        hm, pairs = self._map(a[0]), deserialize_pairs(self._read(c, a[1], a[2]))
        if hm is None:
            return BAD_ARGUMENT
        hm.pairs = HeaderMap(pairs, hm.kind).pairs  # Envoy removes every key, then addCopy's each
        return OK

    def _imp_proxy_get_header_map_value(self, c: wasmtime.Caller, a: Args) -> int:
        hm, key = self._map(a[0]), self._text(c, a[1], a[2])
        value = hm.get(key) if hm is not None else None
        if value is None:
            return BAD_ARGUMENT if hm is None else NOT_FOUND
        return self._out(c, to_bytes(value), a[3], a[4])

    def _edit(self, c: wasmtime.Caller, a: Args, op: str) -> int:
        hm, key = self._map(a[0]), self._text(c, a[1], a[2])
        value = self._text(c, a[3], a[4]) if len(a) > 3 else ""
        if hm is None:
            return BAD_ARGUMENT
        hm.remove(key) if op == "remove" else getattr(hm, op)(key, value)
        return OK

    def _imp_proxy_add_header_map_value(self, c: wasmtime.Caller, a: Args) -> int:
        return self._edit(c, a, "add")

    def _imp_proxy_replace_header_map_value(self, c: wasmtime.Caller, a: Args) -> int:
        return self._edit(c, a, "replace")

    def _imp_proxy_remove_header_map_value(self, c: wasmtime.Caller, a: Args) -> int:
        return self._edit(c, a, "remove")

    def _imp_proxy_get_property(self, c: wasmtime.Caller, a: Args) -> int:
        value = self._property(tuple(self._text(c, a[0], a[1]).split("\0")))
        return NOT_FOUND if value is None else self._out(c, value, a[2], a[3])

    def _imp_proxy_set_property(self, c: wasmtime.Caller, a: Args) -> int:
        self.properties[tuple(self._text(c, a[0], a[1]).split("\0"))] = self._read(c, a[2], a[3])
        return OK

    def _imp_proxy_send_local_response(self, c: wasmtime.Caller, a: Args) -> int:
        details, body = self._text(c, a[1], a[2]), self._read(c, a[3], a[4])
        headers = tuple(deserialize_pairs(self._read(c, a[5], a[6])))
        if self._stream is None or self.refuse_local_responses:
            return BAD_ARGUMENT
        if self._stream.local_response is not None:  # the stream is already answered
            self.events.append(f"stream {self._stream.context_id}: another local response ignored")
            return OK
        # Sent once the callback returns, as in Envoy (see HttpStream.local_reply).
        self._stream.local_response = LocalResponse(a[0] & U32, headers, body, details, a[7])
        return OK

    def _imp_proxy_set_effective_context(self, c: wasmtime.Caller, a: Args) -> int:
        if a[0] != self.root_id and a[0] not in self._streams:
            return BAD_ARGUMENT
        self._stream = self._streams.get(a[0])  # until the current callback returns
        return OK

    def _imp_proxy_get_current_time_nanoseconds(self, c: wasmtime.Caller, a: Args) -> int:
        self._write(c, a[0], struct.pack("<Q", self.wall_clock_ns()))
        return OK
