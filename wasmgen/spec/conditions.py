"""Conditions on values taken from the request line and the Cookie header: query and cookie.

A query parameter is a `name=value` piece of the query string (split at "&", the name ends at
the first "="; `?q` has q with an empty value), compared raw: not percent-decoded, `+` stays
`+`. A cookie is a `name=value` pair of the request's Cookie header (split at ";", spaces and
tabs around the pair trimmed, the name ends at the first "=", pairs without "=" ignored, one
pair of surrounding double quotes taken off the value), as RFC 6265 section 5.4 sends them.
The first occurrence of a name decides, as for headers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, WithJsonSchema, model_validator

from wasmgen.spec.base import Model, exactly_one, plain_dump
from wasmgen.spec.names import MAX_NAME_BYTES, TOKEN, Regex

# RFC 3986 query characters without "&" (which separates pairs) and "=" (which ends a name).
_QUERY_NAME = re.compile(r"^(?:[A-Za-z0-9\-._~!$'()*+,;:@/?]|%[0-9A-Fa-f]{2})+$")
_QUERY_VALUE = re.compile(r"^(?:[A-Za-z0-9\-._~!$'()*+,;:@/?=]|%[0-9A-Fa-f]{2})*$")
# RFC 6265 cookie-octet: visible ASCII but DQUOTE, comma, semicolon and backslash.
_COOKIE_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$")


def _sized(name: str, what: str) -> None:
    if not name:
        raise ValueError(f"{what} is empty")
    if len(name) > MAX_NAME_BYTES:
        raise ValueError(
            f"{what} is {len(name)} bytes long; wasmgen accepts at most {MAX_NAME_BYTES}"
        )


def check_query_name(name: str) -> str:
    """Accept a query parameter name as it appears on the wire (RFC 3986, percent-encoded)."""
    _sized(name, "query parameter name")
    if not _QUERY_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a query parameter name as it appears in a URL: RFC 3986 query "
            "characters without '&', '=' and '#', with anything else percent-encoded (%20); "
            "names are compared raw, not decoded"
        )
    return name


def check_query_value(value: str) -> str:
    """Accept a raw query parameter value (RFC 3986 query characters without '&')."""
    if not _QUERY_VALUE.match(value):
        raise ValueError(
            f"{value!r} cannot appear as a query parameter value in a URL, so this never "
            "matches: use RFC 3986 query characters without '&' and '#', percent-encoded "
            "as the client sends them (%20 for a space); values are compared raw, not decoded"
        )
    return value


def check_cookie_name(name: str) -> str:
    """Accept a cookie name: an RFC 6265 token (case-sensitive)."""
    _sized(name, "cookie name")
    if not TOKEN.match(name):
        raise ValueError(
            f"{name!r} is not a cookie name (an RFC 6265 token: letters, digits and "
            "!#$%&'*+-.^_`|~)"
        )
    return name


def check_cookie_value(value: str) -> str:
    """Accept a cookie value (RFC 6265 cookie-octets; the quotes of a quoted one are not part)."""
    if not _COOKIE_VALUE.match(value):
        raise ValueError(
            f"{value!r} is not a cookie value (RFC 6265: visible ASCII but '\"', ',', ';' and "
            "'\\'), so this never matches"
        )
    return value


_SOURCE = re.compile(r"^[0-9A-Fa-f:.]+(/(0|[1-9][0-9]{0,2}))?$")


def check_source(block: str) -> str:
    """Accept an address block of a source condition: "10.0.0.0/8", "2001:db8::/32" or a
    bare address (all its bits), no host bits set beyond the prefix."""
    hint = 'write an address block as "10.0.0.0/8" or "2001:db8::/32", or a bare address'
    if not _SOURCE.match(block):
        raise ValueError(f"{block!r} is not an IPv4 or IPv6 address or address block: {hint}")
    try:
        ipaddress.ip_network(block, strict=True)
    except ValueError:
        try:
            wider = ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise ValueError(
                f"{block!r} is not an IPv4 or IPv6 address or address block: {hint}"
            ) from None
        raise ValueError(
            f"{block!r} has bits set past its prefix length; the block is {wider}"
        ) from None
    return block


def _schema(pattern: re.Pattern[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern.pattern})


QueryName = Annotated[str, AfterValidator(check_query_name), _schema(_QUERY_NAME)]
QueryValue = Annotated[str, AfterValidator(check_query_value), _schema(_QUERY_VALUE)]
CookieName = Annotated[str, AfterValidator(check_cookie_name), _schema(TOKEN)]
CookieValue = Annotated[str, AfterValidator(check_cookie_value), _schema(_COOKIE_VALUE)]
SourceBlock = Annotated[str, AfterValidator(check_source), _schema(_SOURCE)]
TESTS = ("present", "absent", "equals", "matches")


class NamedTest(Model):
    """A value looked up by name (a header, query parameter or cookie) that must be present,
    absent, equal to a value or match a regex; subclasses type name and equals."""

    what: ClassVar[str]
    name: str
    present: Literal[True] | None = None
    absent: Literal[True] | None = None
    equals: str | None = None
    matches: Regex | None = None

    @model_validator(mode="after")
    def _one(self) -> NamedTest:
        exactly_one(self, TESTS, f"a {self.what} condition")
        return self


class QueryCondition(NamedTest):
    """A query parameter that must be present, absent, equal to a raw value or match a regex."""

    what = "query"
    name: QueryName
    equals: QueryValue | None = None


class CookieCondition(NamedTest):
    """A cookie that must be present, absent, equal to a value or match a regex."""

    what = "cookie"
    name: CookieName
    equals: CookieValue | None = None


def blocks(when: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """when and every block nested in it under not: and any:, outermost first."""
    if not when:
        return
    yield when
    if "not" in when:
        yield from blocks(when["not"])
    for branch in when.get("any", []):
        yield from blocks(branch)


def check_nested(value: Any, key: str) -> Any:
    """Refuse an empty block under not:/any: and a status condition inside one (status is
    known only once the response arrives, the other conditions while the request passes)."""
    for block in value if isinstance(value, list) else [value] if value is not None else []:
        assert isinstance(block, BaseModel)
        if not block.model_fields_set:
            raise ValueError(
                f"an empty block under {key}: always holds, so "
                + ("not: never does; remove it" if key == "not" else "any: always does; remove it")
            )
        dumped = plain_dump(block)
        if any("status" in inner for inner in blocks(dumped)):
            raise ValueError(
                f"status cannot be inside {key}: (conditions nested there are tested on the "
                "request); put status at the top of when:, with the codes you mean, e.g. "
                '["200-499"] for not 5xx'
            )
    return value
