"""What a header value with expressions (${request.id}, ...) writes on one exchange.

A value whose source is absent writes nothing for that header: rules keep only the headers
whose every reference has a value (the rest of the rule still applies).
"""

from __future__ import annotations

import time
from typing import Any

from wasmgen.envoy_headers import TEST_CLOCK
from wasmgen.records import record
from wasmgen.semantics.request import cookie_value, normalize_host, query_param, strip_query
from wasmgen.spec.expr import Ref, group_number, parse
from wasmgen.spec.names import compile_regex

Headers = list[tuple[str, str]]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: int) -> str:
    """IMF-fixdate (RFC 9110 5.6.7): Sun, 06 Nov 1994 08:49:37 GMT."""
    t = time.gmtime(seconds)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _first(headers: Headers | None, name: str) -> str | None:
    return next((v for k, v in headers or () if k == name), None)


@record(frozen=False)
class View:
    """What a rule's expressions read: the request as the rule sees it (the client's, for a
    response rule), the response so far (response rules), the client address, the rule's
    when.path.regex, and the clock."""

    request: Headers
    response: Headers | None
    source: str | None
    path_regex: str | None
    now: int = TEST_CLOCK  # seconds since the epoch

    def lookup(self, ref: Ref) -> str | None:
        """The value of one reference, or None when its source is absent."""
        path = _first(self.request, ":path")
        if ref.kind == "request.header":
            return _first(self.request, ref.arg)
        if ref.kind == "request.path":
            return None if path is None else strip_query(path)
        if ref.kind == "request.query":
            return None if path is None else query_param(path, ref.arg)
        if ref.kind == "request.cookie":
            return cookie_value(_first(self.request, "cookie"), ref.arg)
        if ref.kind in ("request.method", "request.id"):
            name = ":method" if ref.kind == "request.method" else "x-request-id"
            return _first(self.request, name)
        if ref.kind == "request.host":
            host = _first(self.request, ":authority")
            return None if host is None else normalize_host(host)
        if ref.kind == "source.address":
            return self.source
        if ref.kind == "time.unix":
            return str(self.now)
        if ref.kind == "time.http":
            return http_date(self.now)
        if ref.kind == "response.status":
            return _first(self.response, ":status")
        if ref.kind == "response.header":
            return _first(self.response, ref.arg)
        return self._group(ref.arg, path)

    def _group(self, arg: str, path: str | None) -> str | None:
        if self.path_regex is None or path is None:
            return None
        m = compile_regex(self.path_regex).search(strip_query(path))
        if m is None:
            return None
        group = m.group(group_number(arg) if arg.isdigit() else arg)
        return group if isinstance(group, str) else None


def render(value: str, view: View) -> str | None:
    """What value writes, or None when one of its references has no value."""
    if "$" not in value:
        return value
    out: list[str] = []
    for part in parse(value):
        got = view.lookup(part) if isinstance(part, Ref) else part
        if got is None:
            return None
        out.append(got)
    return "".join(out)


def resolve(rule: dict[str, Any], view: View) -> dict[str, Any]:
    """rule with its values rendered, headers whose value has no source left out."""
    out = dict(rule)
    for op in ("set", "append", "addIfAbsent"):
        if op in rule:
            out[op] = _rendered(rule[op], view)
    if "respond" in rule and "headers" in rule["respond"]:
        out["respond"] = {**rule["respond"], "headers": _rendered(rule["respond"]["headers"], view)}
    return out


def _rendered(values: dict[str, str], view: View) -> dict[str, str]:
    rendered = {name: render(value, view) for name, value in values.items()}
    return {name: v for name, v in rendered.items() if v is not None}


def needs_view(rule: dict[str, Any]) -> bool:
    """Whether a rule has a value with an expression or $$."""
    maps = [rule.get(op, {}) for op in ("set", "append", "addIfAbsent")]
    maps.append((rule.get("respond") or {}).get("headers", {}))
    return any("$" in v for m in maps for v in m.values())


# What a reference reads of the request map (names), beyond request.header and response.header.
_READS = {"request.path": ":path", "request.query": ":path", "path": ":path",
          "request.cookie": "cookie", "request.method": ":method", "request.host": ":authority",
          "request.id": "x-request-id", "response.status": ":status"}  # fmt: skip


def refs(rule: dict[str, Any]) -> list[Ref]:
    """The references of a rule's values, in order."""
    maps = [rule.get(op, {}) for op in ("set", "append", "addIfAbsent")]
    maps.append((rule.get("respond") or {}).get("headers", {}))
    return [p for m in maps for v in m.values() if "$" in v for p in parse(v) if isinstance(p, Ref)]


def reads(rule: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The request and response header names a rule's values read."""
    request: set[str] = set()
    response: set[str] = set()
    for ref in refs(rule):
        if ref.kind in ("request.header", "response.header"):
            (request if ref.kind == "request.header" else response).add(ref.arg)
        elif ref.kind in _READS:
            (response if ref.kind == "response.status" else request).add(_READS[ref.kind])
    return request, response


CLOCKS = frozenset({"time.http", "time.unix"})


def clocked(config: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The header names a ${time.*} value writes (they vary with a running clock), each with
    the clocks its values read: time.http, time.unix."""
    maps = [r.get(op, {}) for p in ("request", "response") for r in config.get(p, [])
            for op in ("set", "append", "addIfAbsent")]  # fmt: skip
    maps += [(r.get("respond") or {}).get("headers", {}) for r in config.get("request", [])]
    out: dict[str, frozenset[str]] = {}
    for m in maps:
        for name, value in m.items():
            if "${time." in value:
                kinds = {p.kind for p in parse(value) if isinstance(p, Ref)} & CLOCKS
                out[name] = out.get(name, frozenset()) | kinds
    return out
