"""Stopping wasmgen (Ctrl-C or SIGTERM) mid-build stops the compiler and leaves no temp files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT
from wasmgen.build.toolchain import find_go

SPEC = next(e for e in EXAMPLES if e.stem == "seed-lab")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def _slow_go(tmp_path: Path) -> tuple[Path, Path]:
    """A go that answers `version` and `mod` through the real one, and whose `build`
    starts a long-running child (like the compiler) and records both pids."""
    real = find_go().path
    pids = tmp_path / "pids"
    script = tmp_path / "go"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$1" in build) sleep 300 & echo "$$ $!" > "{pids}"; wait ;; '
        f'*) exec "{real}" "$@" ;; esac\n'
    )
    script.chmod(0o755)
    return script, pids


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_a_build_stops_the_compiler_and_cleans_up(tmp_path: Path, sig: int) -> None:
    go, pids = _slow_go(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "WASMGEN_GO": str(go), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmgen", "build", str(SPEC), "-o", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not pids.exists() or not pids.read_text().strip():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    shell, child = map(int, pids.read_text().split())
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), stderr
    assert "Traceback" not in stderr
    # One line says why wasmgen stopped, as the README promises, Ctrl-C included.
    assert stderr.splitlines()[-1] == ("terminated" if sig == signal.SIGTERM else "interrupted")
    for _ in range(50):
        if not _alive(shell) and not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(shell) and not _alive(child), "the compiler outlived wasmgen"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".plugin.wasm.")]
