"""The value edits no route configuration offers: cookieFlags hardens the upstream's Set-Cookie,
dedupe collapses a header's repeated values, setQuery and removeQuery edit the query string,
rewrite replaces regex matches in a header's values.

A Set-Cookie line is `name=value` followed by `; attribute` pieces (RFC 6265 section 4.1). A
line whose first piece has no "=" is no cookie (section 5.2 has browsers ignore it) and is
left alone, as is every cookie not named in `cookies` when that list is given.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from wasmgen.spec.base import Model
from wasmgen.spec.conditions import CookieName, check_query_name
from wasmgen.spec.names import HeaderName, HeaderValue, Regex, compile_regex

SAME_SITE = ("Strict", "Lax", "None")


class CookieFlags(Model):
    """Add or remove Secure and HttpOnly and set SameSite on each Set-Cookie of the response
    (only those of the named cookies when `cookies` is given)."""

    secure: bool | None = None
    http_only: bool | None = None
    same_site: Literal["Strict", "Lax", "None"] | None = None
    cookies: list[CookieName] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _sound(self) -> CookieFlags:
        if self.secure is None and self.http_only is None and self.same_site is None:
            raise ValueError("cookieFlags needs at least one of secure, httpOnly, sameSite")
        if self.same_site == "None" and self.secure is not True:
            raise ValueError(
                "sameSite: None needs secure: true; browsers reject a SameSite=None cookie "
                "that is not Secure"
            )
        return self


# Headers whose values hold commas that separate nothing (a date, a cookie's attributes), so
# splitting them at commas would cut values in half.
NOT_COMMA_LISTS = {
    "set-cookie": "Set-Cookie lines cannot be joined with commas (RFC 6265 3); use removeCookie",
    "cookie": "cookies are separated by ';', not ','; use removeCookie",
    **dict.fromkeys(
        (
            "date",
            "expires",
            "last-modified",
            "if-modified-since",
            "if-unmodified-since",
            "retry-after",
        ),
        "its value is an HTTP date, whose comma ('Wed, 21 Oct 2015') separates nothing",
    ),
}


def check_dedupe_name(name: str) -> str:
    """Refuse a header whose values are not comma-separated lists."""
    if name in NOT_COMMA_LISTS:
        raise ValueError(f"{name!r} cannot be deduplicated: {NOT_COMMA_LISTS[name]}")
    return name


DedupeName = Annotated[HeaderName, AfterValidator(check_dedupe_name)]
DedupeMode = Literal["first", "last", "unique"]


def check_query_removal(name: str) -> str:
    """A query parameter name as it appears in a URL, or a prefix of one with a trailing *."""
    check_query_name(name[:-1] if name.endswith("*") and len(name) > 1 else name)
    return name


QueryRemoval = Annotated[
    str, AfterValidator(check_query_removal), WithJsonSchema({"type": "string", "minLength": 1})
]
# What setQuery leaves as it is in a value; every other byte (of its UTF-8) is percent-encoded.
# "&", "=", "+", "#" and "%" are encoded: they would end the pair, mean a space, or read as an
# escape.
QUERY_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$'()*,;:@/?"
)


def encode_query_value(value: str) -> str:
    """value as it goes into the query string: percent-encoded where needed (%XX, upper-case)."""
    return "".join(chr(b) if b in QUERY_SAFE else f"%{b:02X}" for b in value.encode())


_TEMPLATE_PIECE = re.compile(r"\$(?:\$|([0-9]+)|\{([A-Za-z0-9_]+)\})")


def go_template(regex: str, template: str) -> str:
    """A rewrite's `with` in the form Go's regexp.Expand reads without ambiguity (`${1}`,
    `${name}`, `$$`); ValueError naming what is wrong: a "$" that starts nothing, a group the
    regex does not have."""
    compiled = compile_regex(regex)
    out: list[str] = []
    at = 0
    for m in _TEMPLATE_PIECE.finditer(template):
        literal = template[at : m.start()]
        if "$" in literal:
            raise ValueError(
                f"{template!r}: a '$' must start $1, ${{1}}, ${{name}} or $$ (a literal $)"
            )
        out.append(literal)
        ref = m.group(1) or m.group(2)
        if ref is None:
            out.append("$$")
        elif ref.isdigit() and int(ref) > compiled.groups:
            raise ValueError(
                f"{template!r} uses ${ref}, but {regex!r} has {compiled.groups} group(s)"
            )
        elif not ref.isdigit() and ref not in compiled.groupindex:
            raise ValueError(f"{template!r} uses ${{{ref}}}, but {regex!r} has no group {ref!r}")
        else:
            out.append(f"${{{int(ref) if ref.isdigit() else ref}}}")
        at = m.end()
    if "$" in template[at:]:
        raise ValueError(
            f"{template!r}: a '$' must start $1, ${{1}}, ${{name}} or $$ (a literal $)"
        )
    out.append(template[at:])
    return "".join(out)


class Rewrite(Model):
    """Rewrite every match of regex (RE2, as Go's regexp reads it) in a header's values with
    `with`, where $1 and ${name} are captures and $$ is a literal $."""

    regex: Regex
    with_: HeaderValue = Field(alias="with")

    @model_validator(mode="after")
    def _template(self) -> Rewrite:
        go_template(self.regex, self.with_)
        return self
