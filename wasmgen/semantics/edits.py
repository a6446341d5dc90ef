"""The value edits on a header's values, as the generated plugins do them (valueedit.go).

cookieFlags on a Set-Cookie line:

The line splits at ";" into `name=value` and attribute pieces. A line whose first piece has
no "=" is no cookie (RFC 6265 5.2) and stays as it is, as do cookies `cookies` does not name.
Of each attribute the rule manages (Secure, HttpOnly, SameSite, matched without case and
around spaces and tabs), the first piece is rewritten in place in its canonical spelling,
keeping the spaces before it, and later ones are dropped; `false` drops them all; a missing
one is appended as "; Secure", "; HttpOnly", "; SameSite=Lax", in that order. Every other
piece, and the spacing, stays byte for byte; empty pieces go.
"""

from __future__ import annotations

import re
from typing import Any

from wasmgen.spec.names import compile_regex

SPACE = " \t"
SET_COOKIE = "set-cookie"


def cookie_name(line: str) -> str | None:
    """The cookie a Set-Cookie line sets, or None when its first piece has no "="."""
    first = line.partition(";")[0]
    name, eq, _ = first.partition("=")
    return name.strip(SPACE) if eq else None


def harden(line: str, flags: dict[str, Any]) -> str:
    """line with the attributes of a cookieFlags rule added, replaced or removed."""
    name = cookie_name(line)
    if name is None or ("cookies" in flags and name not in flags["cookies"]):
        return line
    wanted = {
        "secure": flags.get("secure"),
        "httponly": flags.get("httpOnly"),
        "samesite": flags.get("sameSite"),
    }
    canonical = {"secure": "Secure", "httponly": "HttpOnly"}
    if wanted["samesite"] is not None:
        canonical["samesite"] = "SameSite=" + wanted["samesite"]
    first, *pieces = line.split(";")
    out = [first]
    seen: set[str] = set()
    for piece in pieces:
        key = piece.strip(SPACE).partition("=")[0].strip(SPACE)
        key = key.lower() if key.isascii() else key  # as Go's byte loop: ASCII only
        if not piece.strip(SPACE):
            continue  # an empty piece ("a=b;;"): nothing to keep
        if key not in wanted or wanted[key] is None:
            out.append(piece)
            continue
        if wanted[key] is not False and key not in seen:
            lead = piece[: len(piece) - len(piece.lstrip(SPACE))]
            out.append(lead + canonical[key])
        seen.add(key)
    for key in ("secure", "httponly", "samesite"):
        if wanted[key] not in (None, False) and key not in seen:
            out.append(" " + canonical[key])
    return ";".join(out)


def drop_set_cookie(line: str, names: list[str]) -> str | None:
    """removeCookie on a response: None when the Set-Cookie line sets one of names."""
    return None if cookie_name(line) in names else line


def drop_cookies(value: str, names: list[str]) -> str | None:
    """removeCookie on a request: the Cookie value without the pairs of names (pairs split at
    ";" and trimmed; one without "=" is kept). When one goes, the rest are joined with "; "
    (RFC 6265 5.4) and empty pieces dropped; None when nothing is left."""
    kept: list[str] = []
    changed = False
    for piece in value.split(";"):
        piece = piece.strip(SPACE)
        if not piece:
            continue
        name, eq, _ = piece.partition("=")
        if eq and name.strip(SPACE) in names:
            changed = True
            continue
        kept.append(piece)
    if not changed:
        return value
    return "; ".join(kept) or None


def elements(value: str) -> list[str]:
    """The comma-separated elements of a value: split at commas outside double quotes (where a
    backslash escapes the next character), trimmed, empty ones dropped."""
    out: list[str] = []
    start, quoted, i = 0, False, 0
    while i < len(value):
        c = value[i]
        if quoted and c == "\\":
            i += 1
        elif c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    return [e.strip(SPACE) for e in out if e.strip(SPACE)]


def dedupe(values: list[str], mode: str) -> str | None:
    """dedupe of a header's values: its first element, its last, or each distinct one once
    ("unique": an element is new when the value built so far does not hold it, as elements()
    reads that value), joined with ", "; None when there is no element."""
    found = [e for v in values for e in elements(v)]
    if not found:
        return None
    if mode != "unique":
        return found[0] if mode == "first" else found[-1]
    out = ""
    for e in found:
        if not out:
            out = e
        elif e not in elements(out):
            out += ", " + e
    return out


def split_path(path: str) -> tuple[str, str | None, str]:
    """:path as (path, query or None when there is no "?", "#fragment" or "")."""
    end = next((i for i, c in enumerate(path) if c in "?#"), len(path))
    if end == len(path) or path[end] == "#":
        return path[:end], None, path[end:]
    hash_at = path.find("#", end + 1)
    hash_at = len(path) if hash_at < 0 else hash_at
    return path[:end], path[end + 1 : hash_at], path[hash_at:]


def edit_query(path: str, rule: dict[str, Any]) -> str:
    """setQuery (values percent-encoded already) or removeQuery on :path. Parameters split at
    "&", a name ends at the first "=", compared raw; removeQuery names ending in "*" are
    prefixes. setQuery replaces the first pair of a name in place and drops later ones, and
    appends the names not there. When anything changes the query is rebuilt with empty pieces
    dropped (and no "?" when nothing is left); otherwise :path stays byte for byte."""
    removed = rule.get("removeQuery", [])
    names = {n for n in removed if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in removed if n.endswith("*"))
    setting: dict[str, str] = rule.get("setQuery", {})
    base, query, rest = split_path(path)
    kept: list[str] = []
    done: set[str] = set()
    changed = False
    for piece in (query or "").split("&") if query is not None else []:
        name = piece.partition("=")[0]
        if not piece:
            continue
        if name in names or (prefixes and name.startswith(prefixes)):
            changed = True
        elif name in setting:
            new = f"{name}={setting[name]}"
            changed |= name in done or piece != new
            if name not in done:
                kept.append(new)
            done.add(name)
        else:
            kept.append(piece)
    for name, value in setting.items():
        if name not in done:
            kept.append(f"{name}={value}")
            changed = True
    if not changed:
        return path
    return base + ("?" + "&".join(kept) if kept else "") + rest


_REF = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\})")


def _expand(template: str, match: Any) -> str:
    """Go's Regexp.Expand of a canonical template (go_template): ${1}, ${name}, $$."""

    def ref(m: re.Match[str]) -> str:
        name = m.group(1)
        if name is None:
            return "$"
        group = match.group(int(name) if name.isdigit() else name)
        return group or ""

    return _REF.sub(ref, template)


def rewrite(value: str, regex: str, template: str) -> str:
    """Go's Regexp.ReplaceAllString(value, template): every non-overlapping match replaced; an
    empty match right after a match is not replaced; the search advances at least one
    character."""
    compiled = compile_regex(regex)
    out: list[str] = []
    last, pos = 0, 0
    while pos <= len(value):
        m = compiled.search(value, pos)
        if m is None:
            break
        start, end = m.start(), m.end()
        out.append(value[last:start])
        if end > last or start == 0:
            out.append(_expand(template, m))
        last = end
        pos = pos + 1 if pos + 1 > end else end
    out.append(value[last:])
    return "".join(out)
