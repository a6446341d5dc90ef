"""Strict HTTP/1.1 messages on blocking sockets, for the embedded proxy of `wasmgen serve`.

Bytes stay as they came: names are lower-cased, values are kept byte for byte (obs-text
included). What is accepted follows RFC 9112 and Envoy's HTTP/1 codec (BalsaParser with
invalid characters as errors, plus the connection manager's checks), measured on Envoy 1.40:

- Request line ``METHOD SP target SP HTTP/1.1``: a method from Envoy's list, a target of
  visible ASCII (origin form ``/...``, absolute form ``http://host/...``, ``*``, or CONNECT's
  authority). Another HTTP version gets 426 (Envoy without accept_http_10). Empty lines
  before it are skipped.
- Header lines: a token name directly followed by ``:``; a value without control characters
  other than HTAB (NUL, DEL, a bare CR: 400). obs-fold is refused with 400 (RFC 9112 allows
  that; Envoy 1.40 unfolds). A bare LF ends a line, as in Envoy.
- At most 60 KiB for the request line and headers and at most 100 headers (Envoy's
  max_request_headers_kb and max_headers_count defaults), else 431.
- Framing (RFC 9112 section 6): transfer-encoding must be exactly ``chunked`` (else 501),
  never with content-length (400); content-length is one field of 1 to 18 digits (400).
  Chunk extensions and trailers are read, checked and dropped (Envoy drops trailers by
  default). A response's errors are the caller's 502.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Literal

from wasmgen.records import record
from wasmgen.wasm.abi import to_bytes

MAX_HEAD = 60 * 1024  # bytes of start line and headers
MAX_HEADERS = 100
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
READ_SIZE = 64 * 1024  # bytes per recv and per body piece: memory stays bounded
# Envoy's BalsaParser accepts these methods only (isMethodValid).
METHODS = frozenset(
    {"ACL", "BIND", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LINK", "LOCK",
     "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE", "MSEARCH", "NOTIFY", "OPTIONS",
     "PATCH", "POST", "PROPFIND", "PROPPATCH", "PURGE", "PUT", "REBIND", "REPORT", "SEARCH",
     "SOURCE", "SUBSCRIBE", "TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE"}
)  # fmt: skip
# Not forwarded in either direction (nor the headers a Connection header names).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
     "trailer", "proxy-authenticate", "proxy-authorization", "http2-settings"}
)  # fmt: skip
_HOP = frozenset(name.encode() for name in HOP_BY_HOP)
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB
_TARGET = re.compile(rb"[!-~]+")  # visible ASCII
_ABSOLUTE = re.compile(rb"[A-Za-z]+://([^/?]*)(.*)")
_AUTHORITY = re.compile(rb"[A-Za-z0-9!$%&'()*+,\-.:;=@\[\]_~]*")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: .*)?")
_LENGTH = re.compile(rb"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[\t -~\x80-\xff]*)?")
_END_OF_HEAD = re.compile(rb"\n\r?\n")

Field = tuple[bytes, bytes]  # lower-case name, value as sent


class HttpError(Exception):
    """A message breaks HTTP/1.1; status is what a client gets for such a request."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Incomplete(Exception):
    """The peer closed its side in the middle of a message."""


@record
class Framing:
    """How a body is delimited: none, by length, chunked, or by the connection closing."""

    kind: Literal["none", "length", "chunked", "close"]
    length: int = 0

    @property
    def empty(self) -> bool:
        return self.kind == "none" or (self.kind == "length" and self.length == 0)


@record
class Request:
    """A request head as received."""

    method: str
    target: bytes
    fields: list[Field]


@record
class Response:
    """A response head as received."""

    status: int
    fields: list[Field]


class Conn:
    """A blocking socket with a read buffer; every read and write has its own timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, bytearray()

    def fill(self, timeout: float) -> bool:
        """Receive more bytes; False when the peer closed. Raises TimeoutError."""
        if timeout <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(timeout)
        data = self.sock.recv(READ_SIZE)
        self.buf += data
        return bool(data)

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def reply(self, status: int, message: str, head: bool, timeout: float) -> None:
        """Best effort (the peer may be gone): a text/plain reply that closes the connection."""
        body = (message + "\n").encode()
        fields = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body)),
                  (b"connection", b"close")]  # fmt: skip
        with contextlib.suppress(OSError):
            self.send(encode_head(status_line(status), fields) + (b"" if head else body), timeout)

    def read_head(self, timeout: float) -> list[bytes]:
        """The lines of the next message head, within timeout in all; raises HttpError (431
        when too large), Incomplete, TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            while self.buf[:1] == b"\n" or self.buf[:2] == b"\r\n":  # empty lines before it
                del self.buf[: 1 if self.buf[:1] == b"\n" else 2]
            end = _END_OF_HEAD.search(self.buf)
            if end is not None and end.end() <= MAX_HEAD:
                head = bytes(self.buf[: end.start()])
                del self.buf[: end.end()]
                return [line.removesuffix(b"\r") for line in head.split(b"\n")]
            if len(self.buf) > MAX_HEAD:
                raise HttpError(431, f"headers larger than {MAX_HEAD // 1024} KiB")
            if not self.fill(deadline - time.monotonic()):
                raise Incomplete("closed in the middle of the headers")

    def read_some(self, limit: int, timeout: float) -> bytes:
        """Up to limit buffered or newly received bytes; b"" when the peer closed."""
        if not self.buf and not self.fill(timeout):
            return b""
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def read_line(self, limit: int, timeout: float) -> bytes:
        """One line without its CRLF (or LF)."""
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > limit:
                raise HttpError(400, "line too long in the body framing")
            if not self.fill(timeout):
                raise Incomplete("closed in the middle of the body")
        line = bytes(self.buf[:end]).removesuffix(b"\r")
        del self.buf[: end + 1]
        if b"\r" in line:
            raise HttpError(400, "bare CR in the body framing")
        return line


def parse_fields(lines: list[bytes]) -> list[Field]:
    """Header (or trailer) lines as fields, strictly."""
    if len(lines) > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} headers")
    fields = []
    for line in lines:
        if b"\r" in line:
            raise HttpError(400, "bare CR in a header line")
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpError(400, f"invalid header name {name[:40]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HttpError(400, f"invalid character in header {name.decode()}")
        fields.append((name.lower(), value))
    return fields


def parse_request(lines: list[bytes]) -> Request:
    """The request line and headers; raises HttpError."""
    parts = lines[0].split(b" ")
    if b"\r" in lines[0] or len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if method.decode("latin-1") not in METHODS:
        raise HttpError(400, f"unknown method {method[:20]!r}")
    if not _TARGET.fullmatch(target):
        raise HttpError(400, "invalid request target")
    if not re.fullmatch(rb"HTTP/[0-9]\.[0-9]", version):
        raise HttpError(400, "malformed HTTP version")
    if version != b"HTTP/1.1":
        raise HttpError(426, f"{version.decode()} is not served (HTTP/1.1 only, as Envoy)")
    return Request(method.decode(), target, parse_fields(lines[1:]))


def parse_response(lines: list[bytes]) -> Response:
    """The status line and headers; raises HttpError."""
    line = _STATUS_LINE.fullmatch(lines[0])
    if line is None or _BAD_VALUE.search(lines[0]):
        raise HttpError(502, f"malformed status line {lines[0][:40]!r}")
    return Response(int(line[1]), parse_fields(lines[1:]))


def request_target(request: Request) -> tuple[bytes, bytes]:
    """(authority, path) of a request: from an absolute-form target, else its one Host header;
    raises HttpError (CONNECT and ``*`` get Envoy's 404: no route)."""
    if request.method == "CONNECT" or request.target == b"*":
        raise HttpError(404, "no route for this request target")
    hosts = [v for k, v in request.fields if k == b"host"]
    if request.target.startswith(b"/"):
        if len(hosts) != 1:
            raise HttpError(400, "more than one host header" if hosts else "no host header")
        if not valid_authority(hosts[0]):
            raise HttpError(400, "invalid host header")
        return hosts[0], request.target
    match = _ABSOLUTE.fullmatch(request.target)
    if match is None or not valid_authority(match[1]):
        raise HttpError(400, "invalid request target")
    path = match[2] or b"/"
    return match[1], path if path.startswith(b"/") else b"/" + path


def valid_authority(value: bytes) -> bool:
    """The characters Envoy allows in a host (http-parser's set)."""
    return _AUTHORITY.fullmatch(value) is not None and b"@@" not in value


def framing(fields: list[Field]) -> Framing:
    """A message's body framing from its headers (RFC 9112 6.1-6.3); raises HttpError."""
    te = [v for k, v in fields if k == b"transfer-encoding"]
    lengths = [v for k, v in fields if k == b"content-length"]
    if te:
        if lengths:
            raise HttpError(400, "content-length together with transfer-encoding")
        if len(te) > 1 or te[0].lower() != b"chunked":
            raise HttpError(501, "transfer-encoding other than chunked")
        return Framing("chunked")
    if len(lengths) > 1:
        raise HttpError(400, "more than one content-length")
    if lengths:
        if not valid_length(lengths[0]):
            raise HttpError(400, f"invalid content-length {lengths[0][:20]!r}")
        return Framing("length", int(lengths[0]))
    return Framing("none")


def read_response(conn: Conn, timeout: float, method: str) -> tuple[Response, Framing]:
    """The final response to a request sent with method (interim 1xx ones are dropped, as
    Envoy does) and its body framing; raises HttpError, Incomplete, OSError."""
    while True:
        if not conn.buf and not conn.fill(timeout):
            raise Incomplete("no response")
        response = parse_response(conn.read_head(timeout))
        if response.status == 101:
            raise HttpError(502, "101 Switching Protocols to a request without upgrade")
        if response.status >= 200:
            break
    frame = framing(response.fields)
    if method == "HEAD" or response.status in (204, 304):
        return response, Framing("none")
    return response, Framing("close") if frame.kind == "none" else frame


def body(conn: Conn, frame: Framing, timeout: float) -> Iterator[bytes]:
    """A body's data in pieces of at most READ_SIZE bytes, timeout per read; raises
    Incomplete when the peer closes early, HttpError for bad chunked framing."""
    if frame.kind == "close":
        while piece := conn.read_some(READ_SIZE, timeout):
            yield piece
    elif frame.kind == "length":
        yield from _exactly(conn, frame.length, timeout)
    elif frame.kind == "chunked":
        while True:
            size = _CHUNK_SIZE.fullmatch(conn.read_line(MAX_CHUNK_LINE, timeout))
            if size is None:
                raise HttpError(400, "invalid chunk size")
            if int(size[1], 16) == 0:
                break
            yield from _exactly(conn, int(size[1], 16), timeout)
            if conn.read_line(MAX_CHUNK_LINE, timeout):
                raise HttpError(400, "chunk data longer than its size")
        trailers, total = [], 0
        while line := conn.read_line(MAX_HEAD, timeout):
            trailers.append(line)
            total += len(line) + 2
            if total > MAX_HEAD:
                raise HttpError(431, "trailers too large")
        parse_fields(trailers)  # checked, then dropped


def _exactly(conn: Conn, length: int, timeout: float) -> Iterator[bytes]:
    while length > 0:
        piece = conn.read_some(min(length, READ_SIZE), timeout)
        if not piece:
            raise Incomplete(f"closed with {length} body byte(s) missing")
        length -= len(piece)
        yield piece


def wire_fields(pairs: Sequence[tuple[str, str]]) -> list[Field]:
    """A plugin's header map as fields to send: without pseudo-headers, hop-by-hop and framing
    headers (the proxy frames the body itself); HttpError(500) when one cannot be sent as is."""
    fields = []
    for key, value in pairs:
        try:
            name, data = to_bytes(key), to_bytes(value)
        except UnicodeError:
            raise HttpError(500, f"the plugin set header {key!r} to text without bytes") from None
        if key.startswith(":") or name in _HOP or name in (b"content-length", b"transfer-encoding"):
            continue
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(data):
            raise HttpError(500, f"the plugin set an invalid header {name[:40]!r}: {data[:40]!r}")
        fields.append((name, data))
    return fields


def framing_fields(frame: Framing) -> list[Field]:
    """The one header that frames a body sent as frame says (none: content-length: 0)."""
    if frame.kind in ("chunked", "close"):  # a close-delimited body goes on chunked
        return [(b"transfer-encoding", b"chunked")]
    return [(b"content-length", b"%d" % frame.length)]


def value(pairs: Sequence[tuple[str, str]], name: str) -> str:
    """The first value of name in a plugin's header map ("" when absent)."""
    return next((v for k, v in pairs if k == name), "")


def final_status(text: str) -> int | None:
    """A final status code (200-599) from a :status value, else None."""
    ok = len(text) == 3 and text.isascii() and text.isdigit() and 200 <= int(text) <= 599
    return int(text) if ok else None


def hop_by_hop(fields: list[Field]) -> frozenset[bytes]:
    """The names not to forward: HOP_BY_HOP and those the Connection header lists."""
    return _HOP | tokens(fields, b"connection")


def tokens(fields: list[Field], name: bytes) -> set[bytes]:
    """The lower-case comma-separated tokens of every name field."""
    return {t.strip().lower() for k, v in fields if k == name for t in v.split(b",")} - {b""}


def valid_length(value: bytes) -> bool:
    return _LENGTH.fullmatch(value) is not None


def valid_target(path: bytes) -> bool:
    return path.startswith(b"/") and _TARGET.fullmatch(path) is not None


def encode_head(start: bytes, fields: list[Field]) -> bytes:
    return b"".join([start, b"\r\n", *(k + b": " + v + b"\r\n" for k, v in fields), b"\r\n"])


def status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)
