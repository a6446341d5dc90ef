"""What rules read of a request: its path without query, a query parameter, its host."""

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


def normalize_host(host: str) -> str:
    """Lower-case authority without its port (IPv6 brackets kept)."""
    i = host.rfind(":")
    if i >= 0 and "]" not in host[i:]:
        host = host[:i]
    return host.lower()
