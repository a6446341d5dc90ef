"""Cold start: `wasmgen generate` of the lab spec as a fresh process, against a bare
`python -c "import pydantic, jinja2, yaml, typer"` and against the stack's floor
(`tests/cold_floor.py`: a typer command with generate's parameters, one pydantic model, one
jinja2 template, no wasmgen code) in the same run (rounds interleaved, so drift on a shared
machine hits all three). Prints medians of wall and CPU time and their ratios to the bare
imports; what wasmgen adds over the floor is its own share.

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


LAB = ROOT / "examples" / "seed-lab.yaml"


def _generate(out: Path) -> list[str]:
    return [sys.executable, "-m", "wasmgen", "generate", str(LAB), "-o", str(out)]


def _floor(out: Path) -> list[str]:
    floor = ROOT / "tests" / "cold_floor.py"
    return [sys.executable, str(floor), "generate", str(LAB), "-o", str(out)]


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
        commands = {
            "wasmgen generate examples/seed-lab.yaml": _generate(Path(tmp) / "out"),
            "floor: tests/cold_floor.py generate (same)": _floor(Path(tmp) / "floor"),
            "python -c import pydantic, jinja2, yaml, typer": BASELINE,
        }
        for argv in commands.values():  # warm the OS file cache, bytecode and template caches
            timed(argv)
        runs = [[timed(argv) for argv in commands.values()] for _ in range(rounds)]
        counts = [instructions(argv) for argv in commands.values()] if args.instructions else []
    print(f"{rounds} interleaved rounds, medians; ratios are to the bare imports, per round")
    print(f"{'command':<48} {'wall (s)':>9} {'cpu (s)':>9} {'wall x':>7} {'cpu x':>7}")
    for i, name in enumerate(commands):
        wall = statistics.median(r[i][0] for r in runs)
        cpu = statistics.median(r[i][1] for r in runs)
        wall_x = statistics.median(r[i][0] / r[-1][0] for r in runs)
        cpu_x = statistics.median(r[i][1] / r[-1][1] for r in runs)
        print(f"{name:<48} {wall:>9.3f} {cpu:>9.3f} {wall_x:>6.2f}x {cpu_x:>6.2f}x")
    generate_x = statistics.median(r[0][0] / r[-1][0] for r in runs)
    verdict = "met" if generate_x <= 1.6 else "NOT met"
    print(f"target: generate's wall time <= 1.6x the bare imports': {verdict} ({generate_x:.2f}x)")
    if counts:
        generate, floor, bare = counts
        print(
            f"instructions: generate {generate:,} ({generate / bare:.2f}x), floor {floor:,} "
            f"({floor / bare:.2f}x), bare imports {bare:,}; wasmgen's own share "
            f"(generate - floor) {generate - floor:,} = {(generate - floor) / bare:.2f}x, "
            f"of which 1.6x leaves {int(1.6 * bare) - floor:,}"
        )


if __name__ == "__main__":
    main()
