"""The embedded proxy (`wasmgen serve --proxy embedded`) on the wire: real sockets on both sides.

Each test runs wasmgen.host.proxy.PluginProxy in this process with tests/plugins/rawabi (a
plugin scripted by its configuration), between a raw client socket and a loopback upstream
written here that records every byte it receives and answers byte for byte as told.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from wasmgen.host import ProxyWasmHost
from wasmgen.host.proxy import Limits, PluginProxy, Upstream

pytestmark = pytest.mark.slow  # builds the Go fixture plugin

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
MiB = 1024 * 1024


class Wire:
    """A socket with a read buffer, for both ends the tests play."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _more(self) -> bool:
        data = self.sock.recv(256 * 1024)
        self.buf += data
        return bool(data)

    def until(self, sep: bytes) -> bytes | None:
        """Bytes up to and including sep; None if the peer closed first."""
        while sep not in self.buf:
            if not self._more():
                return None
        end = self.buf.index(sep) + len(sep)
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def exactly(self, n: int, sink: Callable[[bytes], None]) -> bool:
        """Pass n bytes to sink in pieces; False if the peer closed first."""
        while n > 0:
            if not self.buf and not self._more():
                return False
            piece, self.buf = self.buf[:n], self.buf[n:]
            sink(piece)
            n -= len(piece)
        return True

    def to_eof(self, sink: Callable[[bytes], None]) -> None:
        while self.buf or self._more():
            sink(self.buf)
            self.buf = b""

    def closed(self, timeout: float = 5, drain: bool = False) -> bool:
        """The peer closed its side with nothing more to read (drain: after whatever it sent)."""
        self.sock.settimeout(timeout)
        try:
            while self._more():
                if not drain:
                    return False
            return drain or not self.buf
        except TimeoutError:
            return False
        except OSError:
            return True


@dataclass
class Message:
    """One HTTP/1.1 message as it arrived."""

    start: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    digest: Any = field(default_factory=hashlib.sha256)

    def values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    @property
    def status(self) -> int:
        return int(self.start.split(b" ")[1])


def read_message(
    wire: Wire, response: bool = False, head: bool = False, keep: bool = True
) -> Message | None:
    """Read one message by RFC 9112 framing (keep=False hashes the body instead of keeping it)."""
    raw = wire.until(b"\r\n\r\n")
    if raw is None:
        return None
    start, *lines = raw[:-4].split(b"\r\n")
    msg = Message(
        start, [(k.lower(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines)]
    )

    def sink(data: bytes) -> None:
        msg.digest.update(data)
        if keep:
            msg.body += data

    if response and (head or msg.status < 200 or msg.status in (204, 304)):
        msg.complete = True
    elif b"chunked" in msg.values(b"transfer-encoding"):
        while (size_line := wire.until(b"\r\n")) is not None:
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                msg.complete = wire.until(b"\r\n") is not None  # no trailers here
                break
            if not wire.exactly(size, sink) or wire.until(b"\r\n") is None:
                break
    elif msg.values(b"content-length"):
        msg.complete = wire.exactly(int(msg.values(b"content-length")[0]), sink)
    elif response:
        wire.to_eof(sink)
        msg.complete = True
    else:
        msg.complete = True
    return msg


class RawUpstream:
    """A loopback upstream: records each request (one per connection) and answers as told."""

    def __init__(
        self, answer: bytes | Callable[[Wire, Message], None] = OK, keep: bool = True
    ) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.answer, self.keep, self.requests = answer, keep, list[Message]()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(20)
            wire = Wire(sock)
            try:
                msg = read_message(wire, keep=self.keep)
                if msg is None:
                    return
                self.requests.append(msg)
                if not msg.complete:
                    return
                if callable(self.answer):
                    self.answer(wire, msg)
                else:
                    sock.sendall(self.answer)
            except OSError:  # the proxy went away: that is what some tests do
                return

    def close(self) -> None:
        self.server.close()


@dataclass
class Proxy:
    """A client of a running proxy (and, in this process, its log lines and plugin host)."""

    port: int
    lines: list[str] = field(default_factory=list)
    host: ProxyWasmHost | None = None

    def plugin_logs(self) -> str:
        assert self.host is not None
        return " ".join(self.host.logs())

    def connect(self) -> Wire:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.settimeout(10)
        return Wire(sock)

    def send(self, raw: bytes, head: bool = False) -> tuple[Message | None, Wire]:
        """One request on a new connection; the response (None if the connection closed)."""
        wire = self.connect()
        wire.sock.sendall(raw)
        return read_message(wire, response=True, head=head), wire

    def wait_log(self, count: int = 1, timeout: float = 5) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.lines


@contextmanager
def proxy_for(
    wasm: bytes, script: bytes | str, upstream: str, limits: Limits | None = None
) -> Iterator[Proxy]:
    """PluginProxy on a free port with rawabi running script, in a thread of this process."""
    host = ProxyWasmHost(wasm, plugin_config=script.encode() if isinstance(script, str) else script)
    assert host.start()
    lines: list[str] = []
    server = PluginProxy(
        0, host, Upstream(upstream), lines.append, **({"limits": limits} if limits else {})
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Proxy(server.server_address[1], lines, host)
    finally:
        server.shutdown()
        server.server_close()
        with server.lock:
            host.close()


@pytest.fixture
def upstream() -> Iterator[RawUpstream]:
    up = RawUpstream()
    yield up
    up.close()


def get(path: str = "/", extra: bytes = b"", method: bytes = b"GET") -> bytes:
    return method + b" " + path.encode() + b" HTTP/1.1\r\nHost: example.test\r\n" + extra + b"\r\n"


# -- 1. bodies stream, and a truncated body never looks complete ---------------------------


def _big_answer(size: int, chunked: bool) -> Callable[[Wire, Message], None]:
    block = bytes(range(256)) * 4096  # 1 MiB

    def answer(wire: Wire, msg: Message) -> None:
        if chunked:
            wire.sock.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(size // len(block)):
                wire.sock.sendall(b"%x\r\n%b\r\n" % (len(block), block))
            wire.sock.sendall(b"0\r\n\r\n")
        else:
            wire.sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            for _ in range(size // len(block)):
                wire.sock.sendall(block)

    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_response_over_64_mib_streams_whole_in_bounded_memory(
    raw_wasm: bytes, chunked: bool
) -> None:
    size = 66 * MiB
    up = RawUpstream(_big_answer(size, chunked))
    expected = hashlib.sha256(bytes(range(256)) * 4096 * 66).hexdigest()
    with proxy_for(raw_wasm, "resp add x-down 1", up.url) as proxy:
        tracemalloc.start()
        try:
            wire = proxy.connect()
            wire.sock.sendall(get("/big"))
            reply = read_message(wire, response=True, keep=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert reply is not None and reply.status == 200 and reply.complete
    assert reply.values(b"x-down") == [b"1"]
    framing = reply.values(b"transfer-encoding") if chunked else reply.values(b"content-length")
    assert framing == ([b"chunked"] if chunked else [b"%d" % size])
    assert reply.digest.hexdigest() == expected
    assert peak < 16 * MiB, f"the proxy held {peak / MiB:.0f} MiB"
    up.close()


def test_a_large_request_body_streams_to_the_upstream(raw_wasm: bytes) -> None:
    block, count = bytes(range(256)) * 4096, 80  # 80 MiB
    up = RawUpstream(keep=False)
    with proxy_for(raw_wasm, "", up.url) as proxy:
        tracemalloc.start()
        try:
            wire = proxy.connect()
            wire.sock.sendall(get("/up", b"Content-Length: %d\r\n" % (len(block) * count), b"PUT"))
            for _ in range(count):
                wire.sock.sendall(block)
            reply = read_message(wire, response=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert reply is not None and reply.status == 200
    (seen,) = up.requests
    assert seen.values(b"content-length") == [b"%d" % (len(block) * count)] and seen.complete
    assert seen.digest.hexdigest() == hashlib.sha256(block * count).hexdigest()
    assert peak < 16 * MiB, f"the proxy held {peak / MiB:.0f} MiB"
    up.close()


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n7 bytes",
     b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\n7 bytes\r\n"],
    ids=["content-length", "chunked"],
)  # fmt: skip
def test_a_truncated_upstream_body_is_never_complete(raw_wasm: bytes, answer: bytes) -> None:
    up = RawUpstream(answer)  # sends the answer, then closes
    with proxy_for(raw_wasm, "", up.url) as proxy:
        reply, wire = proxy.send(get("/short"))
        assert reply is not None and reply.status == 200
        assert not reply.complete, "the client must see the body cut short"
        assert bytes(reply.body) == b"7 bytes" and wire.closed()
        assert "cut short" in proxy.wait_log()[0]
    up.close()


# -- 2. and 3. request framing: chunked bodies, one content-length, no desync --------------


def test_a_chunked_request_is_forwarded_and_the_next_request_stays_in_step(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    chunked = (
        b"POST /upload HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x;ext=1\r\n%b\r\n" % (len(smuggled), smuggled)
        + b"3\r\nend\r\n0\r\nx-trailer: 1\r\n\r\n"
    )
    with proxy_for(raw_wasm, "", upstream.url) as proxy:
        wire = proxy.connect()
        wire.sock.sendall(chunked + get("/second"))
        first, second = read_message(wire, True), read_message(wire, True)
    assert first is not None and second is not None and first.status == second.status == 200
    post, after = upstream.requests
    assert post.start == b"POST /upload HTTP/1.1" and post.complete
    assert post.values(b"transfer-encoding") == [b"chunked"] and not post.values(b"content-length")
    assert bytes(post.body) == smuggled + b"end"
    assert after.start == b"GET /second HTTP/1.1"
    assert len(upstream.requests) == 2, "no request was parsed out of the body"


def test_the_upstream_sees_exactly_one_content_length(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    with proxy_for(raw_wasm, "", upstream.url) as proxy:
        reply, _ = proxy.send(get("/post", b"Content-Length: 5\r\n", b"POST") + b"hello")
    assert reply is not None and reply.status == 200
    (seen,) = upstream.requests
    assert seen.values(b"content-length") == [b"5"] and bytes(seen.body) == b"hello"
    assert not seen.values(b"transfer-encoding")


@pytest.mark.parametrize(
    ("framing", "status"),
    [(b"Content-Length: 5\r\nContent-Length: 5\r\n", 400),
     (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
     (b"Content-Length: 5, 5\r\n", 400),
     (b"Content-Length: abc\r\n", 400),
     (b"Content-Length: +5\r\n", 400),
     (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
     (b"Transfer-Encoding: gzip, chunked\r\n", 501),
     (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501)],
)  # fmt: skip
def test_ambiguous_request_framing_is_refused_and_closed(
    raw_wasm: bytes,
    upstream: RawUpstream,
    capfd: pytest.CaptureFixture[str],
    framing: bytes,
    status: int,
) -> None:
    with proxy_for(raw_wasm, "", upstream.url) as proxy:
        reply, wire = proxy.send(get("/x", framing, b"POST") + b"hello")
        assert reply is not None and reply.status == status
        assert reply.values(b"connection") == [b"close"] and wire.closed()
        assert len(proxy.wait_log()) == 1 and f"-> {status}" in proxy.lines[0]
        assert "request headers" not in proxy.plugin_logs(), "the plugin never saw it"
    assert upstream.requests == [] and upstream.connections == 0
    assert "Traceback" not in capfd.readouterr().err


# -- 4. Expect: 100-continue ---------------------------------------------------------------


def test_expect_100_continue_is_answered_before_the_body_and_not_forwarded(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    with proxy_for(raw_wasm, "", upstream.url) as proxy:
        wire = proxy.connect()
        wire.sock.sendall(get("/put", b"Content-Length: 5\r\nExpect: 100-continue\r\n", b"PUT"))
        wire.sock.settimeout(3)
        interim = read_message(wire, response=True)  # before the body is sent
        assert interim is not None and interim.start == b"HTTP/1.1 100 Continue"
        wire.sock.sendall(b"hello")
        reply = read_message(wire, response=True)
    assert reply is not None and reply.status == 200
    (seen,) = upstream.requests
    assert not seen.values(b"expect") and bytes(seen.body) == b"hello"


# -- 5. header bytes pass unchanged (obs-text), the plugin sees them as text ----------------


def test_non_ascii_header_bytes_round_trip(raw_wasm: bytes) -> None:
    # x-set: UTF-8 and one byte that is not; x-seen: what the plugin read from x-in
    script = b"req get x-in x-seen\nreq add x-set caf\xc3\xa9\xff\nresp add x-resp-set \xe2\x9c\x93"
    up = RawUpstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-up: \xff caf\xc3\xa9\r\n\r\nok")
    with proxy_for(raw_wasm, script, up.url) as proxy:
        reply, _ = proxy.send(get("/", b"X-In: caf\xc3\xa9 \xff\xfe\x80\r\n"))
        again, _ = proxy.send(get("/"))
    assert reply is not None and reply.status == 200 and bytes(reply.body) == b"ok"
    assert again is not None and again.status == 200, "later requests are not broken"
    assert reply.values(b"x-up") == [b"\xff caf\xc3\xa9"]
    assert reply.values(b"x-resp-set") == ["\u2713".encode()]
    seen = up.requests[0]
    assert seen.values(b"x-in") == [b"caf\xc3\xa9 \xff\xfe\x80"]
    assert seen.values(b"x-seen") == [b"0:caf\xc3\xa9 \xff\xfe\x80"], (
        "the plugin read the same bytes"
    )
    assert seen.values(b"x-set") == [b"caf\xc3\xa9\xff"]
    up.close()


# -- 6. malformed request heads: 400 (or 431) and close, as Envoy's codec -------------------


@pytest.mark.parametrize(
    ("head", "status"),
    [(get("/", b"X-A: 1\rinjected: 1\r\n"), 400),
     (get("/", b"X-A: a\x00b\r\n"), 400),
     (get("/", b"X-A: a\x7fb\r\n"), 400),
     (get("/", b"X-A: a\r\n folded\r\n"), 400),
     (get("/", b"X A: 1\r\nX-B: 2\r\n"), 400),
     (get("/", b"X-A : 1\r\n"), 400),
     (get("/", b": empty\r\n"), 400),
     (get("/", b"no colon\r\n"), 400),
     (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
     (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
     (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
     (b"GET / HTTP/1.1\r\n\r\n", 400),
     (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
     (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 426),
     (get("/", b"".join(b"x-h%d: v\r\n" % i for i in range(100))), 431),
     (get("/", b"x-big: " + b"a" * 61 * 1024 + b"\r\n"), 431)],
    ids=["bare-cr", "nul", "del", "obs-fold", "space-in-name", "space-before-colon", "empty-name",
         "no-colon", "space-in-target", "utf8-target", "unknown-method", "no-host", "two-hosts",
         "http-1.0", "101-headers", "61-kib"],
)  # fmt: skip
def test_malformed_request_heads_are_refused_and_closed(
    raw_wasm: bytes,
    upstream: RawUpstream,
    capfd: pytest.CaptureFixture[str],
    head: bytes,
    status: int,
) -> None:
    with proxy_for(raw_wasm, "req add x-up 1", upstream.url) as proxy:
        reply, wire = proxy.send(head)
        assert reply is not None and reply.status == status and wire.closed()
        assert len(proxy.wait_log()) == 1 and f"-> {status} (" in proxy.lines[0]
        assert "request headers" not in proxy.plugin_logs()
    assert upstream.requests == [] and upstream.connections == 0
    assert "Traceback" not in capfd.readouterr().err


def test_what_envoy_accepts_passes(raw_wasm: bytes, upstream: RawUpstream) -> None:
    """Bare LF line ends, empty lines before the request, HTAB in a value, an absolute URL."""
    with proxy_for(raw_wasm, "", upstream.url) as proxy:
        for raw in (b"GET /lf HTTP/1.1\nHost: x\nX-A: 1\n\n", b"\r\n" + get("/crlf"),
                    get("/tab", b"X-A: a\tb\r\n"), b"GET http://h:1/abs?q HTTP/1.1\r\nHost: x\r\n\r\n"):  # fmt: skip
            reply, _ = proxy.send(raw)
            assert reply is not None and reply.status == 200, raw
    starts = [r.start for r in upstream.requests]
    assert starts == [
        b"GET /lf HTTP/1.1",
        b"GET /crlf HTTP/1.1",
        b"GET /tab HTTP/1.1",
        b"GET /abs?q HTTP/1.1",
    ]
    assert upstream.requests[2].values(b"x-a") == [b"a\tb"]
    assert upstream.requests[3].values(b"host") == [b"h:1"]


# -- 7. timeouts and the connection cap ----------------------------------------------------

FAST = Limits(max_connections=8, idle_timeout=0.5, header_timeout=0.5, body_timeout=0.5,
              connect_timeout=1.0, upstream_timeout=0.5)  # fmt: skip


def test_a_slow_request_head_gets_408_and_an_idle_connection_is_closed(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    with proxy_for(raw_wasm, "", upstream.url, FAST) as proxy:
        idle, slow = proxy.connect(), proxy.connect()
        slow.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never ends
        reply = read_message(slow, response=True)
        assert reply is not None and reply.status == 408 and slow.closed()
        assert idle.closed(timeout=3)
    assert upstream.connections == 0


def test_a_stalled_or_abandoned_request_body_is_never_forwarded_complete(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    with proxy_for(raw_wasm, "", upstream.url, FAST) as proxy:
        stalled = proxy.connect()
        stalled.sock.sendall(get("/stall", b"Content-Length: 10\r\n", b"POST") + b"abc")
        reply = read_message(stalled, response=True)
        assert reply is not None and reply.status == 408 and stalled.closed()
        gone = proxy.connect()
        gone.sock.sendall(get("/gone", b"Content-Length: 10\r\n", b"POST") + b"abc")
        time.sleep(0.2)
        gone.sock.close()
        lines = proxy.wait_log(2)
    deadline = time.monotonic() + 5
    while len(upstream.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [bytes(r.body) for r in upstream.requests] == [b"abc", b"abc"]
    assert not any(r.complete for r in upstream.requests), "the upstream saw them cut short"
    assert any(ln.startswith("POST /gone -> no reply (client closed mid-body") for ln in lines)


def test_a_silent_upstream_gets_504(raw_wasm: bytes) -> None:
    up = RawUpstream(lambda wire, msg: time.sleep(3))
    with proxy_for(raw_wasm, "resp add x-down 1", up.url, FAST) as proxy:
        started = time.monotonic()
        reply, _ = proxy.send(get("/slow"))
        assert reply is not None and reply.status == 504 and time.monotonic() - started < 2.5
        assert reply.values(b"x-down") == [b"1"], "Envoy's local replies pass the response callback"
    up.close()


def test_connections_are_capped_and_idle_ones_released(
    raw_wasm: bytes, upstream: RawUpstream
) -> None:
    limits = Limits(max_connections=8, idle_timeout=2.0, header_timeout=2.0)
    before = threading.active_count()
    with proxy_for(raw_wasm, "", upstream.url, limits) as proxy:
        held = [proxy.connect() for _ in range(8)]
        for wire in held[:4]:
            wire.sock.sendall(b"GET / HTTP/1.1\r\n")  # half-open heads
        time.sleep(0.2)
        extra = [proxy.connect() for _ in range(30)]
        refused = [read_message(wire, response=True) for wire in extra]
        assert all(r is not None and r.status == 503 for r in refused)
        assert threading.active_count() <= before + 8 + 2
        assert all(wire.closed(timeout=4, drain=True) for wire in held)
        reply, _ = proxy.send(get("/after"))
        assert reply is not None and reply.status == 200, "slots are released"


# -- 8. errors are replies and one log line, never a traceback ------------------------------


@pytest.mark.parametrize(
    ("answer", "status"),
    [(b"HTTP/1.1 abc NOPE\r\ncontent-length: 2\r\n\r\nok", 502),
     (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok", 502),
     (b"HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n", 502),
     (b"", 503)],
    ids=["bad-status-line", "two-lengths", "obs-fold", "closed"],
)  # fmt: skip
def test_bad_upstream_responses_are_gateway_errors(
    raw_wasm: bytes, capfd: pytest.CaptureFixture[str], answer: bytes, status: int
) -> None:
    up = RawUpstream(answer)
    with proxy_for(raw_wasm, "", up.url) as proxy:
        reply, _ = proxy.send(get("/bad"))
        assert reply is not None and reply.status == status
        assert proxy.wait_log() == proxy.lines and len(proxy.lines) == 1
        assert proxy.lines[0].startswith(f"GET /bad -> {status} (")
    assert "Traceback" not in capfd.readouterr().err
    up.close()


def test_client_disconnects_are_one_line_each(
    raw_wasm: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    up = RawUpstream(_big_answer(64 * MiB, chunked=False))
    with proxy_for(raw_wasm, "", up.url) as proxy:
        for raw in (
            get("/a"),
            b"GET /partial HTTP/1.1\r\nHo",
            get("/b", b"Content-Length: 9\r\n", b"POST") + b"x",
        ):
            wire = proxy.connect()
            wire.sock.sendall(raw)
            time.sleep(0.2)
            wire.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            wire.sock.close()  # a reset, mid-response or mid-request
        lines = proxy.wait_log(3)
        time.sleep(0.3)
    assert len(lines) == 3, lines
    assert "Traceback" not in capfd.readouterr().err


# -- 9. what stays: HEAD, local replies, plugin failures, hop-by-hop, one shared VM ---------


def test_head_announces_the_length_and_sends_no_body(raw_wasm: bytes) -> None:
    up = RawUpstream(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\ncontent-type: a/b\r\n\r\n")
    with proxy_for(raw_wasm, "", up.url) as proxy:
        wire = proxy.connect()
        wire.sock.sendall(get("/h", method=b"HEAD") + get("/h", method=b"HEAD"))
        first, second = read_message(wire, True, head=True), read_message(wire, True, head=True)
    assert first is not None and second is not None, "no body bytes in between"
    assert first.values(b"content-length") == [b"1234"] and second.status == 200
    assert up.requests[0].start == b"HEAD /h HTTP/1.1"
    up.close()


def test_local_replies_are_sent_as_declared(raw_wasm: bytes, upstream: RawUpstream) -> None:
    with proxy_for(raw_wasm, "req local 403 nope", upstream.url) as proxy:
        reply, _ = proxy.send(get("/deny"))
        head, _ = proxy.send(get("/deny", method=b"HEAD"), head=True)
        posted, wire = proxy.send(get("/deny", b"Content-Length: 4\r\n", b"POST"))  # body unsent
        assert posted is not None and posted.values(b"connection") == [b"close"] and wire.closed()
        assert "GET /deny -> 403 (local response from the plugin)" in proxy.wait_log(3)
    assert reply is not None and reply.status == 403 and bytes(reply.body) == b"nope"
    assert reply.values(b"x-local") == [b"yes"] and reply.values(b"content-length") == [b"4"]
    assert head is not None and head.values(b"content-length") == [b"4"] and not head.body
    assert upstream.requests == []


def test_a_plugin_failure_is_a_500_and_one_line(
    raw_wasm: bytes, upstream: RawUpstream, capfd: pytest.CaptureFixture[str]
) -> None:
    with proxy_for(raw_wasm, "req panic boom", upstream.url) as proxy:
        reply, _ = proxy.send(get("/p"))
        again, _ = proxy.send(get("/p"))
        lines = proxy.wait_log(2)
    assert reply is not None and again is not None and reply.status == again.status == 500
    assert len(lines) == 2 and all(ln.startswith("GET /p -> 500 (plugin failed:") for ln in lines)
    assert not any("\n" in ln for ln in lines)
    assert upstream.requests == []
    assert "Traceback" not in capfd.readouterr().err


def test_hop_by_hop_headers_are_not_forwarded(raw_wasm: bytes) -> None:
    up = RawUpstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-secret\r\n"
                     b"keep-alive: timeout=5\r\nx-secret: 1\r\nx-kept: 1\r\n\r\nok")  # fmt: skip
    hops = (b"Connection: x-private\r\nKeep-Alive: 1\r\nTE: trailers\r\nUpgrade: h2c\r\n"
            b"Proxy-Connection: keep-alive\r\nX-Private: 1\r\nX-Kept: 1\r\n")  # fmt: skip
    with proxy_for(raw_wasm, "", up.url) as proxy:
        reply, _ = proxy.send(get("/", hops))
    assert reply is not None and reply.status == 200
    names = {k for k, _ in up.requests[0].headers}
    assert names == {b"host", b"x-kept"}
    assert {k for k, _ in reply.headers} == {b"x-kept", b"content-length"}
    up.close()


def test_one_vm_serves_concurrent_connections(raw_wasm: bytes, upstream: RawUpstream) -> None:
    replies: list[Message | None] = []
    with proxy_for(raw_wasm, "req add x-up 1\nresp add x-down 1", upstream.url) as proxy:

        def client(i: int) -> None:
            for _ in range(5):
                replies.append(proxy.send(get(f"/c{i}"))[0])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(replies) == 40
    assert all(r is not None and r.status == 200 and r.values(b"x-down") == [b"1"] for r in replies)
    assert all(r.values(b"x-up") == [b"1"] for r in upstream.requests)
