"""Reference semantics of a rule list, in Python: what the generated plugin must do to headers.

Two flavours of the header maps a plugin edits: Envoy's (the default), and the SDK's proxytest
(``concat=True``), which the generated Go tests run on. They differ in how a value is added to a
header that is already there: Envoy adds another entry, except for its "inline" headers, whose
value it joins with "," (HeaderMapImpl::insertByKey; the names differ between request and
response maps, see INLINE_REQUEST_HEADERS below); proxytest appends the new value to the first entry's
without a delimiter. Envoy's HTTP/1 codec joins repeated inline headers of a request or
response the same way before the plugin sees them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Any, Literal

from wasmgen.envoy_headers import INLINE_REQUEST_HEADERS, INLINE_RESPONSE_HEADERS, forwarded_ip
from wasmgen.records import record
from wasmgen.semantics.edits import (
    SET_COOKIE,
    dedupe,
    drop_cookies,
    drop_set_cookie,
    edit_query,
    harden,
    rewrite,
)
from wasmgen.semantics.request import cookie_value, normalize_host, query_param, strip_query
from wasmgen.semantics.values import View, needs_view, resolve
from wasmgen.spec.edits import encode_query_value, go_template
from wasmgen.spec.names import compile_regex

Headers = list[tuple[str, str]]
Side = Literal["request", "response"]


@record(frozen=False)
class Outcome:
    """Headers after both phases, or the local response that replaced the upstream's."""

    request: Headers
    response: Headers | None
    local_status: int | None = None
    local_headers: Headers = field(default_factory=list)
    fired: set[tuple[str, int]] = field(default_factory=set)  # ("request"|"response", index)


def first(headers: Headers, name: str) -> str | None:
    """The first value of name, as proxy_get_header_map_value returns it."""
    return next((v for k, v in headers if k == name), None)


def _value_test(cond: dict[str, Any], value: str | None) -> bool:
    """A present/absent/equals/matches test of a header, query parameter or cookie."""
    if "present" in cond:
        return value is not None
    if "absent" in cond:
        return value is None
    if "equals" in cond:
        return bool(value == cond["equals"])
    return value is not None and compile_regex(cond["matches"]).search(value) is not None


def _str_match(m: dict[str, str], value: str) -> bool:
    ((kind, pattern),) = m.items()
    if kind == "exact":
        return value == pattern
    if kind == "prefix":
        return value.startswith(pattern)
    if kind == "suffix":
        return value.endswith(pattern)
    return compile_regex(pattern).search(value) is not None


def status_in(spec: str, code: int) -> bool:
    if spec.endswith("xx"):
        lo = int(spec[0]) * 100
        return lo <= code <= lo + 99
    lo_s, _, hi_s = spec.partition("-")
    return int(lo_s) <= code <= int(hi_s or lo_s)


def _parse_status(headers: Headers) -> int:
    raw = first(headers, ":status") or ""
    return int(raw) if raw.isascii() and raw.isdigit() else 0


def source_ip(request: Headers) -> str:
    """The client address a plugin reads as source.address (without port), as Envoy gives it
    with its default settings: the last x-forwarded-for entry when it is an IP (the client
    chooses it), else the loopback connection's address (docs/envoy-behaviour.md)."""
    return forwarded_ip(request) or "127.0.0.1"


def source_in(blocks: list[str], ip: str) -> bool:
    """Whether address ip is in one of the blocks of a source condition (same family only)."""
    addr = ipaddress.ip_address(ip)
    return any(addr in ipaddress.ip_network(b) for b in blocks)


def matches(
    when: dict[str, Any] | None, request: Headers, status: int | None, source: str = "127.0.0.1"
) -> bool:
    """Whether a rule's conditions hold for this request (and response status); source is the
    client address (source_ip of the request as the client sent it)."""
    if not when:
        return True
    if "source" in when and not source_in(when["source"], source):
        return False
    if "path" in when and not _str_match(when["path"], strip_query(first(request, ":path") or "")):
        return False
    if "method" in when and (first(request, ":method") or "") not in when["method"]:
        return False
    host = normalize_host(first(request, ":authority") or "")
    if "host" in when and not _str_match(when["host"], host):
        return False
    for cond in when.get("headers", []):
        if not _value_test(cond, first(request, cond["name"])):
            return False
    for cond in when.get("query", []):
        if not _value_test(cond, query_param(first(request, ":path") or "", cond["name"])):
            return False
    for cond in when.get("cookie", []):
        if not _value_test(cond, cookie_value(first(request, "cookie"), cond["name"])):
            return False
    if "status" in when:
        code = status or 0
        if not any(status_in(s, code) for s in when["status"]):
            return False
    if "not" in when and matches(when["not"], request, status, source):
        return False
    return "any" not in when or any(matches(b, request, status, source) for b in when["any"])


def _set(headers: Headers, name: str, value: str, in_place: bool = False) -> None:
    """Envoy's setCopy drops every entry and appends one (a pseudo-header after the last
    pseudo-header); proxytest overwrites the first."""
    if in_place:
        for i, (k, _) in enumerate(headers):
            if k == name:
                headers[i] = (name, value)
                return
    else:
        remove_all(headers, name)
        if name.startswith(":"):  # Envoy's header list keeps pseudo-headers ahead of the rest
            at = next((i for i, (k, _) in enumerate(headers) if not k.startswith(":")), None)
            headers.insert(len(headers) if at is None else at, (name, value))
            return
    headers.append((name, value))


def remove_all(headers: Headers, name: str) -> None:
    headers[:] = [(k, v) for k, v in headers if k != name]


def inline_names(side: Side | None) -> frozenset[str]:
    """The headers Envoy joins with "," in the request or response header map."""
    if side == "request":
        return INLINE_REQUEST_HEADERS
    return INLINE_RESPONSE_HEADERS if side == "response" else frozenset()


def _add(
    headers: Headers, name: str, value: str, concat: bool, inline: frozenset[str] = frozenset()
) -> None:
    """Envoy's addCopy adds another entry, or joins an inline header's value onto its entry with
    "," (an empty value adds nothing; an empty entry takes the value as it is); the SDK's
    proxytest (concat) appends to the first value."""
    for i, (k, v) in enumerate(headers):
        if k != name:
            continue
        if concat:
            headers[i] = (k, v + value)
            return
        if name in inline:
            headers[i] = (k, f"{v},{value}" if v and value else v or value)
            return
        break
    headers.append((name, value))


def envoy_headers(headers: Sequence[tuple[str, str]], side: Side) -> Headers:
    """A request's or response's headers as Envoy's HTTP/1 codec hands them to the filters:
    repeated inline headers joined into their first entry, and a request's host as :authority."""
    out: Headers = []
    inline = inline_names(side)
    for name, value in headers:
        key = name.lower()
        if side == "request" and key == "host":
            key = ":authority"
        _add(out, key, value, False, inline)
    return out


def apply(
    rule: dict[str, Any],
    headers: Headers,
    captured: Headers,
    concat: bool = False,
    side: Side | None = None,
) -> None:
    """Apply one rule's operation to headers in place; side: which of Envoy's maps headers is
    (its inline headers join on add; ignored with concat)."""
    inline = frozenset() if concat else inline_names(side)
    if "set" in rule:
        for name, value in rule["set"].items():
            _set(headers, name, value, concat)
    elif "append" in rule:
        for name, value in rule["append"].items():
            _add(headers, name, value, concat, inline)
    elif "addIfAbsent" in rule:
        for name, value in rule["addIfAbsent"].items():
            if first(headers, name) is None:
                _add(headers, name, value, concat, inline)
    elif "remove" in rule:
        names = {n for n in rule["remove"] if not n.endswith("*")}
        prefixes = tuple(n[:-1] for n in rule["remove"] if n.endswith("*"))
        headers[:] = [
            (k, v) for k, v in headers if k not in names and not k.startswith(prefixes or ("\0",))
        ]
    elif "rename" in rule:
        for src, dst in rule["rename"].items():
            values = [v for k, v in headers if k == src]
            if not values:
                continue
            remove_all(headers, src)
            remove_all(headers, dst)
            for v in values:
                _add(headers, dst, v, concat, inline)
    elif "copyFromRequest" in rule:
        for src, dst in rule["copyFromRequest"].items():
            value = first(captured, src)
            if value is not None:
                _set(headers, dst, value, concat)
    elif "cookieFlags" in rule:
        flags = rule["cookieFlags"]
        edit_values(headers, SET_COOKIE, lambda line: harden(line, flags), concat, inline)
    elif "setQuery" in rule or "removeQuery" in rule:
        query = dict(rule)
        query["setQuery"] = {k: encode_query_value(v) for k, v in rule.get("setQuery", {}).items()}
        path = first(headers, ":path")
        if path is not None and (edited := edit_query(path, query)) != path:
            _set(headers, ":path", edited, concat)
    elif "rewrite" in rule:
        for name, how in rule["rewrite"].items():
            regex, template = how["regex"], go_template(how["regex"], how["with"])
            edit_values(headers, name, lambda v: rewrite(v, regex, template), concat, inline)  # noqa: B023
    elif "dedupe" in rule:
        for name, mode in rule["dedupe"].items():
            _dedupe(headers, name, mode, concat, inline)
    elif "removeCookie" in rule:
        names = rule["removeCookie"]
        if side == "request":
            edit_values(headers, "cookie", lambda v: drop_cookies(v, names), concat, inline)
        else:
            edit_values(headers, SET_COOKIE, lambda v: drop_set_cookie(v, names), concat, inline)


def edit_values(
    headers: Headers,
    name: str,
    edit: Callable[[str], str | None],
    concat: bool,
    inline: frozenset[str] = frozenset(),
) -> None:
    """Edit every value of name (None: it goes); when one changes or goes, every entry is
    removed and the edited values are added back in order (the plugins have no call that
    replaces the Nth value)."""
    values = [v for k, v in headers if k == name]
    edited = [edit(v) for v in values]
    if edited != values:
        _replace_values(headers, name, [v for v in edited if v is not None], concat, inline)


def _replace_values(
    headers: Headers, name: str, values: list[str], concat: bool, inline: frozenset[str]
) -> None:
    """What the plugins do to put new values in: remove name (proxytest's remove takes out the
    first entry only), then add each value."""
    if concat:
        del headers[next(i for i, (k, _) in enumerate(headers) if k == name)]
    else:
        remove_all(headers, name)
    for value in values:
        _add(headers, name, value, concat, inline)


def _dedupe(headers: Headers, name: str, mode: str, concat: bool, inline: frozenset[str]) -> None:
    """Collapse name's values into one, unless it is one value already as it would be written."""
    values = [v for k, v in headers if k == name]
    merged = dedupe(values, mode)
    if merged is not None and values != [merged]:
        _replace_values(headers, name, [merged], concat, inline)


def run(
    config: dict[str, Any], request: Headers, response: Headers, concat: bool = False
) -> Outcome:
    """Run the configuration over one exchange, as the plugin does in Envoy, or in proxytest with
    concat (its add, and header lists taken as they are)."""
    req = list(request) if concat else envoy_headers(request, "request")
    captured = list(req)  # response rules see the request as the client sent it
    source = source_ip(req)
    out = Outcome(request=req, response=None)
    for i, rule in enumerate(config.get("request", [])):
        if not matches(rule.get("when"), req, None, source):
            continue
        out.fired.add(("request", i))
        if needs_view(rule):
            rule = resolve(rule, View(req, None, source, _path_regex(rule)))
        if "respond" in rule:
            out.local_status = rule["respond"]["status"]
            out.local_headers = list(rule["respond"].get("headers", {}).items())
            # A local reply may echo request headers, as the request stands at this rule.
            for src, dst in rule["respond"].get("copyFromRequest", {}).items():
                value = first(req, src)
                if value is not None:
                    out.local_headers.append((dst, value))
            return out
        apply(rule, req, captured, concat, "request")
    resp = list(response) if concat else envoy_headers(response, "response")
    status = _parse_status(resp)
    for i, rule in enumerate(config.get("response", [])):
        if matches(rule.get("when"), captured, status, source):
            out.fired.add(("response", i))
            if needs_view(rule):
                rule = resolve(rule, View(captured, resp, source, _path_regex(rule)))
            apply(rule, resp, captured, concat, "response")
    out.response = resp
    return out


def _path_regex(rule: dict[str, Any]) -> str | None:
    path = (rule.get("when") or {}).get("path") or {}
    regex = path.get("regex")
    return regex if isinstance(regex, str) else None
