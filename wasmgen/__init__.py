"""wasmgen: typed HTTP header rules in, a working proxy-wasm plugin out."""

from __future__ import annotations

__version__ = "0.1.0"
