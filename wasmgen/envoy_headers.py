"""Facts about Envoy's HTTP header maps that several stages need (the reference model, the
embedded host, the backends' tests): which headers Envoy joins instead of repeating, where it
takes the client's address from, and the wall clock the test hosts stand in for Envoy's with."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

# The wall clock, in seconds, of every test host (the embedded host, the generated Go tests'
# hosts, the reference model): 2022-01-01T00:00:00Z, which the proxy-wasm Go SDK's wazero host
# gives and cannot be told otherwise. Real Envoy's clock runs; `test --envoy` compares the
# headers a ${time.*} value writes by presence.
TEST_CLOCK = 1640995200

# Envoy's O(1) "inline" headers: HeaderMapImpl::insertByKey (addCopy, and the HTTP/1 codec's
# addViaMove) joins a second value of one of these onto the existing entry with "," instead of
# adding an entry. The sets differ per map. Source: what `envoy -l info` prints at startup as
# "HTTP header map info" (HeaderMapImplUtility::getAllHeaderMapImplInfo(), server.cc),
# identical in Envoy 1.36.4, 1.38.2 and 1.40.0; they come from the INLINE_REQ_*/INLINE_RESP_*
# macros of envoy/http/header_map.h plus the headers extensions register through
# CustomInlineHeaderRegistry (accept, cache-control, vary, etag, access-control-*, ...).
# `cookie` (which would join with "; "), `set-cookie`, `forwarded`, `link` are not inline.
INLINE_REQUEST_HEADERS = frozenset(
    {
        ":authority", ":method", ":path", ":protocol", ":scheme", "accept", "accept-encoding",
        "access-control-request-headers", "access-control-request-method",
        "access-control-request-private-network", "authentication", "authorization", "cache-control",
        "cdn-loop", "connection", "content-encoding", "content-length", "content-type", "expect",
        "grpc-accept-encoding", "grpc-timeout", "if-match", "if-modified-since", "if-none-match",
        "if-range", "if-unmodified-since", "keep-alive", "origin", "pragma", "proxy-connection",
        "proxy-status", "referer", "te", "transfer-encoding", "upgrade", "user-agent", "via",
        "x-client-trace-id", "x-envoy-attempt-count", "x-envoy-decorator-operation",
        "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
        "x-envoy-expected-rq-timeout-ms", "x-envoy-external-address", "x-envoy-force-trace",
        "x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags",
        "x-envoy-is-timeout-retry", "x-envoy-max-retries", "x-envoy-original-host",
        "x-envoy-original-path", "x-envoy-original-url", "x-envoy-retriable-header-names",
        "x-envoy-retriable-status-codes", "x-envoy-retry-grpc-on", "x-envoy-retry-on",
        "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-per-try-timeout-ms",
        "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-upstream-stream-duration-ms", "x-forwarded-client-cert", "x-forwarded-for",
        "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto", "x-request-id",
    }
)  # fmt: skip
INLINE_RESPONSE_HEADERS = frozenset(
    {
        ":status", "access-control-allow-credentials", "access-control-allow-headers",
        "access-control-allow-methods", "access-control-allow-origin",
        "access-control-allow-private-network", "access-control-expose-headers",
        "access-control-max-age", "age", "cache-control", "connection", "content-encoding",
        "content-length", "content-type", "date", "etag", "expires", "grpc-message", "grpc-status",
        "keep-alive", "last-modified", "location", "proxy-connection", "proxy-status", "server",
        "transfer-encoding", "upgrade", "vary", "via", "x-envoy-attempt-count",
        "x-envoy-decorator-operation", "x-envoy-degraded", "x-envoy-immediate-health-check-fail",
        "x-envoy-ratelimited", "x-envoy-upstream-canary", "x-envoy-upstream-healthchecked-cluster",
        "x-envoy-upstream-service-time", "x-request-id",
    }
)  # fmt: skip
_INLINE: dict[str, frozenset[str]] = {
    "request": INLINE_REQUEST_HEADERS,
    "response": INLINE_RESPONSE_HEADERS,
}


def inline_headers(kind: str) -> frozenset[str]:
    """Envoy's inline header names for a request or response header map (none for "plain")."""
    return _INLINE.get(kind, frozenset())


def join_inline(existing: str, value: str) -> str:
    """HeaderMapImpl::appendToHeader with the "," delimiter: an empty value adds nothing, and an
    empty entry takes the value without a delimiter."""
    if not value:
        return existing
    return f"{existing},{value}" if existing else value


def forwarded_ip(request: Sequence[tuple[str, str]]) -> str | None:
    """The last x-forwarded-for entry when it is an IP address (normalised), else None: the
    client address Envoy gives as source.address with its default settings (use_remote_address
    false, no trusted hops; measured in 1.36 and 1.40, docs/envoy-behaviour.md)."""
    xff = [v for k, v in request if k == "x-forwarded-for"]
    last = xff[-1].rsplit(",", 1)[-1].strip(" \t") if xff else ""
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None
