"""What rules read of a request: its path without query, a query parameter, a cookie, its host."""

from __future__ import annotations


def strip_query(path: str) -> str:
    """The path without query string or fragment."""
    for i, ch in enumerate(path):
        if ch in "?#":
            return path[:i]
    return path


def query_param(path: str, name: str) -> str | None:
    """The raw value of the first query parameter called name ("" for `?name`), or None."""
    query = path.partition("?")[2].partition("#")[0]
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        if key == name:
            return value
    return None


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of the first cookie called name in a Cookie header, or None (RFC 6265 5.4:
    pairs split at ";", trimmed of spaces and tabs; a pair without "=" is ignored; one pair of
    surrounding double quotes is not part of the value)."""
    for piece in (header or "").split(";"):
        key, eq, value = piece.partition("=")
        if eq and key.strip(" \t") == name:
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def normalize_host(host: str) -> str:
    """Lower-case authority without its port (IPv6 brackets kept)."""
    i = host.rfind(":")
    if i >= 0 and "]" not in host[i:]:
        host = host[:i]
    return host.lower()
