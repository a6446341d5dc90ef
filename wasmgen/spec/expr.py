"""Value expressions: `${request.id}`, `${path.1}`, ... in the header values of set, append,
addIfAbsent and respond.headers, and `$$` for a literal `$`.

A value is parsed into parts, each literal text or a reference to something of the traffic.
A `$` that starts neither `${` nor `$$` is refused (write `$$`): `$1` or `$HOME` would otherwise
be read as text by some and as a reference by others. The compiled plugin parses the values
of its pluginConfig with the same grammar and the same messages (runtime/expr.go), so a value
refused here is refused there in the same words.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from wasmgen.records import record
from wasmgen.spec.names import MAX_NAME_BYTES, TOKEN, check_header_value

# The expressions, as the hint lists them; NAME and N are arguments.
KNOWN = (
    "request.header.NAME",
    "request.path",
    "request.query.NAME",
    "request.cookie.NAME",
    "request.method",
    "request.host",
    "request.id",
    "source.address",
    "response.status",
    "response.header.NAME",
    "path.N",
    "path.NAME",
    "time.http",
    "time.unix",
)

PLAIN = ("request.path", "request.method", "request.host", "request.id", "source.address",
         "response.status", "time.http", "time.unix")  # fmt: skip
NAMED = ("request.header.", "request.query.", "request.cookie.", "response.header.", "path.")
RESPONSE_ONLY = ("response.status", "response.header")
_QUERY_NAME = re.compile(r"^(?:[A-Za-z0-9\-._~!$'()*+,;:@/?]|%[0-9A-Fa-f]{2})+$")
_GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@record
class Ref:
    """A reference: kind is an entry of PLAIN, or a NAMED prefix without its dot (e.g.
    "request.header"), whose argument is arg."""

    kind: str
    arg: str = ""

    @property
    def text(self) -> str:
        """The expression as written: ${request.header.x-a}."""
        return "${" + self.kind + ("." + self.arg if self.kind not in PLAIN else "") + "}"


Part = str | Ref


def parse(value: str) -> tuple[Part, ...]:
    """value as parts, literal text merged; ValueError with runtime/expr.go's message."""
    parts: list[Part] = []
    text: list[str] = []
    i = 0
    while i < len(value):
        j = value.find("$", i)
        if j < 0:
            text.append(value[i:])
            break
        text.append(value[i:j])
        nxt = value[j + 1 : j + 2]
        if nxt == "$":
            text.append("$")
            i = j + 2
            continue
        at = len(value[:j].encode())
        if nxt != "{":
            raise ValueError(
                f'"$" at byte {at} starts no expression: write $$ for a literal "$", or '
                "${...} for a value from the traffic"
            )
        end = value.find("}", j)
        if end < 0:
            raise ValueError(f'"${{" at byte {at} has no closing "}}"')
        ref = _ref(value[j + 2 : end])
        if text and "".join(text):
            parts.append("".join(text))
        text = []
        parts.append(ref)
        i = end + 1
    if "".join(text):
        parts.append("".join(text))
    return tuple(parts)


def _ref(body: str) -> Ref:
    if body in PLAIN:
        return Ref(body)
    for prefix in NAMED:
        if body.startswith(prefix):
            kind, arg = prefix[:-1], body[len(prefix) :]
            _check_arg(kind, arg, body)
            return Ref(kind, arg)
    raise ValueError(f"unknown expression ${{{body}}}; known: {', '.join(KNOWN)}")


def _check_arg(kind: str, arg: str, body: str) -> None:
    if kind.endswith(".header") and not (TOKEN.match(arg) and arg == arg.lower()):
        raise ValueError(f'${{{body}}}: "{arg}" is not a lower-case header name (RFC 9110 token)')
    if kind == "request.query" and (not _QUERY_NAME.match(arg) or len(arg) > 256):
        raise ValueError(
            f'${{{body}}}: "{arg}" is not a query parameter name as it appears in a URL (RFC '
            "3986 query characters without '&', '=' and '#', percent-encoded)"
        )
    if kind == "request.cookie" and not (TOKEN.match(arg) and len(arg) <= MAX_NAME_BYTES):
        raise ValueError(
            f'${{{body}}}: "{arg}" is not a cookie name (an RFC 6265 token: letters, digits and '
            "!#$%&'*+-.^_`|~)"
        )
    if kind == "path" and not (arg.isascii() and arg.isdigit()) and not _GROUP_NAME.match(arg):
        raise ValueError(f'${{{body}}}: "{arg}" is neither a group number nor a group name')


def has_refs(parts: tuple[Part, ...]) -> bool:
    """Whether parts take anything from the traffic (a value of literal text and $$ does not)."""
    return any(isinstance(p, Ref) for p in parts)


def literal(parts: tuple[Part, ...]) -> str:
    """The text of parts without references (what a value of text and $$ writes)."""
    return "".join(p for p in parts if isinstance(p, str))


def group_number(arg: str) -> int:
    """A path group's number as runtime/expr.go reads it (more than 4 digits: 99999)."""
    return int(arg) if len(arg) <= 4 else 99999


def check_context(
    parts: tuple[Part, ...], phase: str, groups: int | None, names: frozenset[str]
) -> str | None:
    """What is wrong with parts in a rule of phase whose when.path.regex has groups groups
    named names (groups None: no when.path.regex); None when nothing."""
    for ref in parts:
        if not isinstance(ref, Ref):
            continue
        if ref.kind in RESPONSE_ONLY and phase != "response":
            return f"{ref.text} is only known to response rules"
        if ref.kind != "path":
            continue
        if groups is None:
            return f"{ref.text} needs a when.path.regex on the rule, whose groups it reads"
        if ref.arg.isdigit() and group_number(ref.arg) > groups:
            return f"{ref.text}: the rule's when.path.regex has {groups} group(s)"
        if not ref.arg.isdigit() and ref.arg not in names:
            return f'{ref.text}: the rule\'s when.path.regex has no group named "{ref.arg}"'
    return None


# A header value a rule writes: text, ${...} references to the traffic, $$ for a "$" (checked
# with the rule's context by checks.py; the pattern lets an editor flag a lone "$").
ValueTemplate = Annotated[
    str,
    AfterValidator(check_header_value),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(?:[^$]|\$\$|\$\{[^}]*\})*$",
            "description": "Text, ${request.header.NAME}, ${request.path}, ${request.query.NAME}, "
            "${request.cookie.NAME}, ${request.method}, ${request.host}, ${request.id}, ${source.address}, "
            "${response.status}, ${response.header.NAME}, ${path.N}, ${path.NAME}, ${time.http}, "
            "${time.unix}; $$ is a literal $",
        }
    ),
]
