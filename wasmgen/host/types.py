"""What goes in and out of the embedded host: requests, responses, results, logs, header maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wasmgen.wasm.abi import Action, Header, LogLevel


@dataclass(frozen=True)
class LogEntry:
    """One line the plugin logged (proxy_log, or stdout/stderr as INFO/ERROR)."""

    level: LogLevel
    message: str
    context_id: int  # 0 while the VM starts, then the root id or a stream id
    phase: str


@dataclass(frozen=True)
class LocalResponse:
    """A reply the plugin sent with proxy_send_local_response."""

    status: int
    headers: tuple[Header, ...]
    body: bytes
    details: str
    grpc_status: int


@dataclass(frozen=True)
class HttpRequest:
    """A downstream request; the pseudo-headers are built from the first four fields."""

    method: str = "GET"
    path: str = "/"
    authority: str = "localhost"
    scheme: str = "http"
    headers: Sequence[Header] = ()
    end_of_stream: bool = True  # no body follows the headers

    def header_list(self) -> list[Header]:
        """Headers as Envoy hands them to filters."""
        pseudo = [(":authority", self.authority), (":path", self.path), (":method", self.method)]
        return [*pseudo, (":scheme", self.scheme), *self.headers]


@dataclass(frozen=True)
class HttpResponse:
    """An upstream response."""

    status: int = 200
    headers: Sequence[Header] = ()
    end_of_stream: bool = False  # a body follows the headers

    def header_list(self) -> list[Header]:
        """Headers as Envoy hands them to filters."""
        return [(":status", str(self.status)), *self.headers]


@dataclass(frozen=True)
class HttpResult:
    """What came out of one request through the plugin."""

    request_headers: tuple[Header, ...]  # after the plugin, as the upstream would see them
    response_headers: tuple[Header, ...] | None  # None when the upstream was not reached
    local_response: LocalResponse | None
    request_action: Action
    response_action: Action | None
    logs: tuple[LogEntry, ...]
    fuel: Mapping[str, int]  # wasm instructions (fuel) per callback of this stream

    @property
    def total_fuel(self) -> int:
        """Fuel of every callback of this stream, context_create to delete."""
        return sum(self.fuel.values())


class HeaderMap:
    """An ordered header multimap with Envoy's HeaderMapImpl semantics."""

    def __init__(self, pairs: Sequence[Header] = ()) -> None:
        self.pairs: list[Header] = []
        for key, value in pairs:
            self.add(key, value)

    def get(self, key: str) -> str | None:
        """The first value of key."""
        key = key.lower()
        return next((v for k, v in self.pairs if k == key), None)

    def add(self, key: str, value: str) -> None:
        """Append an entry; pseudo-headers stay in front like in Envoy's HeaderList."""
        key = key.lower()
        at = len(self.pairs)
        if key.startswith(":"):
            at = next((i for i, (k, _) in enumerate(self.pairs) if k[:1] != ":"), at)
        self.pairs.insert(at, (key, value))

    def replace(self, key: str, value: str) -> None:
        """Envoy's setCopy: remove every entry of key, then append one."""
        self.remove(key)
        self.add(key, value)

    def remove(self, key: str) -> None:
        """Remove every entry of key."""
        key = key.lower()
        self.pairs = [(k, v) for k, v in self.pairs if k != key]
