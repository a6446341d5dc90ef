"""Regenerate tests/golden/<example>/ from examples/*.yaml: `python tests/update_goldens.py`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wasmgen
from tests.helpers import EXAMPLES, GOLDEN


def main() -> None:
    """Rewrite every golden directory from scratch."""
    for example in EXAMPLES:
        target = GOLDEN / example.stem
        shutil.rmtree(target, ignore_errors=True)
        wasmgen.generate(wasmgen.load_spec(example), target)
        print(f"wrote {target.relative_to(GOLDEN.parent.parent)}")


if __name__ == "__main__":
    main()
