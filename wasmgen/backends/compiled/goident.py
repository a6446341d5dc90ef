"""Go spelling for the compiled backend: identifiers from header names, literals, comments."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from wasmgen.backends.templating import goquote

# Go's initialisms (golint's list), spelled upper-case inside identifiers: hXRequestID.
_INITIALISMS = (
    "acl api ascii cpu css dns eof guid html http https id ip json lhs qps ram rhs rpc sla smtp "
    "sql ssh tcp tls ttl udp ui uid uuid uri url utf8 vm xml xmpp xsrf xss"
)
INITIALISMS = frozenset(_INITIALISMS.split(" "))
_WORD = re.compile(r"[0-9A-Za-z]+")


def camel(text: str) -> str:
    """x-request-id -> XRequestID; response[1].x-a -> Response1XA; "" when text has no letters
    or digits."""
    words = _WORD.findall(text)
    return "".join(w.upper() if w.lower() in INITIALISMS else w[:1].upper() + w[1:] for w in words)


def unique_idents(prefix: str, names: Iterable[str], empty: str = "Header") -> dict[str, str]:
    """A deterministic, collision-free identifier for every name, in order of appearance:
    x-a -> hXA, then x_a -> hXA2 (a suffix that is no other name's identifier)."""
    ordered = list(dict.fromkeys(names))
    bases = {n: prefix + (camel(n) or empty) for n in ordered}
    used = set(bases.values())
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in ordered:
        ident = bases[name]
        if ident in taken:
            k = 2
            while f"{ident}{k}" in used:
                k += 1
            ident = f"{ident}{k}"
            used.add(ident)
        taken.add(ident)
        out[name] = ident
    return out


def gostr(value: str) -> str:
    """A Go interpreted string literal."""
    return goquote(value)


def goraw(value: str) -> str:
    """A Go raw string literal when value can be one (readable JSON and rule paths), else an
    interpreted one."""
    if "`" in value or "\r" in value or not value.isprintable():
        return goquote(value)
    return f"`{value}`"


def comment(text: str) -> str:
    """text made safe for a // comment: control characters escaped, one line."""
    return "".join(ch if 0x20 <= ord(ch) != 0x7F else f"\\x{ord(ch):02x}" for ch in text).rstrip()


def aligned(rows: Sequence[tuple[str, str]], sep: str) -> list[str]:
    """Lines "a<pad>sep b" with a padded as gofmt's tabwriter aligns one column."""
    width = max((len(a) for a, _ in rows), default=0)
    return [f"{a.ljust(width)}{sep}{b}" for a, b in rows]


def wrapped(items: Sequence[str], indent: str, width: int = 96) -> list[str]:
    """Comma-separated items over lines of at most width characters (each ends with ',')."""
    lines: list[str] = []
    line = ""
    for item in items:
        piece = f"{item},"
        if line and len(indent) * 4 + len(line) + 1 + len(piece) > width:
            lines.append(indent + line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    if line:
        lines.append(indent + line)
    return lines
