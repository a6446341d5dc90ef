"""A small fluent builder for specs in Python; it validates exactly as the YAML loader does."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from wasmgen.errors import WasmgenError
from wasmgen.spec.loader import validate
from wasmgen.spec.models import Spec


def _mapping(function: str, value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise WasmgenError(
            f"{function}() takes a mapping of {what}, got {type(value).__name__}",
            hint=f'e.g. {function}({{"x-example": "value"}})',
        )
    return copy.deepcopy(dict(value))


class RuleBuilder:
    """One header operation; add conditions with .when(...)."""

    def __init__(self, op: str, arg: Any) -> None:
        self._data: dict[str, Any] = {op: arg}

    def when(self, **conditions: Any) -> RuleBuilder:
        """Guard the rule: path={"prefix": "/api"}, method=["GET"], host=..., headers=[...],
        query=[...], cookie=[...], source=["10.0.0.0/8"], status=["5xx"], not_={...} (not is a
        Python keyword), any=[...]."""
        spelled = {("not" if k == "not_" else k): v for k, v in conditions.items()}
        self._data["when"] = {**self._data.get("when", {}), **spelled}
        return self

    def data(self) -> dict[str, Any]:
        """The rule as the YAML spec spells it."""
        return copy.deepcopy(self._data)


def set_headers(headers: dict[str, str]) -> RuleBuilder:
    """Overwrite or create headers."""
    return RuleBuilder("set", _mapping("set_headers", headers, "header names to values"))


def append(headers: dict[str, str]) -> RuleBuilder:
    """Add a value, keeping existing ones."""
    return RuleBuilder("append", _mapping("append", headers, "header names to values"))


def add_if_absent(headers: dict[str, str]) -> RuleBuilder:
    """Add only when the header is not there yet."""
    return RuleBuilder("addIfAbsent", _mapping("add_if_absent", headers, "header names to values"))


def remove(*names: str) -> RuleBuilder:
    """Remove headers by name, or by prefix with a trailing '*'."""
    return RuleBuilder("remove", list(names))


def rename(mapping: dict[str, str]) -> RuleBuilder:
    """Move a header's values to a new name."""
    return RuleBuilder("rename", _mapping("rename", mapping, "old header names to new ones"))


def copy_from_request(mapping: dict[str, str]) -> RuleBuilder:
    """Copy request header values into response headers (request name -> response name)."""
    return RuleBuilder(
        "copyFromRequest",
        _mapping("copy_from_request", mapping, "request header names to response header names"),
    )


def respond(
    status: int,
    body: str = "",
    headers: dict[str, str] | None = None,
    copy_from_request: dict[str, str] | None = None,
) -> RuleBuilder:
    """Answer locally instead of forwarding (request rules only); copy_from_request echoes
    request headers into the reply (request name -> reply header name)."""
    arg: dict[str, Any] = {"status": status}
    if body:
        arg["body"] = body
    if headers:
        arg["headers"] = _mapping("respond", headers, "header names to values")
    if copy_from_request:
        arg["copyFromRequest"] = _mapping(
            "respond", copy_from_request, "request header names to reply header names"
        )
    return RuleBuilder("respond", arg)


def cookie_flags(
    secure: bool | None = None,
    http_only: bool | None = None,
    same_site: str | None = None,
    cookies: list[str] | None = None,
) -> RuleBuilder:
    """Harden the upstream's Set-Cookie (response rules only): True adds Secure or HttpOnly,
    False removes it, same_site sets SameSite (Strict, Lax or None); cookies limits it to
    those cookie names."""
    arg: dict[str, Any] = {}
    for key, value in (("secure", secure), ("httpOnly", http_only), ("sameSite", same_site)):
        if value is not None:
            arg[key] = value
    if cookies is not None:
        arg["cookies"] = list(cookies)
    return RuleBuilder("cookieFlags", arg)


def remove_cookie(*names: str) -> RuleBuilder:
    """Remove cookies by name: from the Cookie header (request rules; the header goes when
    none is left) or the Set-Cookie lines that set them (response rules)."""
    return RuleBuilder("removeCookie", list(names))


def dedupe(headers: dict[str, str]) -> RuleBuilder:
    """Collapse repeated values of headers into one: {"access-control-allow-origin": "first"};
    modes first, last or unique."""
    return RuleBuilder(
        "dedupe", _mapping("dedupe", headers, "header names to first, last or unique")
    )


def set_query(params: dict[str, str]) -> RuleBuilder:
    """Set query parameters of the request's :path (request rules; values percent-encoded)."""
    return RuleBuilder("setQuery", _mapping("set_query", params, "parameter names to values"))


def remove_query(*names: str) -> RuleBuilder:
    """Remove query parameters of the request's :path by name, or by prefix with a trailing '*'."""
    return RuleBuilder("removeQuery", list(names))


def rewrite(rewrites: dict[str, dict[str, str]]) -> RuleBuilder:
    """Rewrite regex matches in header values: {"location": {"regex": "^http://(.*)$",
    "with": "https://$1"}}; $1 and ${name} are captures, $$ a literal $."""
    return RuleBuilder("rewrite", _mapping("rewrite", rewrites, "header names to {regex, with}"))


def _rules(method: str, rules: tuple[Any, ...]) -> list[dict[str, Any]]:
    bad = [r for r in rules if not isinstance(r, RuleBuilder)]
    if bad:
        raise WasmgenError(
            f"Plugin.{method}() takes rules, got {type(bad[0]).__name__} {bad[0]!r}",
            hint="build rules with set_headers({...}), append, add_if_absent, remove, rename, "
            "copy_from_request, respond, cookie_flags, remove_cookie, dedupe, set_query, "
            "remove_query or rewrite",
        )
    return [r.data() for r in rules]


class Plugin:
    """Fluent spec builder: Plugin("name").select(app="x").image("reg/p:v1").response(...).build()."""

    def __init__(self, name: str, namespace: str = "default") -> None:
        self._data: dict[str, Any] = {"name": name, "namespace": namespace}

    def select(self, labels: Mapping[str, str] | None = None, /, **more: str) -> Plugin:
        """Apply to workloads with these labels (Istio selector.matchLabels); keys that are not
        Python names go in a mapping: select({"app.kubernetes.io/name": "web"})."""
        given = _mapping("select", labels, "label keys to values") if labels is not None else {}
        self._data["selector"] = {**self._data.get("selector", {}), **given, **more}
        return self

    def target(
        self, name: str, kind: str = "Gateway", group: str = "gateway.networking.k8s.io"
    ) -> Plugin:
        """Attach to a gateway or waypoint (Istio targetRefs)."""
        self._data.setdefault("targetRefs", []).append({"group": group, "kind": kind, "name": name})
        return self

    def image(self, ref: str) -> Plugin:
        """The image reference the manifests point at."""
        self._data["image"] = ref
        return self

    def options(self, **fields: Any) -> Plugin:
        """Other spec fields by their YAML names: phase, priority, failStrategy, onInvalidConfig, ..."""
        self._data.update(fields)
        return self

    def variant(self, name: str, options: Mapping[str, Any] | None = None, **fields: Any) -> Plugin:
        """Make this a plugin of another variant with its options, by their YAML (or Python)
        names: variant("cors", {"allowOrigins": ["https://app.example.com"]})."""
        given = (
            _mapping("variant", options, "option names to values") if options is not None else {}
        )
        self._data["variant"] = name
        self._data["options"] = {**self._data.get("options", {}), **given, **fields}
        return self

    def presets(self, secure_headers: bool = False, strip_server_headers: bool = False) -> Plugin:
        """Switch on ready-made rule sets."""
        self._data["presets"] = {
            "secureHeaders": secure_headers,
            "stripServerHeaders": strip_server_headers,
        }
        return self

    def request(self, *rules: RuleBuilder) -> Plugin:
        """Append request rules, applied in order."""
        self._data.setdefault("request", []).extend(_rules("request", rules))
        return self

    def response(self, *rules: RuleBuilder) -> Plugin:
        """Append response rules, applied in order."""
        self._data.setdefault("response", []).extend(_rules("response", rules))
        return self

    def test(
        self,
        name: str,
        expect: dict[str, Any],
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
    ) -> Plugin:
        """Declare a test case (see the spec's tests:)."""
        case: dict[str, Any] = {"name": name, "expect": expect}
        if request:
            case["request"] = request
        if response:
            case["response"] = response
        self._data.setdefault("tests", []).append(case)
        return self

    def data(self) -> dict[str, Any]:
        """The spec as YAML would spell it."""
        return copy.deepcopy(self._data)

    def build(self) -> Spec:
        """Validate into a Spec; raises SpecError listing every problem."""
        return validate(self.data(), "<python>")
