"""Stage 14: the command line, thin: one function per command, each calling the pipeline."""

from __future__ import annotations

from wasmgen.cli.app import app
from wasmgen.cli.main import main

__all__ = ["app", "main"]
