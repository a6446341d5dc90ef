"""Stage 1: the typed spec: models, names, presets, the YAML loader, the Python DSL, the schema."""

from __future__ import annotations

from wasmgen.spec.dsl import (
    Plugin,
    add_if_absent,
    append,
    cookie_flags,
    copy_from_request,
    dedupe,
    remove,
    remove_cookie,
    remove_query,
    rename,
    respond,
    rewrite,
    set_headers,
    set_query,
)
from wasmgen.spec.loader import load_spec, parse_spec, validate
from wasmgen.spec.models import Rule, Spec, TestCase

__all__ = [
    "Plugin",
    "Rule",
    "Spec",
    "TestCase",
    "add_if_absent",
    "append",
    "cookie_flags",
    "copy_from_request",
    "dedupe",
    "load_spec",
    "parse_spec",
    "remove",
    "remove_cookie",
    "remove_query",
    "rename",
    "respond",
    "rewrite",
    "set_headers",
    "set_query",
    "validate",
]
