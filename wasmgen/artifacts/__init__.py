"""Stage 6: rendered files meet the disk: ownership records, conflicts, stale files, --check."""

from __future__ import annotations

from wasmgen.artifacts.lock import locked
from wasmgen.artifacts.writer import Changes, check_project, write_project

__all__ = ["Changes", "check_project", "locked", "write_project"]
