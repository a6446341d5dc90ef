"""Cold start: `wasmgen generate` of the lab spec as a fresh process, against a bare
`python -c "import pydantic, jinja2, yaml, typer"` in the same run (rounds interleaved, so
drift on a shared machine hits both). Prints medians of wall and CPU time and their ratios.

    python -m tests.benchmark_cold [--rounds 15] [--instructions]

--instructions also counts the instructions each command executes under valgrind's callgrind
(Debian's valgrind package): deterministic where times are not on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import ROOT

# A pip install compiles bytecode; a source checkout gets it on first run unless this is set.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
    "PYTHONPATH": str(ROOT)
}
BASELINE = [sys.executable, "-c", "import pydantic, jinja2, yaml, typer"]


def _generate(out: Path) -> list[str]:
    lab = ROOT / "examples" / "seed-lab.yaml"
    return [sys.executable, "-m", "wasmgen", "generate", str(lab), "-o", str(out)]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of argv, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        argv,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions(argv: list[str]) -> int:
    """Instructions one run of argv executes (callgrind's total; needs valgrind)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    python = os.path.realpath(sys.executable)  # valgrind must see the interpreter, not a shim
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *argv[1:]],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()
    rounds = args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        generate = _generate(Path(tmp) / "out")
        timed(generate), timed(BASELINE)  # warm the OS file cache, bytecode and template caches
        runs = [(timed(generate), timed(BASELINE)) for _ in range(rounds)]
        counts = (instructions(generate), instructions(BASELINE)) if args.instructions else None
    gen_wall = statistics.median(g[0] for g, _ in runs)
    gen_cpu = statistics.median(g[1] for g, _ in runs)
    base_wall = statistics.median(b[0] for _, b in runs)
    base_cpu = statistics.median(b[1] for _, b in runs)
    wall_ratio = statistics.median(g[0] / b[0] for g, b in runs)
    cpu_ratio = statistics.median(g[1] / b[1] for g, b in runs)
    print(f"{rounds} interleaved rounds, medians")
    print(f"{'command':<48} {'wall (s)':>9} {'cpu (s)':>9}")
    print(f"{'wasmgen generate examples/seed-lab.yaml':<48} {gen_wall:>9.3f} {gen_cpu:>9.3f}")
    print(
        f"{'python -c import pydantic, jinja2, yaml, typer':<48} {base_wall:>9.3f} {base_cpu:>9.3f}"
    )
    print(
        f"ratio per round (median): wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x (target <= 1.6x)"
    )
    if counts is not None:
        print(
            f"instructions: generate {counts[0]:,}, bare imports {counts[1]:,}, "
            f"ratio {counts[0] / counts[1]:.2f}x"
        )


if __name__ == "__main__":
    main()
