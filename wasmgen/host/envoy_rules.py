"""What Envoy does around the wasm filter: its HTTP connection manager, router and HTTP/1 codec.

Opt-in: ``ProxyWasmHost.exchange(..., envoy=EnvoySurroundings())`` runs an exchange with these
steps around the plugin and reports what the upstream and the client receive, so a test can
predict a real Envoy (a static bootstrap: one route to one cluster, ``use_remote_address``
false, default route timeout). Without the option the host shows only what the plugin did.

Measured on Envoy 1.36.4, 1.38.2 and 1.40.0 (docs/envoy-behaviour.md sections a, c and d;
tests/test_envoy_probes.py repeats the probes in real Envoy) and read from Envoy's source:

- The HTTP/1 codecs drop the spaces and tabs around every header value, from the client and
  from the upstream (section d). A request target with a fragment gets the connection
  manager's own 400 and a closed connection: no filter runs (section d).
- Before the request filter (ConnectionManagerUtility::mutateRequestHeaders): connection,
  upgrade, keep-alive, proxy-connection and transfer-encoding are removed, and so are the
  router's and tracing's control headers a client may not send (SANITIZED_REQUEST_HEADERS);
  ``te`` becomes ``trailers`` when it lists that token, else goes (section d); then
  ``x-forwarded-proto: http`` is added when absent, and a uuid4 ``x-request-id`` when it is
  absent or empty (in the empty one's place).
- After it (router, upstream HTTP/1 codec): a request without ``x-forwarded-proto`` (only a
  plugin can remove it; any header edit clears the route cache) matches no route: Envoy sends
  its own local 404 with an empty body, through the plugin's response callback. Otherwise the
  router sets ``x-envoy-expected-rq-timeout-ms``, and on the wire ``:authority`` becomes
  ``host``, the other pseudo-headers go to the request line, hop-by-hop headers a plugin added
  are dropped, and a body-less request gets ``content-length: 0`` unless its method has no
  body (HeaderUtility::requestShouldHaveNoBody); a streamed one is chunked.
- Before the response filter (router): ``x-envoy-upstream-service-time`` overwrites the
  upstream's value in place (or is appended). Connection headers stay visible to the plugin
  (Envoy 1.36 showed ``keep-alive`` to it too; 1.38 and 1.40 only ``connection``).
- After it (ActiveStream::encodeHeaders, mutateResponseHeaders, the downstream codec):
  ``date`` when absent, ``server`` per ``server_header_transformation``, hop-by-hop headers
  removed, and a response without content-length framed as the HTTP/1 codec does (chunked,
  or ``content-length: 0`` for a headers-only response; nothing for 1xx, 204 and 304).
  The same applies to local replies.

Not modelled: TLS, HTTP/2, upgrades (WebSocket), ``x-forwarded-for`` (not added without
use_remote_address), referer sanitising (Envoy drops a ``referer`` its URL parser refuses:
spaces, non-ASCII, userinfo, ``mailto:``, ...), retries, timeouts, bodies.
Hop-by-hop headers a plugin adds to a request are dropped here as the surroundings' contract;
the report did not measure that case.
"""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Sequence
from typing import Literal, get_args

from wasmgen.envoy_headers import forwarded_ip
from wasmgen.host.types import HeaderMap, UpstreamRequest
from wasmgen.records import record
from wasmgen.wasm.abi import Header

ServerHeaderTransformation = Literal["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"]

# Removed from requests before the filters (mutateRequestHeaders) and from responses after
# them (mutateResponseHeaders); the codecs frame the message themselves.
CONNECTION_HEADERS = (
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
)
# Removed from the client's request before the filters (section d): headers that steer the
# router, tracing and IP tagging, which only a trusted proxy may send, and
# x-forwarded-client-cert (forward_client_cert_details SANITIZE). Other x-envoy-* pass.
SANITIZED_REQUEST_HEADERS = (
    "x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries",
    "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
    "x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-hedge-on-per-try-timeout", "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
    "x-envoy-internal", "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url",
    "x-forwarded-client-cert",
)  # fmt: skip
# Connection tokens that name options, not headers (Utility::sanitizeConnectionHeader).
CONNECTION_OPTIONS = frozenset({"close", "http2-settings", "keep-alive", "upgrade", "connection"})
# HeaderUtility::requestShouldHaveNoBody: the upstream codec adds no content-length: 0 to these.
BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "TRACE", "CONNECT"})
# Header values that differ per run when Envoy generates them.
ALWAYS_VOLATILE = frozenset({"x-envoy-upstream-service-time"})


def _remove_nominated(hm: HeaderMap) -> None:
    """The HTTP/1 codec removes the headers a client's `connection` nominates, except that `te`
    stays as `te: trailers` when it lists trailers (Envoy's Utility::sanitizeConnectionHeader).
    Not modelled: the 400 it answers to 10 or more tokens or to a nominated x-forwarded-*."""
    for token in (hm.get("connection") or "").split(","):
        name = token.strip().lower()
        if not name or name in CONNECTION_OPTIONS:
            continue
        te = hm.get("te") if name == "te" else None
        if te is not None and any(v.strip().lower() == "trailers" for v in te.split(",")):
            hm.set_in_place("te", "trailers")
        else:
            hm.remove(name)


def _parsed(headers: Sequence[Header]) -> list[Header]:
    """Header lines as an HTTP/1 codec parses them: each value without the spaces and tabs
    around it (RFC 9112's OWS; Envoy's codecs trim both ends, measured in 1.36 and 1.40)."""
    return [(k, v if k.startswith(":") else v.strip(" \t")) for k, v in headers]


def http_date() -> str:
    """The current time as Envoy's date header writes it (IMF-fixdate)."""
    return email.utils.formatdate(usegmt=True)


def _status(headers: HeaderMap) -> int:
    raw = headers.get(":status") or ""
    return int(raw) if raw.isascii() and raw.isdigit() else 0


@record
class EnvoySurroundings:
    """Envoy's HTTP connection manager and router around the plugin, with their settings."""

    # The HCM's server_header_transformation: OVERWRITE always sends `server: envoy`,
    # APPEND_IF_ABSENT adds it only when absent (a plugin's remove is undone), PASS_THROUGH
    # never touches server.
    server_header_transformation: ServerHeaderTransformation = "OVERWRITE"
    server_name: str = "envoy"
    route_timeout_ms: int = 15000  # x-envoy-expected-rq-timeout-ms (the default route timeout)
    upstream_service_time_ms: int = 0  # x-envoy-upstream-service-time, set by the router
    request_id: str | None = None  # x-request-id Envoy generates; None: a fresh uuid4
    date: str | None = None  # the date header Envoy adds; None: now

    def __post_init__(self) -> None:
        if self.server_header_transformation not in get_args(ServerHeaderTransformation):
            raise ValueError(
                f"server_header_transformation {self.server_header_transformation!r}: expected "
                "OVERWRITE, APPEND_IF_ABSENT or PASS_THROUGH"
            )

    def rejects(self, headers: Sequence[Header]) -> bool:
        """Whether the connection manager answers the request itself before any filter: a
        request target with a fragment (`#`) gets a 400 and a closed connection, and the
        plugin never sees the request (measured in 1.36 and 1.40)."""
        return "#" in next((v for k, v in headers if k == ":path"), "")

    def rejection(self, *, head: bool) -> tuple[int, list[Header], frozenset[str]]:
        """The client's 400 for a request the connection manager rejects (see rejects)."""
        status, wire, volatile = self.client_response(
            [(":status", "400")], head=head, end_stream=True
        )
        return status, [*wire, ("connection", "close")], volatile

    def downstream_request(self, headers: Sequence[Header]) -> tuple[list[Header], frozenset[str]]:
        """The request headers the first filter sees, and the names whose values are volatile."""
        hm = HeaderMap(_parsed(headers), "request")  # the codec joins repeated inline headers
        _remove_nominated(hm)
        for name in (*CONNECTION_HEADERS, *SANITIZED_REQUEST_HEADERS):
            hm.remove(name)
        if (te := hm.get("te")) is not None:  # only the token `trailers` (exact case) survives
            if "trailers" in (token.strip(" \t") for token in te.split(",")):
                hm.set_in_place("te", "trailers")
            else:
                hm.remove("te")
        volatile: set[str] = set()
        if hm.get("x-forwarded-proto") is None:
            hm.add("x-forwarded-proto", "http")
        if not hm.get("x-request-id"):  # absent or empty: a new id, where an empty one stood
            hm.set_in_place("x-request-id", self.request_id or str(uuid.uuid4()))
            if self.request_id is None:
                volatile.add("x-request-id")
        return hm.pairs, frozenset(volatile)

    def route_found(self, request: Sequence[Header]) -> bool:
        """Whether the route still matches after the filter (no route without x-forwarded-proto)."""
        return HeaderMap(request, "request").get("x-forwarded-proto") is not None

    def upstream_request(self, headers: Sequence[Header], *, end_stream: bool) -> UpstreamRequest:
        """What the upstream receives once the request filter passed the request on."""
        hm = HeaderMap(headers, "request")
        hm.set_in_place("x-envoy-expected-rq-timeout-ms", str(self.route_timeout_ms))
        for name in CONNECTION_HEADERS:
            hm.remove(name)
        method, path = hm.get(":method") or "", hm.get(":path") or ""
        wire = [("host" if k == ":authority" else k, v) for k, v in hm.pairs]
        wire = [(k, v) for k, v in wire if not k.startswith(":")]
        if hm.get("content-length") is None:
            if not end_stream:
                wire.append(("transfer-encoding", "chunked"))
            elif method not in BODILESS_METHODS:
                wire.append(("content-length", "0"))
        return UpstreamRequest(method, path, tuple(wire))

    def upstream_response(self, headers: Sequence[Header]) -> list[Header]:
        """The response headers the filter sees: as the upstream codec parsed them, with the
        router's service time added."""
        hm = HeaderMap(_parsed(headers), "response")
        hm.set_in_place("x-envoy-upstream-service-time", str(self.upstream_service_time_ms))
        return hm.pairs

    def client_response(
        self, headers: Sequence[Header], *, head: bool, end_stream: bool
    ) -> tuple[int, list[Header], frozenset[str]]:
        """Status and header lines the client receives after the response filter, and the
        names whose values are volatile; head: the request was HEAD, end_stream: no body."""
        hm = HeaderMap(headers, "response")
        volatile: set[str] = set()
        if hm.get("date") is None:
            hm.add("date", self.date or http_date())
            if self.date is None:
                volatile.add("date")
        sht = self.server_header_transformation
        if sht == "OVERWRITE" or (sht == "APPEND_IF_ABSENT" and hm.get("server") is None):
            hm.set_in_place("server", self.server_name)
        for name in CONNECTION_HEADERS:
            hm.remove(name)
        status = _status(hm)
        if hm.get("content-length") is None and not (100 <= status < 200 or status in (204, 304)):
            if end_stream and not head:
                hm.add("content-length", "0")
            else:
                hm.add("transfer-encoding", "chunked")
        wire = [(k, v) for k, v in hm.pairs if not k.startswith(":")]
        return status, wire, frozenset(volatile)


def envoy_source_address(headers: Sequence[Header]) -> str | None:
    """The source.address property when the request's x-forwarded-for decides it, else None
    (the connection's own address). With the connection manager's defaults
    (use_remote_address false, no trusted hops), Envoy takes the trusted client address
    from the last entry of x-forwarded-for, with port 0 (measured in 1.36.4 and 1.40.0:
    `x-forwarded-for: 10.1.2.3` gives "10.1.2.3:0")."""
    xff = [(k.lower(), v) for k, v in headers if k.lower() == "x-forwarded-for"]
    if not xff:
        return None
    ip = forwarded_ip(xff)
    return None if ip is None else f"[{ip}]:0" if ":" in ip else f"{ip}:0"
