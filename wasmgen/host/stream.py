"""One HTTP stream through the plugin, and one whole exchange (optionally with Envoy around it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wasmgen.errors import HostError
from wasmgen.host.envoy_rules import ALWAYS_VOLATILE, EnvoySurroundings, envoy_source_address
from wasmgen.host.types import (
    ClientResponse,
    HeaderMap,
    HttpResult,
    LocalResponse,
    LogEntry,
    UpstreamRequest,
)
from wasmgen.wasm.abi import Action, Header


class StreamHost(Protocol):
    """What a stream needs of its VM (ProxyWasmHost is one): calling the plugin's exports for
    it, the root it belongs to, whether the VM failed, and its table of open streams."""

    root_id: int
    failure: str | None
    _streams: dict[int, HttpStream]

    def _call(self, export: str, *args: int, stream: HttpStream | None = None,
              phase: str | None = None, default: int = 0) -> int: ...  # fmt: skip

    def open_stream(self) -> HttpStream:
        """A new stream, its context created in the plugin."""
        ...


class HttpStream:
    """One HTTP stream (an HTTP context in the plugin); call the on_* methods in order.

    A local reply the plugin sends from on_request_headers is finished inside that call, as
    Envoy does once the callback returns: the reply is built (``:status``, the plugin's
    headers, content-length) and passed through this stream's proxy_on_response_headers;
    ``local_reply`` and ``local_reply_body`` then hold what leaves the filter.
    """

    def __init__(self, host: StreamHost, context_id: int) -> None:
        self.host, self.context_id = host, context_id
        self.request_headers: HeaderMap | None = None
        # The map the response callback sees: the upstream's response, or a local reply.
        self.response_headers: HeaderMap | None = None
        self.local_response: LocalResponse | None = None  # as the plugin passed it
        self.local_reply: HeaderMap | None = None  # a local reply as it left the filter
        self.local_reply_body: bytes | None = None  # its body on the wire (none for HEAD)
        self.local_reply_details = ""
        # The response callback's action on the local reply; None when it went out directly
        # (a reply sent from on_response_headers) or before the callback ran.
        self.local_reply_action: Action | None = None
        self.head_request = False  # the request as received was HEAD (Envoy's is_head_request)
        self.logs: list[LogEntry] = []
        self.fuel: dict[str, int] = {}
        self.finished = False
        self.source_address: str | None = None  # source.address when Envoy derives it per stream
        host._call("proxy_on_context_create", context_id, host.root_id, stream=self)

    def _run(self, phase: str, size: int, end_of_stream: bool) -> Action:
        if self.finished or self.local_reply is not None:
            raise HostError(f"stream {self.context_id}: {phase} after the stream ended")
        action = self.host._call(f"proxy_on_{phase}", self.context_id, size, int(end_of_stream),
                                 stream=self)  # fmt: skip
        return Action(action & 1)

    def on_request_headers(self, headers: Sequence[Header], end_of_stream: bool = True) -> Action:
        """Run proxy_on_request_headers, and the local reply if the plugin sent one (PAUSE);
        then read request_headers, local_response and local_reply."""
        self.request_headers = HeaderMap(headers, "request")  # the codec joins inline repeats
        self.head_request = self.request_headers.get(":method") == "HEAD"
        action = self._run("request_headers", len(self.request_headers.pairs), end_of_stream)
        if self.local_response is None:
            return action
        local = self.local_response
        self.send_local_reply(local.status, local.headers, local.body, local.details)
        return Action.PAUSE

    def on_response_headers(self, headers: Sequence[Header], end_of_stream: bool = False) -> Action:
        """Run proxy_on_response_headers; then read response_headers (and local_reply if the
        plugin answered from here: Envoy sends that reply directly, PAUSE)."""
        response = HeaderMap(headers, "response")
        action = self._run_response(response, end_of_stream)
        if self.local_response is None:
            return action
        local = self.local_response  # replaces the response without passing the filter again
        self.local_reply = self._prepare_local_reply(local.status, local.headers, local.body,
                                                     local.details)  # fmt: skip
        return Action.PAUSE

    def send_local_reply(
        self, status: int, headers: Sequence[Header] = (), body: bytes = b"", details: str = ""
    ) -> Action:
        """Envoy's sendLocalReply while the request is decoded (the plugin's own, or Envoy's,
        such as the 404 when no route matches): build it and run the response callback on it."""
        reply = self._prepare_local_reply(status, headers, body, details)
        self.local_reply_action = self._run_response(reply, self.head_request or not body)
        self.local_reply = reply
        return self.local_reply_action

    def _run_response(self, headers: HeaderMap, end_of_stream: bool) -> Action:
        if self.finished or self.local_reply is not None:
            raise HostError(f"stream {self.context_id}: response_headers after the stream ended")
        self.response_headers = headers
        return self._run("response_headers", len(headers.pairs), end_of_stream)

    def _prepare_local_reply(
        self, status: int, headers: Sequence[Header], body: bytes, details: str
    ) -> HeaderMap:
        """Envoy's Utility::prepareLocalReply: a response map with :status and the plugin's
        headers (added like addCopy), then content-length and, when absent, content-type
        text/plain for a body; without a body both are removed."""
        reply = HeaderMap([(":status", str(status))], "response")
        for key, value in headers:
            reply.add(key, value)
        if body:
            reply.set_in_place("content-length", str(len(body)))
            if reply.get("content-type") is None:
                reply.add("content-type", "text/plain")
        else:
            reply.remove("content-length")
            reply.remove("content-type")
        self.local_reply_details = details
        self.local_reply_body = b"" if self.head_request else bytes(body)
        return reply

    def finish(self) -> None:
        """End the stream like Envoy: proxy_on_done, proxy_on_log, proxy_on_delete."""
        if not self.finished and self.host.failure is None:
            self.finished = True
            for phase in ("done", "log", "delete"):
                self.host._call(f"proxy_on_{phase}", self.context_id, stream=self)
        self.host._streams.pop(self.context_id, None)


def _client_response(
    stream: HttpStream,
    resp_action: Action | None,
    response_end: bool,
    envoy: EnvoySurroundings | None,
) -> tuple[ClientResponse | None, frozenset[str]]:
    """What the client receives once the stream's headers left the filter (and Envoy)."""
    reply = stream.local_reply
    if reply is not None and stream.local_reply_action != Action.PAUSE:
        body: bytes | None = stream.local_reply_body or b""
        headers, end_stream, local = reply.pairs, not body, True
    elif resp_action == Action.CONTINUE and stream.response_headers is not None:
        body, headers, end_stream, local = None, stream.response_headers.pairs, response_end, False
    else:
        return None, frozenset()  # paused, or no response was given
    details = stream.local_reply_details if local else ""
    if envoy is not None:
        status, wire, volatile = envoy.client_response(
            headers, head=stream.head_request, end_stream=end_stream
        )
        return ClientResponse(status, tuple(wire), body, local, details), volatile
    raw = next((v for k, v in headers if k == ":status"), "")
    status = int(raw) if raw.isascii() and raw.isdigit() else 0
    lines = tuple((k, v) for k, v in headers if not k.startswith(":"))
    return ClientResponse(status, lines, body, local, details), frozenset()


def _rejected(envoy: EnvoySurroundings, request_headers: Sequence[Header]) -> HttpResult:
    """A request Envoy's connection manager answers itself: no filter, no upstream."""
    head = any(k == ":method" and v == "HEAD" for k, v in request_headers)
    status, wire, volatile = envoy.rejection(head=head)
    return HttpResult(
        request_headers=(),
        response_headers=None,
        local_response=None,
        request_action=Action.PAUSE,  # the plugin never let it through: it never saw it
        response_action=None,
        logs=(),
        fuel={},
        client=ClientResponse(status, tuple(wire), b"", True, "rejected before the filters"),
        upstream=None,
        volatile=volatile,
    )


def run_exchange(
    host: StreamHost,
    request_headers: Sequence[Header],
    response_headers: Sequence[Header] | None = None,
    *,
    request_end: bool = True,
    response_end: bool = False,
    envoy: EnvoySurroundings | None = None,
) -> HttpResult:
    """ProxyWasmHost.exchange: one stream through the plugin, optionally with Envoy around it."""
    volatile: frozenset[str] = frozenset()
    upstream: UpstreamRequest | None = None
    # source.address as Envoy's defaults give it (also without the rest of Envoy around).
    source = envoy_source_address(request_headers)
    if envoy is not None and envoy.rejects(request_headers):
        return _rejected(envoy, request_headers)
    if envoy is not None:
        request_headers, volatile = envoy.downstream_request(request_headers)
    stream, resp_action = host.open_stream(), None
    stream.source_address = source
    try:
        action = stream.on_request_headers(request_headers, request_end)
        forward = action == Action.CONTINUE and stream.local_reply is None
        if forward and envoy is not None:
            passed = stream.request_headers.pairs if stream.request_headers else []
            if envoy.route_found(passed):
                upstream = envoy.upstream_request(passed, end_stream=request_end)
            else:  # a header edit cleared the route cache, and no route matches now
                stream.send_local_reply(404, details="route_not_found")
                forward = False
        if forward and response_headers is not None:
            if envoy is not None:
                response_headers = envoy.upstream_response(response_headers)
                response_end = response_end or stream.head_request
                volatile |= ALWAYS_VOLATILE
            resp_action = stream.on_response_headers(response_headers, response_end)
    finally:
        stream.finish()
    client, client_volatile = _client_response(stream, resp_action, response_end, envoy)
    req, resp = stream.request_headers, stream.response_headers
    return HttpResult(
        request_headers=tuple(req.pairs if req else ()),
        response_headers=tuple(resp.pairs) if resp and resp_action is not None else None,
        local_response=stream.local_response,
        request_action=action,
        response_action=resp_action,
        logs=tuple(stream.logs),
        fuel=dict(stream.fuel),
        client=client,
        upstream=upstream,
        volatile=volatile | client_volatile,
    )
