"""Checks that span fields, run on the raw document so they are reported with field errors.

Some concern headers Envoy owns: what a rule or a test case expects of them must hold in Envoy
(measured on Envoy 1.36-1.40), or the spec is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.alias_generators import to_snake

from wasmgen.spec.expr import check_context, parse
from wasmgen.spec.models import DEFAULT_VARIANT, Loc
from wasmgen.spec.names import compile_regex

# Envoy adds these to every response after the filter chain; the router overwrites the
# upstream's x-envoy-upstream-service-time before the plugin runs.
RESPONSE_READDED = {
    "date": "Envoy adds `date` to every response after the filter chain, so removing it has no effect",
}
VOLATILE_RESPONSE = {
    "date": "Envoy writes the current time",
    "x-envoy-upstream-service-time": "Envoy's router sets it to the measured upstream time "
    "before the plugin runs",
}
# Without x-forwarded-proto (added by Envoy before the filters) no route matches: a request
# rule that removes it turns every request into a 404.
ROUTE_CRITICAL = "x-forwarded-proto"
NO_BODY_STATUSES = (204, 304)


def _get(data: Any, key: str) -> Any:
    """data[key] in the YAML (camelCase) or Python (snake_case) spelling, or None."""
    if not isinstance(data, Mapping):
        return None
    value = data.get(key)
    return data.get(to_snake(key)) if value is None else value


def _items(data: Any, key: str) -> list[Any]:
    value = _get(data, key)
    return list(value) if isinstance(value, list) else []


def _has(data: Any, *path: str) -> bool:
    for key in path:
        data = _get(data, key)
        if data is None:
            return False
    return True


def cross_checks(data: Any) -> list[tuple[Loc, str]]:
    """Problems that span fields, found on the raw document (YAML spelling), so they are
    reported together with every field error instead of after those are fixed."""
    problems: list[tuple[Loc, str]] = []
    if not isinstance(data, Mapping):
        return problems
    if _has(data, "selector") and _has(data, "targetRefs"):
        problems.append(
            (("targetRefs",), "set selector or targetRefs, not both (Istio allows one)")
        )
    for i, rule in enumerate(_items(data, "request")):
        if _has(rule, "copyFromRequest"):
            problems.append(
                (("request", i, "copyFromRequest"), "copyFromRequest belongs in a response rule")
            )
        if _has(rule, "cookieFlags"):
            problems.append(
                (
                    ("request", i, "cookieFlags"),
                    "cookieFlags edits the upstream's Set-Cookie: it belongs in a response rule",
                )
            )
        if _has(rule, "when", "status"):
            problems.append(
                (
                    ("request", i, "when", "status"),
                    "the response status is only known to response rules",
                )
            )
    for i, rule in enumerate(_items(data, "response")):
        for op in ("setQuery", "removeQuery"):
            if _has(rule, op):
                problems.append(
                    (
                        ("response", i, op),
                        f"{op} edits the request's query string: it belongs in a request rule",
                    )
                )
        if _has(rule, "respond"):
            problems.append(
                (("response", i, "respond"), "respond (a local reply) is a request rule")
            )
    seen: set[str] = set()
    for i, test in enumerate(_items(data, "tests")):
        name = _get(test, "name")
        if isinstance(name, str) and name in seen:
            problems.append((("tests", i, "name"), f"duplicate test name {name!r}"))
        if isinstance(name, str):
            seen.add(name)
    problems += _envoy_owned(data)
    problems += _expressions(data)
    if _get(data, "variant") in (None, DEFAULT_VARIANT):
        problems += _headers_variant(data)
    return problems


def _headers_variant(data: Any) -> list[tuple[Loc, str]]:
    """The headers variant (the default) is its rules: it needs some, and takes no options."""
    problems: list[tuple[Loc, str]] = []
    if _get(data, "options"):
        problems.append(
            (
                ("options",),
                f"the {DEFAULT_VARIANT} variant (the default) takes no options: name the variant "
                "that reads them with variant: NAME (`wasmgen variants` lists the installed ones)",
            )
        )
    presets = _get(data, "presets")
    switched = any(_get(presets, k) is True for k in ("secureHeaders", "stripServerHeaders"))
    if not (_items(data, "request") or _items(data, "response") or switched):
        problems.append(((), "the spec has no rules: add request or response rules, or a preset"))
    return problems


def _matches(name: object, header: str) -> bool:
    if not isinstance(name, str):
        return False
    return name == header or (name.endswith("*") and header.startswith(name[:-1]))


def _envoy_owned(data: Any) -> list[tuple[Loc, str]]:
    """Rules and expectations that real Envoy would not honour."""
    problems: list[tuple[Loc, str]] = []
    for i, rule in enumerate(_items(data, "request")):
        for j, name in enumerate(_items(rule, "remove")):
            if _matches(name, ROUTE_CRITICAL):
                problems.append(
                    (
                        ("request", i, "remove", j),
                        f"{name!r} removes {ROUTE_CRITICAL}, which Envoy's router needs: every "
                        "request would get a 404 (no route matches without it)",
                    )
                )
        rename = _get(rule, "rename")
        if isinstance(rename, Mapping) and ROUTE_CRITICAL in rename:
            problems.append(
                (
                    ("request", i, "rename", ROUTE_CRITICAL),
                    f"renaming {ROUTE_CRITICAL} removes it, and without it Envoy's router "
                    "matches no route: every request would get a 404",
                )
            )
        respond = _get(rule, "respond")
        status, body = _get(respond, "status"), _get(respond, "body")
        if status in NO_BODY_STATUSES and isinstance(body, str) and body:
            problems.append(
                (
                    ("request", i, "respond", "body"),
                    f"a {status} response has no body; Envoy would still write these bytes "
                    "after the headers and corrupt the connection",
                )
            )
    for i, rule in enumerate(_items(data, "response")):
        rewrite = _get(rule, "rewrite")
        for header, why in VOLATILE_RESPONSE.items():
            if isinstance(rewrite, Mapping) and header in rewrite:
                problems.append((("response", i, "rewrite", header), f"rewriting {header} has no use: {why}"))  # fmt: skip
        for j, name in enumerate(_items(rule, "remove")):
            for header, why in RESPONSE_READDED.items():
                if name == header:
                    problems.append((("response", i, "remove", j), why))
    for i, case in enumerate(_items(data, "tests")):
        expect = _get(_get(case, "expect"), "responseHeaders")
        if not isinstance(expect, Mapping):
            continue
        for name, value in expect.items():
            key = str(name).lower()
            if key in VOLATILE_RESPONSE and value is not None:
                problems.append(
                    (
                        ("tests", i, "expect", "responseHeaders", name),
                        f"{key} cannot be expected to hold a value: {VOLATILE_RESPONSE[key]}; "
                        "expect null (removed by a rule) or leave it out",
                    )
                )
            if key == "date" and value is None:
                problems.append(
                    (
                        ("tests", i, "expect", "responseHeaders", name),
                        RESPONSE_READDED["date"],
                    )
                )
    return problems


VALUE_MAPS = (("set",), ("append",), ("addIfAbsent",), ("respond", "headers"))


def _path_groups(rule: Any) -> tuple[int | None, frozenset[str]]:
    """The groups of the rule's when.path.regex: (None, {}) without one (or a bad one, which
    the field check reports)."""
    pattern = _get(_get(_get(rule, "when"), "path"), "regex")
    if not isinstance(pattern, str):
        return None, frozenset()
    try:
        compiled = compile_regex(pattern)
    except ValueError:
        return None, frozenset()
    return compiled.groups, frozenset(compiled.groupindex)


def _expressions(data: Any) -> list[tuple[Loc, str]]:
    """Value expressions (${...}) that do not parse, or that the rule cannot give."""
    problems: list[tuple[Loc, str]] = []
    for phase in ("request", "response"):
        for i, rule in enumerate(_items(data, phase)):
            groups: tuple[int | None, frozenset[str]] | None = None  # read when needed
            for keys in VALUE_MAPS:
                values = rule
                for key in keys:
                    values = _get(values, key)
                if not isinstance(values, Mapping):
                    continue
                for header, value in values.items():
                    if not isinstance(value, str) or "$" not in value:
                        continue
                    groups = groups or _path_groups(rule)
                    try:
                        msg = check_context(parse(value), phase, *groups)
                    except ValueError as exc:
                        msg = str(exc)
                    if msg is not None:
                        problems.append(((phase, i, *keys, header), msg))
    return problems
