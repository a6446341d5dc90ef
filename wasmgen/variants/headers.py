"""The built-in headers variant: the spec's own rules and presets, nothing added (the default)."""

from __future__ import annotations

from wasmgen.variants.base import NoOptions, Variant


class Headers(Variant[NoOptions]):
    """Header rules written in the spec: set, append, addIfAbsent, remove, rename, copyFromRequest, respond, presets."""

    options_model = NoOptions
