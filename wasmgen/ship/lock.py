"""Read the pin `wasmgen push` recorded in a project directory."""

from __future__ import annotations

from pathlib import Path

from wasmgen.plan.pin import LOCK_FILE, Pin, parse_lock


def read_lock(out_dir: Path, plugin: str | None = None) -> Pin | None:
    """The pin recorded in out_dir, if any (and if it belongs to plugin, when given)."""
    path = out_dir / LOCK_FILE
    if not path.is_file():
        return None
    pin = parse_lock(path.read_bytes(), str(path))
    return pin if plugin is None or pin.plugin == plugin else None
