"""`wasmgen serve`: a loopback reverse proxy that runs the compiled plugin on real traffic."""

from __future__ import annotations

import http.client
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from wasmgen.errors import HostError, WasmgenError
from wasmgen.host.vm import HttpStream, ProxyWasmHost
from wasmgen.wasm.abi import Action

Header = tuple[str, str]
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
     "trailer", "proxy-authenticate", "proxy-authorization", "http2-settings"}
)  # fmt: skip
MAX_BODY = 64 * 1024 * 1024


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


class PluginProxy(ThreadingHTTPServer):
    """Serves on 127.0.0.1; one plugin VM shared by all connections behind a lock, like one Envoy worker."""

    daemon_threads = True

    def __init__(
        self, port: int, host: ProxyWasmHost, upstream: Upstream, log: Callable[[str], None]
    ) -> None:
        self.plugin, self.upstream, self.log = host, upstream, log
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: PluginProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet the default access log; serve prints its own line per request."""

    def _request_headers(self) -> list[Header]:
        pseudo = [(":authority", self.headers.get("host", "")), (":path", self.path),
                  (":method", self.command), (":scheme", "http")]  # fmt: skip
        rest = [
            (k.lower(), v)
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP | {"host"}
        ]
        return pseudo + rest

    def _send(self, status: int, headers: list[Header], body: bytes) -> None:
        self.send_response_only(status)
        length = str(len(body))
        for k, v in headers:
            if k == "content-length" and self.command == "HEAD":
                length = v  # a HEAD reply announces the GET body's length
            elif not k.startswith(":") and k not in HOP_BY_HOP and k != "content-length":
                self.send_header(k, v)
        self.send_header("content-length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _fail(self, status: int, message: str) -> None:
        self.server.log(f"{self.command} {self.path} -> {status} {message}")
        self._send(status, [("content-type", "text/plain")], (message + "\n").encode())

    def _plugin(self, call: Callable[[], Action]) -> Action | None:
        try:
            with self.server.lock:
                return call()
        except HostError as exc:
            self._fail(500, f"plugin failed: {exc.message}")
            return None

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._fail(413, "request body too large for wasmgen serve")
            return
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            stream: HttpStream = self.server.plugin.open_stream()
        try:
            self._exchange(stream, body)
        finally:
            with self.server.lock:
                stream.finish()

    def _exchange(self, stream: HttpStream, body: bytes) -> None:
        action = self._plugin(lambda: stream.on_request_headers(self._request_headers(), not body))
        if action is None:
            return
        local = stream.local_response
        if local is not None:
            self.server.log(
                f"{self.command} {self.path} -> {local.status} (local response from the plugin)"
            )
            self._send(local.status, list(local.headers), local.body)
            return
        assert stream.request_headers is not None
        req = stream.request_headers.pairs
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.host, up.port, timeout=30)
        try:
            authority = next((v for k, v in req if k == ":authority"), "")
            path = up.base + next((v for k, v in req if k == ":path"), self.path)
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("host", authority or f"{up.host}:{up.port}")
            for k, v in req:
                if not k.startswith(":"):
                    conn.putheader(k, v)
            if body:
                conn.putheader("content-length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            resp_body = resp.read(MAX_BODY)
            resp_headers = [(":status", str(resp.status))]
            resp_headers += [
                (k.lower(), v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP
            ]
        except OSError as exc:
            self._fail(502, f"upstream {up.host}:{up.port} failed: {exc}")
            return
        finally:
            conn.close()
        if self._plugin(lambda: stream.on_response_headers(resp_headers, not resp_body)) is None:
            return
        assert stream.response_headers is not None
        out = stream.response_headers.pairs
        status = next((v for k, v in out if k == ":status"), str(resp.status))
        self.server.log(f"{self.command} {self.path} -> {status}")
        self._send(int(status) if status.isdigit() else 502, out, resp_body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle


def serve(
    host: ProxyWasmHost, upstream: str, port: int, ready: Callable[[int], None] | None = None
) -> None:
    """Run until Ctrl-C; the plugin must already have started."""

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        server = PluginProxy(port, host, Upstream(upstream), log)
    except OSError as exc:
        raise WasmgenError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="choose another --port"
        ) from None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell may start us with SIGINT ignored, and SIGTERM should stop cleanly too.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if ready is not None:
        ready(server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        with server.lock:
            host.close()
