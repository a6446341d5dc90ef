"""The command line's entry: `python -m wasmgen`, and the `wasmgen` console script (run)."""

from __future__ import annotations

import gc
from typing import NoReturn


def run() -> NoReturn:
    """Run the CLI in this process, which it ends. The cyclic garbage collector stays off while
    the stack and the command's modules load, and main() turns it back on once they are frozen
    out of its reach (wasmgen.cli.main): a collection during imports frees nothing."""
    gc.disable()
    from wasmgen.cli.main import main

    main()


if __name__ == "__main__":
    run()
