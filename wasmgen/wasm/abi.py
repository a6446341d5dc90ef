"""The proxy-wasm ABI 0.2.x as data: module names, enums, and the encodings of pairs and properties."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum

WASI_MODULE = "wasi_snapshot_preview1"
ENV_MODULE = "env"


def to_bytes(text: str) -> bytes:
    """Header text as the bytes Envoy holds: UTF-8, with undecodable bytes kept as they came."""
    return text.encode("utf-8", "surrogateescape")


def to_text(data: bytes) -> str:
    """Bytes from the wire or the guest as text that to_bytes turns back into the same bytes."""
    return data.decode("utf-8", "surrogateescape")


def names_set(text: str) -> frozenset[str]:
    """A frozen set of the whitespace-separated names in text."""
    return frozenset(text.split())


# proxy-wasm-cpp-host's FOR_ALL_HOST_FUNCTIONS (module "env"), ABI 0.1.0 and 0.2.x together.
ENVOY_ENV_FUNCTIONS = names_set(
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


Header = tuple[str, str]
PropertyValue = bytes | str | int | bool | Sequence[Header]


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
    items = [(to_bytes(k), to_bytes(v)) for k, v in pairs]
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
        out.append((to_text(key), to_text(value)))
        pos += klen + vlen + 2
    return out


def encode_property(value: PropertyValue) -> bytes:
    """Envoy's encoding: raw strings, int64 LE, one-byte bools, pair-encoded maps."""
    if isinstance(value, bytes | str):
        return to_bytes(value) if isinstance(value, str) else value
    if isinstance(value, bool):
        return b"\1" if value else b"\0"
    if isinstance(value, int):
        return struct.pack("<q", value)
    return serialize_pairs(list(value))
