"""One writer per output directory: concurrent commands wait for each other or say who holds it,
and no build reports, caches or leaves a module of another spec's sources."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli, snapshot
from wasmgen.artifacts.lock import LOCK_FILE, locked
from wasmgen.build.toolchain import find_go

LAB = ROOT / "examples" / "seed-lab.yaml"
API = ROOT / "examples" / "api-errors.yaml"
SHA = re.compile(r"sha256:([0-9a-f]{64})")


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wasmgen", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


COMMANDS = {
    "generate": ("generate", LAB),
    "manifests": ("manifests", LAB),
    "build": ("build", LAB),
    "test": ("test", LAB),
    "serve": ("serve", LAB, "--upstream", "http://127.0.0.1:9", "--proxy", "embedded"),
    "package": ("package", LAB),
    "push": ("push", LAB, "--image", "127.0.0.1:9/wasm:v1"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_held_directory_is_exit_2_naming_the_holder(tmp_path: Path, command: str) -> None:
    """Every command that writes DIR gives up after WASMGEN_LOCK_WAIT seconds with one line
    naming the process holding it, and writes nothing."""
    out = tmp_path / "out"
    with locked(out):
        before = snapshot(out)
        started = time.monotonic()
        result = run_cli(*COMMANDS[command], "-o", out, env={"WASMGEN_LOCK_WAIT": "0.5"})
        assert snapshot(out) == before
    assert result.code == 2, result.stderr
    assert f"{out} is locked by pid {os.getpid()} (" in result.stderr
    assert "gave up after 0 s" in result.stderr or "gave up after 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not out.exists(), "the directory made for the lock is removed with it"


def test_a_second_generate_waits_for_the_first(tmp_path: Path) -> None:
    """A writer waits (saying for whom) while the directory is held, then writes."""
    out = tmp_path / "out"
    with locked(out):
        proc = _cli("generate", LAB, "-o", out)
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()
        assert [p.name for p in out.iterdir()] == [LOCK_FILE], "nothing written while held"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"waiting for {out}: locked by pid {os.getpid()}" in err
    assert run_cli("generate", LAB, "-o", out, "--check").code == 0
    assert not (out / LOCK_FILE).exists(), "the lock file goes with its holder"


def test_two_generates_race_into_one_directory(tmp_path: Path) -> None:
    """Two generates of different specs started together: both succeed and DIR is exactly
    one of them, never a mix (the other then rewrites it in full, in turn)."""
    out = tmp_path / "out"
    for _ in range(3):
        procs = [_cli("generate", spec, "-o", out) for spec in (LAB, API)]
        codes = [(p.wait(timeout=180), p.communicate()[1]) for p in procs]
        assert [c for c, _ in codes] == [0, 0], codes
        clean = [run_cli("generate", s, "-o", out, "--check").code for s in (LAB, API)]
        assert sorted(clean) == [0, 1], clean


def _slow_go(tmp_path: Path, action: str) -> Path:
    """The real go, run after `action` (a shell command) when it is asked to build."""
    real = find_go().path
    script = tmp_path / "go"
    script.write_text(f'#!/bin/sh\ncase "$1" in build) {action} ;; esac\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


@pytest.mark.slow
def test_two_builds_race_into_one_directory(tmp_path: Path) -> None:
    """The second build waits while the first compiles (its go is slowed down, so the race
    window is wide): each reports the module of its own spec, byte for byte the one a build of
    that spec alone gives, and a later build caches only what it really built."""
    reference = {}
    for spec in (LAB, API):
        result = run_cli("build", spec, "-o", tmp_path / f"ref-{spec.stem}")
        assert result.code == 0, result.stderr
        reference[spec.stem] = SHA.findall(result.stdout)[0]
    assert reference["seed-lab"] != reference["api-errors"]
    out = tmp_path / "out"
    env = {"WASMGEN_GO": str(_slow_go(tmp_path, "sleep 3"))}
    first = _cli("build", LAB, "-o", out, env=env)
    _wait_for(out / "go.mod", first)
    second = _cli("build", API, "-o", out, env=env)
    results = [(p.communicate(timeout=600), p.returncode) for p in (first, second)]
    for (_, stderr), code in results:
        assert code == 0, stderr
    assert SHA.findall(results[0][0][0]) == [reference["seed-lab"]], results[0]
    assert SHA.findall(results[1][0][0]) == [reference["api-errors"]], results[1]
    assert f"waiting for {out}: locked by pid {first.pid}" in results[1][0][1]
    again = run_cli("build", API, "-o", out)
    assert again.code == 0 and "(cached," in again.stdout, again.stderr
    assert SHA.findall(again.stdout) == [reference["api-errors"]]
    record = json.loads((out / "plugin.wasm.buildinfo.json").read_text())
    assert record["sha256"] == reference["api-errors"]


@pytest.mark.slow
def test_sources_changed_during_the_build_are_not_cached(tmp_path: Path) -> None:
    """Something else writes a Go file while go build runs: the module is not kept and no
    cache record names sources it was not built from."""
    out = tmp_path / "out"
    go = _slow_go(tmp_path, "printf 'package main\\n' > extra.go")
    result = run_cli("build", LAB, "-o", out, env={"WASMGEN_GO": str(go)})
    assert result.code == 2, result.stderr
    assert "changed while go build ran; the module was not kept" in result.stderr
    assert not (out / "plugin.wasm").exists()
    assert not (out / "plugin.wasm.buildinfo.json").exists()
