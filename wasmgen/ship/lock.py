"""Read the pin `wasmgen push` recorded in a project directory."""

from __future__ import annotations

from pathlib import Path

from wasmgen.fsutil import read_input
from wasmgen.plan.pin import LOCK_FILE, Pin, parse_lock

MAX_LOCK_BYTES = 64 * 1024  # a pin is a few hundred bytes


def read_lock(out_dir: Path, plugin: str | None = None) -> Pin | None:
    """The pin recorded in out_dir, if any (and if it belongs to plugin, when given)."""
    path = out_dir / LOCK_FILE
    if not path.is_file():
        return None
    data = read_input(path, MAX_LOCK_BYTES, hint=f"remove {path}; `wasmgen push` writes it again")
    pin = parse_lock(data, str(path))
    return pin if plugin is None or pin.plugin == plugin else None
