"""The typed spec: pydantic models for header rules, conditions, presets, tests and deployment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wasmgen.errors import WasmgenError
from wasmgen.spec.base import Model, empty_dict, empty_list, exactly_one, plain_dump
from wasmgen.spec.conditions import (
    CookieCondition,
    CookieName,
    NamedTest,
    QueryCondition,
    QueryName,
    SourceBlock,
    check_nested,
)
from wasmgen.spec.edits import CookieFlags, DedupeMode, DedupeName, QueryRemoval, Rewrite
from wasmgen.spec.expected import Expected
from wasmgen.spec.expr import ValueTemplate
from wasmgen.spec.image import expand_variables, parse_reference
from wasmgen.spec.names import (
    HeaderName,
    HeaderValue,
    K8sName,
    LabelKey,
    LabelValue,
    Method,
    Namespace,
    PlainText,
    Regex,
    RemoveName,
    VariantName,
)

DEFAULT_VARIANT = "headers"

_PORT = re.compile(r"(?<!\])(?<!:):[0-9]*$|(?<=\]):[0-9]*$")
_STATUS = re.compile(r"^(?:[1-5]xx|\d{3}|\d{3}-\d{3})$")
# An image reference without scheme; $VAR, ${VAR} and ${VAR:-default} come from the environment.


def _status(value: Any) -> str:
    """Normalise a status condition to "404", "5xx" or "200-299"."""
    if isinstance(value, bool):
        raise ValueError("expected a status code, class or range, got a boolean")
    text = str(value).strip().lower() if isinstance(value, int | str) else None
    if text is None or not _STATUS.match(text):
        raise ValueError(
            f'{value!r} is not a status code (404), class ("5xx") or range ("200-299")'
        )
    if "x" not in text:
        lo, _, hi = text.partition("-")
        hi = hi or lo
        if not (100 <= int(lo) <= int(hi) <= 599):
            raise ValueError(f"{value!r} is outside 100-599 or its range is reversed")
    if text == "1xx" or ("x" not in text and int(text.rpartition("-")[2] or text) < 200):
        raise ValueError(
            f"{value!r}: informational (1xx) responses never reach response rules, Envoy handles "
            "them before the filter chain"
        )
    return text


StatusSpec = Annotated[str, BeforeValidator(_status)]


@dataclass(frozen=True, eq=False)
class Source:
    """Where a validated spec came from: its file name and the parsed document (a YamlMap
    keeps line and column numbers), so later stages can point at a key. Specs that differ only
    in where they came from are equal."""

    name: str
    document: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Source)

    def __hash__(self) -> int:
        return 0


def _plain(value: Any, where: str) -> Any:
    """YAML or DSL data as plain dicts, lists and scalars (a variant validates it later)."""
    if isinstance(value, Mapping):
        return {k: _plain(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(
        f"{where} holds a {type(value).__name__}; use strings, numbers, lists and maps"
    )


class StringMatch(Model):
    """Match a path or host exactly, by prefix or suffix, or by RE2 regex (unanchored search)."""

    exact: PlainText | None = None
    prefix: PlainText | None = None
    suffix: PlainText | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _one(self) -> StringMatch:
        exactly_one(self, ("exact", "prefix", "suffix", "regex"), "a match")
        return self

    def as_config(self) -> dict[str, str]:
        """The single-key object the plugin configuration carries."""
        return {k: v for k, v in plain_dump(self).items() if isinstance(v, str)}


class HeaderCondition(NamedTest):
    """A request header that must be present, absent, equal to a value or match a regex."""

    what = "header"
    name: HeaderName
    equals: HeaderValue | None = None

    @field_validator("equals")
    @classmethod
    def _trimmed(cls, v: str | None) -> str | None:
        if v is not None and v != v.strip(" \t"):
            raise ValueError(
                f"{v!r} starts or ends with whitespace, which HTTP parsers (Envoy's too) strip "
                "from header values, so it would never match"
            )
        return v


class When(Model):
    """Conditions on a rule; all of them must hold."""

    path: StringMatch | None = None
    method: list[Method] | None = Field(default=None, min_length=1)
    host: StringMatch | None = None
    headers: list[HeaderCondition] | None = Field(default=None, min_length=1)
    query: list[QueryCondition] | None = Field(default=None, min_length=1)
    cookie: list[CookieCondition] | None = Field(default=None, min_length=1)
    source: list[SourceBlock] | None = Field(default=None, min_length=1)
    status: list[StatusSpec] | None = Field(default=None, min_length=1)
    not_: When | None = Field(default=None, alias="not")
    any_: list[When] | None = Field(default=None, alias="any", min_length=1)

    @field_validator("not_", "any_")
    @classmethod
    def _nested(cls, v: When | list[When] | None, info: ValidationInfo) -> Any:
        return check_nested(v, "not" if info.field_name == "not_" else "any")

    @field_validator("any_", mode="before")
    @classmethod
    def _some(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError(
                "an empty any: never holds, so the rule would never run: give it at least one block"
            )
        return v

    @field_validator("path")
    @classmethod
    def _path_pattern(cls, v: StringMatch | None) -> StringMatch | None:
        if v is None or v.regex is not None:
            return v
        text = v.exact if v.exact is not None else v.prefix if v.prefix is not None else v.suffix
        text = text or ""
        if any(c in text for c in "?#"):
            raise ValueError(
                f"{text!r} has a query or fragment, but paths are compared without them, so this "
                "never matches"
            )
        if v.suffix is None and not text.startswith("/"):
            raise ValueError(f"{text!r} does not start with '/', as every request path does")
        return v

    @field_validator("host")
    @classmethod
    def _host_pattern(cls, v: StringMatch | None) -> StringMatch | None:
        if v is None or v.regex is not None:
            return v
        text = v.exact if v.exact is not None else v.prefix if v.prefix is not None else v.suffix
        text = text or ""
        if text != text.lower():
            raise ValueError("host patterns must be lower-case (hosts are compared lower-cased)")
        if (v.exact is not None or v.suffix is not None) and _PORT.search(text):
            raise ValueError(
                f"{text!r} has a port, but hosts are compared without their port, so this never "
                f"matches; write {_PORT.sub('', text)!r}"
            )
        return v


def one_pair_per_target(pairs: dict[str, str] | None) -> dict[str, str] | None:
    """Refuse maps whose meaning would depend on key order: Istio hands pluginConfig to the
    plugin as protojson with sorted keys, and Kubernetes keeps no key order either."""
    targets = list((pairs or {}).values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(
            f"{twice[0]!r} is the target of more than one pair; the last would win, and "
            "which one is last depends on key order (Istio sorts pluginConfig keys): "
            "use one pair per target, or separate rules"
        )
    return pairs


class Respond(Model):
    """Answer the request locally instead of forwarding it; copyFromRequest echoes request
    headers (request name -> reply header name) into the reply, after headers."""

    status: int = Field(ge=200, le=599)
    body: str = ""
    headers: dict[HeaderName, ValueTemplate] | None = None
    copy_from_request: dict[HeaderName, HeaderName] | None = Field(default=None, min_length=1)

    @field_validator("copy_from_request")
    @classmethod
    def _order_free(cls, pairs: dict[str, str] | None) -> dict[str, str] | None:
        # The sources are read from the request as it stands: only the targets can collide.
        return one_pair_per_target(pairs)


OPS = (
    "set",
    "append",
    "add_if_absent",
    "remove",
    "rename",
    "copy_from_request",
    "respond",
    "cookie_flags",
    "remove_cookie",
    "dedupe",
    "set_query",
    "remove_query",
    "rewrite",
)


class Rule(Model):
    """One header operation, optionally guarded by conditions."""

    set: dict[HeaderName, ValueTemplate] | None = Field(default=None, min_length=1)
    append: dict[HeaderName, ValueTemplate] | None = Field(default=None, min_length=1)
    add_if_absent: dict[HeaderName, ValueTemplate] | None = Field(default=None, min_length=1)
    remove: list[RemoveName] | None = Field(default=None, min_length=1)
    rename: dict[HeaderName, HeaderName] | None = Field(default=None, min_length=1)
    copy_from_request: dict[HeaderName, HeaderName] | None = Field(default=None, min_length=1)
    respond: Respond | None = None
    cookie_flags: CookieFlags | None = None
    remove_cookie: list[CookieName] | None = Field(default=None, min_length=1)
    dedupe: dict[DedupeName, DedupeMode] | None = Field(default=None, min_length=1)
    set_query: dict[QueryName, Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=64
    )
    remove_query: list[QueryRemoval] | None = Field(default=None, min_length=1)
    rewrite: dict[HeaderName, Rewrite] | None = Field(default=None, min_length=1)
    when: When | None = None

    @model_validator(mode="after")
    def _one_op(self) -> Rule:
        exactly_one(self, OPS, "a rule")
        return self

    @field_validator("rename", "copy_from_request")
    @classmethod
    def _order_free(
        cls, pairs: dict[str, str] | None, info: ValidationInfo
    ) -> dict[str, str] | None:
        """Refuse maps whose meaning would depend on key order (see one_pair_per_target)."""
        if not pairs:
            return pairs
        one_pair_per_target(pairs)
        targets = list(pairs.values())
        # copyFromRequest reads the request as the client sent it: its sources never change.
        chained = sorted(set(pairs) & set(targets)) if info.field_name == "rename" else []
        if chained:
            raise ValueError(
                f"{chained[0]!r} is both a source and a target here, so the result depends on "
                "which pair runs first, i.e. on key order (Istio sorts pluginConfig keys): "
                "split the chain into separate rules, which run in order"
            )
        return pairs

    @property
    def op(self) -> str:
        """The name of this rule's operation (snake_case)."""
        return next(f for f in OPS if getattr(self, f) is not None)

    def as_config(self) -> dict[str, Any]:
        """The rule as the plugin configuration carries it (camelCase keys)."""
        result: dict[str, Any] = plain_dump(self)
        return result


class TargetRef(Model):
    """A gateway or waypoint the plugin attaches to (Istio targetRefs)."""

    group: str = "gateway.networking.k8s.io"
    kind: Literal["Gateway", "GatewayClass", "Service", "ServiceEntry"] = "Gateway"
    name: K8sName


class Presets(Model):
    """Ready-made rule sets a user can switch on."""

    secure_headers: bool = False
    strip_server_headers: bool = False


class TestRequest(Model):
    """A request a test case sends."""

    method: Method = "GET"
    path: PlainText = "/"
    host: PlainText = "example.com"
    headers: dict[str, str] = Field(default_factory=empty_dict)


class TestResponse(Model):
    """The upstream response a test case receives."""

    status: int = Field(default=200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=empty_dict)


class Expect(Model):
    """What must hold after the plugin ran: each header's first value exactly, a match of
    {matches: RE2} (a value that varies), or null for absent."""

    request_headers: dict[str, Expected] | None = None
    response_headers: dict[str, Expected] | None = None
    local_response: int | None = Field(default=None, ge=200, le=599)


class TestCase(Model):
    """A request/response pair and expectations; null means the header must be absent."""

    __test__ = False  # not a pytest class
    name: PlainText = Field(min_length=1)
    request: TestRequest = Field(default_factory=TestRequest)
    response: TestResponse = Field(default_factory=TestResponse)
    expect: Expect


class Spec(Model):
    """A header plugin: where it runs, how it ships, and its rules."""

    version: Literal[1] = 1
    name: K8sName
    namespace: Namespace = "default"
    selector: dict[LabelKey, LabelValue] | None = Field(default=None, min_length=1)
    target_refs: list[TargetRef] | None = Field(default=None, min_length=1, max_length=16)
    image: str = Field(description="Image reference without oci://, e.g. registry/wasm:v1")
    image_pull_policy: Literal["IfNotPresent", "Always"] | None = None
    image_pull_secret: K8sName | None = None
    phase: Literal["AUTHN", "AUTHZ", "STATS"] | None = None
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    fail_strategy: Literal["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"] | None = None
    on_invalid_config: Literal["fail", "passThrough"] = "fail"
    templates: str | None = Field(
        default=None,
        description="A template directory (relative to the spec) used instead of the variant's "
        "own templates; files it lacks come from the built-in ones. Start one with "
        "`wasmgen variant DIR`",
    )
    variant: VariantName = Field(
        default=DEFAULT_VARIANT,
        description="The kind of plugin: headers (the default: the rules below) or an installed "
        "variant (`wasmgen variants` lists them) that turns options: into rules and templates",
    )
    options: Annotated[dict[str, Any], BeforeValidator(lambda v: _plain(v, "options"))] = Field(
        default_factory=empty_dict,
        description="The variant's options (`wasmgen schema --variant NAME` has their schema)",
    )
    presets: Presets = Field(default_factory=Presets)
    request: list[Rule] = Field(default_factory=empty_list)
    response: list[Rule] = Field(default_factory=empty_list)
    tests: list[TestCase] = Field(default_factory=empty_list)

    _source: Source = PrivateAttr(default_factory=lambda: Source("<spec>", None))

    def templates_dir(self) -> Path | None:
        """The template directory, resolved against the spec file's folder."""
        if self.templates is None:
            return None
        return Path(self.templates)  # load_spec makes it absolute; DSL paths are relative to cwd

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        v = expand_variables(v.strip()).removeprefix("oci://")
        try:
            parse_reference(v, require_registry=False)
        except WasmgenError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None
        return v


Loc = tuple[str | int, ...]
