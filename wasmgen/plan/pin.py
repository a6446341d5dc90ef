"""The pushed image a plan's manifests point at, and the lock file that records it."""

from __future__ import annotations

import json
from dataclasses import asdict

from wasmgen.errors import WasmgenError
from wasmgen.records import record

LOCK_FILE = "wasmgen.lock"


@record
class Pin:
    """A pushed image the manifests point at: tag reference plus manifest digest."""

    plugin: str  # the spec name this pin belongs to
    image: str  # registry/repo:tag, no scheme
    digest: str  # sha256:<hex> of the image manifest (what Istio compares)
    wasm_sha256: str | None = None  # the plugin.wasm inside, when wasmgen pushed it
    format: str | None = None

    def lock_bytes(self) -> bytes:
        """The lock file recording this pin."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


def parse_lock(data: bytes, where: str) -> Pin:
    """A Pin from lock file bytes; WasmgenError naming `where` when they are not one."""
    try:
        raw = json.loads(data)
        pin = Pin(
            plugin=str(raw["plugin"]),
            image=str(raw["image"]),
            digest=str(raw["digest"]),
            wasm_sha256=raw.get("wasm_sha256"),
            format=raw.get("format"),
        )
    except (ValueError, KeyError, TypeError):
        raise WasmgenError(
            f"{where} is not a wasmgen lock file", hint="delete it, or push again to rewrite it"
        ) from None
    return pin
