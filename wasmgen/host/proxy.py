"""`wasmgen serve --proxy embedded`: a loopback HTTP/1.1 reverse proxy running the plugin on real traffic.

A request head is read strictly (wasmgen.host.http1: a bad one gets 400/431/501/426 and the
connection closes, as from Envoy's codec) and its headers pass the plugin's request callback.
The request streams to the upstream with one framing header (content-length, or chunked as
sent); the response head passes the response callback and its body streams back (with its
content-length, else chunked): no body is held whole. ``Expect: 100-continue`` is answered at
once and not forwarded, as Envoy does. Header bytes pass unchanged; the plugin sees to_text.

Failures are Envoy's: 502 (upstream unreachable or invalid), 503 (closed before a response),
504 and 408 (timeouts), 500 (the plugin failed); after the request callback they pass the
response callback like Envoy's local replies. A body cut short on one side is never completed
on the other: that connection is closed mid-message. One log line per exchange, no traceback.
"""

from __future__ import annotations

import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from wasmgen.errors import HostError, WasmgenError
from wasmgen.host import http1
from wasmgen.host.envoy_rules import BODILESS_METHODS
from wasmgen.host.http1 import Conn, Framing, HttpError, Incomplete
from wasmgen.host.vm import HttpStream, ProxyWasmHost
from wasmgen.proc import Terminated
from wasmgen.records import record
from wasmgen.wasm.abi import Action, to_bytes, to_text

Header = tuple[str, str]
_T = TypeVar("_T")


@record
class Limits:
    """Timeouts (seconds) and the connection cap."""

    max_connections: int = 128  # more concurrent client connections are refused with 503
    idle_timeout: float = 60.0  # an open connection may wait this long for its next request
    header_timeout: float = 15.0  # from a request's first byte to the end of its headers
    body_timeout: float = 30.0  # a client may stall this long sending a body or reading ours
    connect_timeout: float = 5.0  # to connect to the upstream
    upstream_timeout: float = 30.0  # the upstream may stall this long while we send or it answers


class Upstream:
    """Where requests go after the plugin: http://host:port[/base]."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise WasmgenError(
                f"--upstream {url!r} must be an http:// URL", hint="e.g. http://127.0.0.1:8000"
            )
        self.host, self.port = parts.hostname, parts.port or 80
        self.base = parts.path.rstrip("/")


class PluginProxy(socketserver.ThreadingTCPServer):
    """Serves on 127.0.0.1; one plugin VM shared by all connections behind a lock, like one Envoy worker."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: bursts of connections are not dropped

    def __init__(self, port: int, host: ProxyWasmHost, upstream: Upstream,
                 log: Callable[[str], None], limits: Limits | None = None) -> None:  # fmt: skip
        self.plugin, self.upstream, self.log = host, upstream, log
        self.limits = limits or Limits()
        self.lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self.in_flight = threading.Condition()  # exchanges under way; stopping waits for them
        self.running = 0
        super().__init__(("127.0.0.1", port), _Connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.log(f"connection from {_peer(client_address)} -> 503 (too many connections)")
            Conn(request).reply(503, "too many connections", head=False, timeout=1.0)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.log(f"connection from {_peer(client_address)}: {sys.exc_info()[1]!r}")


class _Connection(socketserver.BaseRequestHandler):
    server: PluginProxy

    def handle(self) -> None:
        try:
            _serve_connection(self.server, Conn(self.request))
        except Exception as exc:  # never a traceback from a connection: one line instead
            self.server.log(f"connection from {_peer(self.client_address)}: {exc!r}")


def _peer(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _serve_connection(proxy: PluginProxy, client: Conn) -> None:
    """Requests on one client connection, one after the other, until it closes."""
    limits = proxy.limits
    while True:
        try:
            if not client.buf and not client.fill(limits.idle_timeout):
                return
            request = http1.parse_request(client.read_head(limits.header_timeout))
        except HttpError as exc:
            proxy.log(f"bad request -> {exc.status} ({exc.reason})")
            client.reply(exc.status, exc.reason, head=False, timeout=limits.body_timeout)
            return
        except Incomplete as exc:
            proxy.log(f"incomplete request -> no reply (client {exc})")
            return
        except OSError as exc:  # idle too long, or a reset: quiet unless a request had begun
            if client.buf and isinstance(exc, TimeoutError):
                proxy.log("incomplete request -> 408 (request header timeout)")
                client.reply(408, "request header timeout", False, limits.body_timeout)
            elif client.buf:
                proxy.log(f"incomplete request -> no reply ({exc!r})")
            return
        if not _Exchange(proxy, client, request).run():
            return


def _first_line(exc: HostError) -> str:
    return (exc.message.splitlines() or [""])[0]


class _Done(Exception):
    """The exchange ended early; its reply (if any) has been sent."""


class _Exchange:
    """One request on a client connection: through the plugin to the upstream and back."""

    def __init__(self, proxy: PluginProxy, client: Conn, request: http1.Request) -> None:
        self.proxy, self.client, self.request, self.limits = proxy, client, request, proxy.limits
        self.head = request.method == "HEAD"
        self.close = b"close" in http1.tokens(request.fields, b"connection")
        self.request_done = False  # the request body was read to its end
        self.frame = Framing("none")
        self.stream: HttpStream | None = None
        self.status: int | None = None
        self.notes: list[str] = []

    def run(self) -> bool:
        """Serve the exchange and log it; True when the connection may carry another request."""
        with self.proxy.in_flight:
            self.proxy.running += 1
        try:
            return self._logged()
        finally:
            with self.proxy.in_flight:
                self.proxy.running -= 1
                self.proxy.in_flight.notify_all()

    def _logged(self) -> bool:
        try:
            self._run()
        except _Done:
            pass
        except OSError as exc:  # the client's socket; upstream errors are handled where they occur
            self.close = True
            self.notes.append(f"client connection failed: {exc!r}")
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        target = self.request.target[:200].decode()
        self.proxy.log(f"{self.request.method} {target} -> {self.status or 'no reply'}{notes}")
        return not self.close

    def _run(self) -> None:
        request = self.request
        try:
            self.frame = http1.framing(request.fields)
            authority, path = http1.request_target(request)
        except HttpError as exc:
            self._reply_direct(exc.status, exc.reason)
        self.request_done = self.frame.empty
        if b"100-continue" in http1.tokens(request.fields, b"expect") and not self.frame.empty:
            self.client.send(http1.CONTINUE, self.limits.body_timeout)
        drop = http1.hop_by_hop(request.fields) | {b"host"}
        pairs = [(":authority", to_text(authority)), (":path", to_text(path)),
                 (":method", request.method), (":scheme", "http")]  # fmt: skip
        pairs += [(to_text(k), to_text(v)) for k, v in request.fields
                  if k not in drop and (k, v.lower()) != (b"expect", b"100-continue")]  # fmt: skip
        self.stream = stream = self._plugin(self.proxy.plugin.open_stream)
        try:
            action = self._plugin(lambda: stream.on_request_headers(pairs, self.frame.empty))
            if stream.local_reply is not None:
                self.notes.append("local response from the plugin")
                self._send_local(stream)
                return
            if action == Action.PAUSE:
                self.notes.append("the plugin paused the request; the embedded host continues it")
            self._forward(stream)
        finally:
            with self.proxy.lock:
                try:
                    stream.finish()
                except HostError as exc:
                    self.notes.append(f"plugin failed at the end of the stream: {_first_line(exc)}")

    def _plugin(self, call: Callable[[], _T]) -> _T:
        """A call into the plugin, under the VM's lock; a failure is a 500."""
        try:
            with self.proxy.lock:
                return call()
        except HostError as exc:
            self._reply_direct(500, f"plugin failed: {_first_line(exc)}")

    # -- replies --------------------------------------------------------------------------

    def _reply_direct(self, status: int, message: str) -> NoReturn:
        """A reply of the proxy's own that bypasses the plugin; closes the connection."""
        self.status, self.close = status, True
        self.notes.append(message)
        self.client.reply(status, message, self.head, self.limits.body_timeout)
        raise _Done

    def _error(self, status: int, message: str) -> NoReturn:
        """Envoy's local reply after the request callback: through the response callback."""
        stream = self.stream
        if stream is None or stream.response_headers is not None or stream.local_reply is not None:
            self._reply_direct(status, message)
        self.notes.append(message)
        self._plugin(lambda: stream.send_local_reply(status, body=(message + "\n").encode()))
        self._send_local(stream)
        raise _Done

    def _send_local(self, stream: HttpStream) -> None:
        assert stream.local_reply is not None
        status = http1.final_status(stream.local_reply.get(":status") or "")
        if status is None:
            self._reply_direct(500, f"the plugin replied with {stream.local_reply.get(':status')}")
        self._respond(status, stream.local_reply.pairs, stream.local_reply_body or b"")

    def _respond(
        self, status: int, pairs: Sequence[Header], body: bytes | tuple[Iterator[bytes], Framing]
    ) -> None:
        """Send a response: a whole body, or one streamed from the upstream."""
        self.close = self.close or not self.request_done
        no_body = self.head or status < 200 or status in (204, 304)
        try:
            fields = http1.wire_fields(pairs)
        except HttpError as exc:
            self._reply_direct(500, exc.reason)
        announced = to_bytes(http1.value(pairs, "content-length"))
        frame = body[1] if isinstance(body, tuple) else Framing("length", len(body))
        if not no_body:
            fields += http1.framing_fields(frame)
        elif status != 204 and http1.valid_length(announced):
            fields.append((b"content-length", announced))  # HEAD: the GET body's length
        if self.close:
            fields.append((b"connection", b"close"))
        self.status = status
        head = http1.encode_head(http1.status_line(status), fields)
        if isinstance(body, bytes):
            self._send(head + (b"" if no_body else body))
            return
        self._send(head)
        chunked = frame.kind in ("chunked", "close")
        while not no_body:
            try:
                piece = next(body[0], None)
            except (HttpError, Incomplete, OSError) as exc:
                self.close = True
                reason = exc.reason if isinstance(exc, HttpError) else str(exc) or repr(exc)
                self.notes.append(f"upstream body cut short ({reason}); client connection closed")
                return
            if piece is None:
                self._send(http1.LAST_CHUNK if chunked else b"")
                return
            self._send(http1.chunk(piece) if chunked else piece)

    def _send(self, data: bytes) -> None:
        if data:
            self.client.send(data, self.limits.body_timeout)

    # -- the upstream ---------------------------------------------------------------------

    def _forward(self, stream: HttpStream) -> None:
        assert stream.request_headers is not None
        pairs, up = stream.request_headers.pairs, self.proxy.upstream
        method, path = http1.value(pairs, ":method"), to_bytes(http1.value(pairs, ":path"))
        if method not in http1.METHODS or not http1.valid_target(path):
            self._reply_direct(500, f"the plugin set :method {method!r} or :path {path[:40]!r}")
        try:
            fields = http1.wire_fields([("host", http1.value(pairs, ":authority")), *pairs])
        except HttpError as exc:
            self._reply_direct(500, exc.reason)
        if not fields[0][1]:  # no :authority: the upstream's own
            fields[0] = (b"host", f"{up.host}:{up.port}".encode())
        if self.frame.kind != "none" or method not in BODILESS_METHODS:
            fields += http1.framing_fields(self.frame)
        line = method.encode() + b" " + up.base.encode() + path + b" HTTP/1.1"
        try:
            sock = socket.create_connection((up.host, up.port), self.limits.connect_timeout)
        except OSError as exc:
            self._error(502, f"upstream {up.host}:{up.port} failed: {exc.strerror or exc!r}")
        with sock:  # closing it leaves whatever we did not finish visibly unfinished
            upstream = Conn(sock)
            self._send_request(upstream, http1.encode_head(line, fields))
            self._response(stream, upstream, method)

    def _send_request(self, upstream: Conn, head: bytes) -> None:
        """Stream the request to the upstream. Client failures end the exchange; an upstream
        that stops reading only ends the sending (it may still answer, e.g. 413)."""
        pieces = http1.body(self.client, self.frame, self.limits.body_timeout)
        data, chunked = head, self.frame.kind == "chunked"
        while data:
            try:
                upstream.send(data, self.limits.upstream_timeout)
            except OSError as exc:
                self.notes.append(f"upstream stopped reading the request ({exc!r})")
                return
            if self.request_done:
                return
            try:
                piece = next(pieces, None)
            except HttpError as exc:
                self._error(exc.status, exc.reason)
            except TimeoutError:
                self._error(408, "request body timeout")
            except (Incomplete, OSError) as exc:
                self.close = True
                self.notes.append(
                    f"client closed mid-body ({exc!r}); upstream request left incomplete"
                )
                raise _Done from None
            if piece is None:
                self.request_done = True
                data = http1.LAST_CHUNK if chunked else b""
            else:
                data = http1.chunk(piece) if chunked else piece

    def _response(self, stream: HttpStream, upstream: Conn, method: str) -> None:
        timeout = self.limits.upstream_timeout
        try:
            response, frame = http1.read_response(upstream, timeout, method)
        except TimeoutError:
            self._error(504, "upstream timed out")
        except (Incomplete, OSError) as exc:
            self._error(503, f"upstream closed the connection before a response ({exc})")
        except HttpError as exc:
            self._error(502, f"invalid upstream response: {exc.reason}")
        drop = http1.hop_by_hop(response.fields)
        pairs = [(":status", str(response.status))]
        pairs += [(to_text(k), to_text(v)) for k, v in response.fields if k not in drop]
        action = self._plugin(lambda: stream.on_response_headers(pairs, frame.empty))
        if stream.local_reply is not None:
            self.notes.append("local response from the plugin")
            self._send_local(stream)
            return
        if action == Action.PAUSE:
            self.notes.append("the plugin paused the response; the embedded host continues it")
        assert stream.response_headers is not None
        out = stream.response_headers.pairs
        status = http1.final_status(http1.value(out, ":status"))
        if status is None:
            self._reply_direct(500, f"the plugin set :status {http1.value(out, ':status')!r}")
        self._respond(status, out, (http1.body(upstream, frame, timeout), frame))


def serve(
    host: ProxyWasmHost,
    upstream: str,
    port: int,
    ready: Callable[[int], None] | None = None,
    *,
    limits: Limits | None = None,
) -> None:
    """Run until Ctrl-C (KeyboardInterrupt) or SIGTERM (Terminated); the plugin must already
    have started."""

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        server = PluginProxy(port, host, Upstream(upstream), log, limits)
    except OSError as exc:
        raise WasmgenError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="choose another --port"
        ) from None

    def stop(signum: int, frame: object) -> None:
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    # Explicit handlers: a shell may start us with SIGINT ignored, and SIGTERM should stop cleanly too.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if ready is not None:
        ready(server.server_address[1])
    try:  # Ctrl-C and SIGTERM propagate after the cleanup, for the caller's exit code
        server.serve_forever(poll_interval=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with server.in_flight:  # an exchange under way finishes, and is logged, before we stop
            server.in_flight.wait_for(lambda: server.running == 0, timeout=5.0)
        server.server_close()
        with server.lock:
            host.close()
