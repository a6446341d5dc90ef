"""Stage 1b: variants, the kinds of plugin: an options model, the rules its options stand for,
template overrides and examples. Found through the `wasmgen.variants` entry points; the built-in
headers (the default) and cors register the same way a third-party package does."""

from __future__ import annotations

from wasmgen.spec.names import HeaderName, HeaderValue, Method, Regex
from wasmgen.variants.base import NoOptions, Rules, Variant, VariantOptions
from wasmgen.variants.registry import (
    GROUP,
    Loaded,
    UnknownVariant,
    VariantError,
    VariantInfo,
    find,
    installed,
    names,
)
from wasmgen.variants.resolve import Resolved, blame, resolve

__all__ = [
    "GROUP",
    "HeaderName",
    "HeaderValue",
    "Loaded",
    "Method",
    "NoOptions",
    "Regex",
    "Resolved",
    "Rules",
    "UnknownVariant",
    "Variant",
    "VariantError",
    "VariantInfo",
    "VariantOptions",
    "blame",
    "find",
    "installed",
    "names",
    "resolve",
]
