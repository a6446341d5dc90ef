"""The built-in cors variant: Cross-Origin Resource Sharing as header rules for the engine.

A preflight (OPTIONS from an allowed origin with access-control-request-method) is answered
locally with 204 and the access-control-allow-* headers; it never reaches the upstream. Other
responses to an allowed origin get access-control-allow-origin (the origin itself, or * when
every origin is allowed without credentials), vary: origin, and the exposed headers and
credentials as configured. An origin that is not allowed is never echoed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wasmgen.spec.base import empty_list
from wasmgen.spec.names import TOKEN, Method, Regex
from wasmgen.variants.base import Rules, Variant, VariantOptions

ANY = "*"
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://(?:\[[0-9a-f:.]+\]|[a-z0-9_.~-]+)(?::[0-9]{1,5})?$")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def _origin(value: str) -> str:
    if value == ANY:
        return value
    if value.endswith("/"):
        raise ValueError(
            f"{value!r} has a path; an origin is scheme://host[:port], write {value.rstrip('/')!r}"
        )
    if value != value.lower():
        raise ValueError(
            f"{value!r} must be lower-case: browsers send origins lower-cased and they are "
            f"compared exactly; write {value.lower()!r}"
        )
    if not _ORIGIN.match(value):
        raise ValueError(
            f"{value!r} is not an origin: scheme://host[:port] with no path, e.g. "
            "https://app.example.com (or '*' for every origin)"
        )
    return value


class AllowedOrigin(VariantOptions):
    """An allowed origin: exactly (a plain string is short for {exact: ...}), or any origin a
    RE2 regex matches as a whole (the pattern is anchored at both ends)."""

    exact: Annotated[str, AfterValidator(_origin)] | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _one(self) -> AllowedOrigin:
        if (self.exact is None) == (self.regex is None):
            raise ValueError("an allowed origin needs exactly one of exact, regex")
        return self


def _header_token(value: str) -> str:
    if not TOKEN.match(value):
        raise ValueError(f"{value!r} is not a header name (RFC 9110 token)")
    if value != value.lower():
        raise ValueError(f"header name {value!r} must be lower-case: write {value.lower()!r}")
    return value


HeaderToken = Annotated[str, AfterValidator(_header_token)]


def _origin_item(value: Any) -> Any:
    return {"exact": value} if isinstance(value, str) else value


class CorsOptions(VariantOptions):
    """Which cross-origin callers may use the service, and what the browser lets them do."""

    allow_origins: list[
        Annotated[
            AllowedOrigin, BeforeValidator(_origin_item, json_schema_input_type=str | AllowedOrigin)
        ]
    ] = Field(
        min_length=1,
        description="Origins allowed to call: https://app.example.com (exact), "
        "{regex: '^https://[a-z0-9-]+\\.example\\.com$'} (whole origin), or '*' alone for every origin",
    )
    allow_methods: list[Method] = Field(
        default_factory=lambda: ["GET", "HEAD", "POST"],
        min_length=1,
        description="Methods a preflight allows (access-control-allow-methods)",
    )
    allow_headers: list[HeaderToken] = Field(
        default_factory=empty_list,
        description="Request headers a preflight allows (access-control-allow-headers)",
    )
    expose_headers: list[HeaderToken] = Field(
        default_factory=empty_list,
        description="Response headers scripts may read (access-control-expose-headers)",
    )
    allow_credentials: bool = Field(
        default=False,
        description="Let browsers send cookies and credentials (access-control-allow-credentials)",
    )
    max_age: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Seconds a browser may cache a preflight's answer (access-control-max-age)",
    )

    @field_validator("allow_origins")
    @classmethod
    def _any_alone(cls, origins: list[AllowedOrigin]) -> list[AllowedOrigin]:
        if len(origins) > 1 and any(o.exact == ANY for o in origins):
            raise ValueError("'*' allows every origin: list it alone, or list origins without it")
        return origins

    @field_validator("allow_credentials")
    @classmethod
    def _credentials_name_origins(cls, credentials: bool, info: ValidationInfo) -> bool:
        origins = info.data.get("allow_origins") or []
        if credentials and any(o.exact == ANY for o in origins):
            raise ValueError(
                "cannot be true with allowOrigins: ['*']: the CORS protocol "
                "forbids access-control-allow-origin: * on credentialed requests and browsers "
                "reject such responses; list the allowed origins instead"
            )
        for field in ("allow_headers", "expose_headers"):
            if credentials and ANY in (info.data.get(field) or []):
                raise ValueError(
                    f"allowCredentials: true makes '*' in {field.replace('_h', 'H')} a literal "
                    "header name, not a wildcard (CORS protocol): list the header names"
                )
        return credentials

    @property
    def any_origin(self) -> bool:
        """Every origin is allowed."""
        return self.allow_origins[0].exact == ANY


def _anchored(pattern: str) -> str:
    """pattern without its own ^...$ anchors (they are added around the alternatives)."""
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[1:-1]
    return pattern


def origin_condition(options: CorsOptions) -> dict[str, Any]:
    """The request-header condition that holds for exactly the allowed origins."""
    if options.any_origin:
        return {"name": "origin", "present": True}
    exact = [o.exact for o in options.allow_origins if o.exact is not None]
    regexes = [o.regex for o in options.allow_origins if o.regex is not None]
    if len(exact) == 1 and not regexes:
        return {"name": "origin", "equals": exact[0]}
    alternatives = [_RE2_SPECIAL.sub(r"\\\1", e) for e in exact] + [_anchored(r) for r in regexes]
    return {"name": "origin", "matches": f"^(?:{'|'.join(alternatives)})$"}


class Cors(Variant[CorsOptions]):
    """CORS: answers preflights locally and marks responses to the allowed origins."""

    options_model = CorsOptions

    def rules(self, options: CorsOptions) -> Rules:
        """The preflight reply (request) and the marks on other responses (response)."""
        origin = origin_condition(options)
        echo = not options.any_origin
        # Headers both a preflight's reply and other responses carry.
        common: dict[str, str] = {}
        if not echo:
            common["access-control-allow-origin"] = ANY
        if options.allow_credentials:
            common["access-control-allow-credentials"] = "true"
        preflight = {"access-control-allow-methods": ", ".join(options.allow_methods)}
        if options.allow_headers:
            preflight["access-control-allow-headers"] = ", ".join(options.allow_headers)
        preflight.update(common)
        if options.max_age is not None:
            preflight["access-control-max-age"] = str(options.max_age)
        if echo:
            preflight["vary"] = "origin"
        reply: dict[str, Any] = {"status": 204, "headers": preflight}
        if echo:
            reply["copyFromRequest"] = {"origin": "access-control-allow-origin"}
        asks = {"name": "access-control-request-method", "present": True}
        request = [{"respond": reply, "when": {"method": ["OPTIONS"], "headers": [origin, asks]}}]
        when = {"headers": [origin]}
        response: list[dict[str, Any]] = []
        if echo:
            response.append(
                {"copyFromRequest": {"origin": "access-control-allow-origin"}, "when": when}
            )
            response.append({"append": {"vary": "origin"}, "when": when})
        marks = dict(common)
        if options.expose_headers:
            marks["access-control-expose-headers"] = ", ".join(options.expose_headers)
        if marks:
            response.append({"set": marks, "when": when})
        return Rules(request=request, response=response)
