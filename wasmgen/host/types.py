"""What goes in and out of the embedded host: requests, responses, results, logs, header maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from wasmgen.envoy_headers import (
    inline_headers,
    join_inline,
)
from wasmgen.records import record
from wasmgen.wasm.abi import Action, Header, LogLevel

HeaderKind = Literal["request", "response", "plain"]


class StreamState(Protocol):
    """What the plugin's host calls read and write of the stream a callback runs for (the
    VM's HttpStream is one); the imports know streams only through this."""

    context_id: int
    request_headers: HeaderMap | None
    response_headers: HeaderMap | None
    local_response: LocalResponse | None
    source_address: str | None  # overrides the source.address property for this stream


@record
class LogEntry:
    """One line the plugin logged (proxy_log, or stdout/stderr as INFO/ERROR)."""

    level: LogLevel
    message: str
    context_id: int  # 0 while the VM starts, then the root id or a stream id
    phase: str


@record
class LocalResponse:
    """A reply the plugin sent with proxy_send_local_response, as it passed it.

    What the client receives (Envoy adds content-length, runs the plugin's response callback
    over it, ...) is HttpResult.client / HttpStream.local_reply.
    """

    status: int
    headers: tuple[Header, ...]
    body: bytes
    details: str
    grpc_status: int


@record
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


@record
class HttpResponse:
    """An upstream response."""

    status: int = 200
    headers: Sequence[Header] = ()
    end_of_stream: bool = False  # a body follows the headers

    def header_list(self) -> list[Header]:
        """Headers as Envoy hands them to filters."""
        return [(":status", str(self.status)), *self.headers]


@record
class ClientResponse:
    """What the downstream client receives: the upstream's response or a local reply."""

    status: int
    headers: tuple[Header, ...]  # in order, lower-case, without :status; repeated names kept
    body: bytes | None  # a local reply's body (b"" for HEAD); None: the upstream's (not emulated)
    local: bool  # a local reply: the plugin's own, or Envoy's (404 when no route matches)
    details: str = ""  # a local reply's response code details ("route_not_found", ...)


@record
class UpstreamRequest:
    """The request the upstream receives over HTTP/1.1 (Envoy surroundings only)."""

    method: str
    path: str
    headers: tuple[Header, ...]  # on the wire: host (from :authority) first, no pseudo-headers


@record
class HttpResult:
    """What came out of one request through the plugin."""

    request_headers: tuple[Header, ...]  # after the plugin, as the upstream would see them
    response_headers: tuple[Header, ...] | None  # None when the upstream was not reached
    local_response: LocalResponse | None
    request_action: Action
    response_action: Action | None
    logs: tuple[LogEntry, ...]
    fuel: Mapping[str, int]  # wasm instructions (fuel) per callback of this stream
    # What the client receives; None when nothing reaches it (no upstream response was given,
    # or the plugin paused the stream).
    client: ClientResponse | None = None
    # With Envoy surroundings only: what the upstream receives (None: it was not reached), and
    # the header names whose values vary per run (compare those by presence only).
    upstream: UpstreamRequest | None = None
    volatile: frozenset[str] = frozenset()

    @property
    def total_fuel(self) -> int:
        """Fuel of every callback of this stream, context_create to delete."""
        return sum(self.fuel.values())


class HeaderMap:
    """An ordered header multimap with Envoy's HeaderMapImpl semantics.

    kind says which map it is: Envoy's request and response header maps join a repeated inline
    header into one entry (see INLINE_REQUEST_HEADERS), and the request map stores ``host``
    as ``:authority`` (HeaderMapImpl's legacy host alias); a "plain" map does neither.
    """

    def __init__(self, pairs: Sequence[Header] = (), kind: HeaderKind = "plain") -> None:
        self.kind: HeaderKind = kind
        self._inline = inline_headers(kind)
        self.pairs: list[Header] = []
        for key, value in pairs:  # the HTTP/1 codec adds each header like addCopy
            self.add(key, value)

    def _name(self, key: str) -> str:
        key = key.lower()
        return ":authority" if key == "host" and self.kind == "request" else key

    def get(self, key: str) -> str | None:
        """The first value of key (an inline header has only one, possibly joined)."""
        key = self._name(key)
        return next((v for k, v in self.pairs if k == key), None)

    def add(self, key: str, value: str) -> None:
        """Envoy's addCopy: join an inline header onto its entry, else append an entry;
        pseudo-headers stay in front like in Envoy's HeaderList."""
        key = self._name(key)
        if key in self._inline:
            for i, (k, v) in enumerate(self.pairs):
                if k == key:
                    self.pairs[i] = (k, join_inline(v, value))
                    return
        at = len(self.pairs)
        if key.startswith(":"):
            at = next((i for i, (k, _) in enumerate(self.pairs) if k[:1] != ":"), at)
        self.pairs.insert(at, (key, value))

    def replace(self, key: str, value: str) -> None:
        """Envoy's setCopy: remove every entry of key, then append one."""
        self.remove(key)
        self.add(key, value)

    def set_in_place(self, key: str, value: str) -> None:
        """Envoy's setInline/setReference<Name>: overwrite the first entry where it stands,
        or add one (how Envoy itself sets server, date, content-length, ...)."""
        key = self._name(key)
        for i, (k, _) in enumerate(self.pairs):
            if k == key:
                self.pairs[i] = (k, value)
                return
        self.add(key, value)

    def remove(self, key: str) -> None:
        """Remove every entry of key."""
        key = self._name(key)
        self.pairs = [(k, v) for k, v in self.pairs if k != key]
