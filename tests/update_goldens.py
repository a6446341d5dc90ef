"""Regenerate tests/golden/<example>/ (the default, compiled backend) and
tests/golden/dynamic/<example>/ from examples/*.yaml: `python tests/update_goldens.py`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wasmgen
from tests.helpers import EXAMPLES, GOLDEN, golden_dir


def main() -> None:
    """Rewrite every golden directory from scratch."""
    for backend in ("compiled", "dynamic"):
        for example in EXAMPLES:
            target = golden_dir(example.stem, backend)
            shutil.rmtree(target, ignore_errors=True)
            wasmgen.generate(wasmgen.load_spec(example), target, backend=backend)
            print(f"wrote {target.relative_to(GOLDEN.parent.parent)}")


if __name__ == "__main__":
    main()
