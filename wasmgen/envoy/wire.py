"""Traffic through a real Envoy for tests: a scripted upstream that records what reaches it, and
a client that sends exactly the headers a test case declares."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wasmgen.records import record
from wasmgen.wasm.abi import Header, to_text

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
     "trailer", "proxy-authenticate", "proxy-authorization"}
)  # fmt: skip


@record
class WireResult:
    """One exchange as the wire saw it: what the upstream received and what the client got."""

    upstream_request: tuple[Header, ...] | None  # None: the request never reached the upstream
    status: int
    response: tuple[Header, ...]  # what the client received, ":status" first, names lower-case
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedUpstream
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Silent: tests read what was recorded instead."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        pseudo = [(":method", self.command), (":path", self.path)]
        received = pseudo + [
            (k.lower(), to_text(v.encode("latin-1"))) for k, v in self.headers.items()
        ]
        status, headers = self.server.take(received)
        declared = {k.lower() for k, _ in headers}
        body_length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        self.send_response_only(status)
        for k, v in headers:  # the value's UTF-8 bytes (send_header writes latin-1)
            self.send_header(k, v.encode("utf-8", "surrogateescape").decode("latin-1"))
        if "content-length" not in declared:
            self.send_header("content-length", "0")
        self.end_headers()
        if self.command != "HEAD" and body_length:
            self.wfile.write(b"x" * body_length)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer


class ScriptedUpstream(ThreadingHTTPServer):
    """An upstream on 127.0.0.1 that answers the next request as told and records it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._next: tuple[int, list[Header]] = (200, [])
        self.received: list[list[Header]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="upstream")
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def expect(self, status: int, headers: Sequence[Header]) -> None:
        """Answer the next request with status and headers (a body as long as content-length)."""
        with self._lock:
            self._next = (status, list(headers))

    def take(self, received: list[Header]) -> tuple[int, list[Header]]:
        """Record a request and return the scripted answer."""
        with self._lock:
            self.received.append(received)
            return self._next

    def close(self) -> None:
        """Stop serving."""
        self.shutdown()
        self.server_close()


def send(
    port: int, request: Sequence[Header], timeout: float = 30.0
) -> tuple[int, list[Header], bytes]:
    """Send one HTTP/1.1 request built from pseudo-headers and headers; (status, headers, body)."""
    pseudo = {k: v for k, v in request if k.startswith(":")}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        method = pseudo.get(":method", "GET")
        conn.putrequest(method, pseudo.get(":path", "/"), skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", pseudo.get(":authority", "localhost"))
        for k, v in request:
            if not k.startswith(":"):
                conn.putheader(k, v.encode("utf-8", "surrogateescape"))
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read() if method != "HEAD" else b""
        headers = [(k.lower(), to_text(v.encode("latin-1"))) for k, v in resp.getheaders()]
        return resp.status, headers, body
    finally:
        conn.close()


def exchange(
    port: int, upstream: ScriptedUpstream, request: Sequence[Header], response: Sequence[Header]
) -> WireResult:
    """One request through Envoy to the scripted upstream, which answers with response."""
    status_text = next((v for k, v in response if k == ":status"), "200")
    upstream.expect(
        int(status_text) if status_text.isdigit() else 200,
        [(k, v) for k, v in response if not k.startswith(":")],
    )
    before = len(upstream.received)
    status, headers, body = send(port, request)
    reached = upstream.received[before] if len(upstream.received) > before else None
    return WireResult(
        tuple(reached) if reached is not None else None,
        status,
        ((":status", str(status)), *headers),
        body,
    )
