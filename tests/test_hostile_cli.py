"""The CLI says what it does and refuses what it would silently get wrong: --upstream parts it
drops, built-in variant names, hints that do not paste, leftovers of a killed build, the same
long warning on every run, and a summary that counts a new file as updated."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli
from wasmgen.build.toolchain import find_go

LAB = ROOT / "examples" / "seed-lab.yaml"


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://user:pw@127.0.0.1:8000", "credentials"),
        ("http://127.0.0.1:8000/sub", "a path"),
        ("http://127.0.0.1:8000/?q=1", "a query"),
        ("http://127.0.0.1:8000#top", "a fragment"),
        ("http://user:pw@127.0.0.1:8000/sub?q=1", "credentials and a path and a query"),
    ],
)
def test_upstream_parts_that_would_be_dropped_are_refused(
    tmp_path: Path, url: str, what: str
) -> None:
    result = run_cli("serve", LAB, "-o", tmp_path / "out", "--upstream", url)
    assert result.code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: --upstream {url!r} has {what}, which the proxy would not use: it forwards each "
        "request's own path and query, without credentials"
    )
    assert "hint: give only the scheme, host and port: http://127.0.0.1:8000" in result.stderr
    assert not (tmp_path / "out").exists()


def test_upstream_with_a_newline_is_refused(tmp_path: Path) -> None:
    """A trailing newline broke the serving banner."""
    result = run_cli("serve", LAB, "-o", tmp_path / "out", "--upstream", "http://127.0.0.1:8000\n")
    assert result.code == 2
    assert result.stderr.startswith(
        "error: --upstream 'http://127.0.0.1:8000\\n' holds white space or control characters"
    )


@pytest.mark.parametrize("name", ["cors", "headers"])
def test_new_variant_refuses_built_in_names(tmp_path: Path, name: str) -> None:
    """An installed `cors` package would be silently shadowed by the built-in one."""
    result = run_cli("new-variant", name, "-o", tmp_path / "pkg")
    assert result.code == 2
    assert f"{name!r} is a built-in variant" in result.stderr
    assert not (tmp_path / "pkg").exists()


def test_new_variant_hint_installs_the_directory_not_a_pypi_project(tmp_path: Path) -> None:
    """`pip install exist2` looks on PyPI; the directory needs ./exist2."""
    result = run_cli("new-variant", "exist2", "-o", "exist2", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "install it with: pip install ./exist2  " in result.stdout
    named = run_cli("new-variant", "exist3", cwd=tmp_path)
    assert "pip install ./wasmgen-exist3  " in named.stdout


def test_generate_into_an_empty_directory_creates_everything(tmp_path: Path) -> None:
    """It reported "26 created, 1 updated": the ownership record counted as updated."""
    result = run_cli("generate", LAB, "-o", tmp_path / "out")
    count = sum(1 for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert result.stdout.strip() == (
        f"{tmp_path / 'out'}: {count} created, 0 updated, 0 removed, 0 unchanged"
    )
    again = run_cli("generate", LAB, "-o", tmp_path / "out")
    assert again.stdout.strip().endswith(f"0 created, 1 updated, 0 removed, {count - 1} unchanged")


@pytest.mark.slow
def test_a_killed_build_leaves_nothing_the_next_run_keeps(tmp_path: Path) -> None:
    """SIGKILL during build left .plugin.wasm.* behind and `generate --check` said up to date."""
    real = find_go().path
    go = tmp_path / "go"
    pids = tmp_path / "pids"
    go.write_text(
        f'#!/bin/sh\ncase "$1" in build) echo $$ > "{pids}"; sleep 300 ;; '
        f'*) exec "{real}" "$@" ;; esac\n'
    )
    go.chmod(0o755)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmgen", "build", str(LAB), "-o", str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "WASMGEN_GO": str(go)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not pids.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    left = [p.name for p in out.iterdir() if p.name.startswith(".plugin.wasm.")]
    assert left, "the killed build left its temporary directory"
    check = run_cli("generate", LAB, "-o", out, "--check")
    assert check.code == 1 and "is out of date" in check.stderr, check.stderr
    assert run_cli("generate", LAB, "-o", out).code == 0
    assert not [p.name for p in out.iterdir() if p.name.startswith(".plugin.wasm.")]
    assert run_cli("generate", LAB, "-o", out, "--check").code == 0


@pytest.mark.slow
def test_the_poll_oneoff_warning_is_said_once_per_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every test and serve printed the same 400-character warning."""
    tmp_path = tmp_path_factory.mktemp("warned")
    out = tmp_path / "out"
    first = run_cli("build", LAB, "-o", out, "--istio", "1.27")
    assert first.code == 0, first.stderr
    warnings = [ln for ln in first.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "poll_oneoff" in warnings[0]
    assert f"said once for {out}; `wasmgen inspect {out / 'plugin.wasm'}` repeats it" in warnings[0]
    again = run_cli("test", LAB, "-o", out)
    assert again.code == 0 and "poll_oneoff" not in again.stderr, again.stderr
    elsewhere = run_cli("build", LAB, "-o", tmp_path / "other", "--istio", "1.27")
    assert "poll_oneoff" in elsewhere.stderr
    inspected = run_cli("inspect", out / "plugin.wasm")
    assert "poll_oneoff" in inspected.stdout


def test_the_generate_hint_pastes_into_a_shell(tmp_path: Path) -> None:
    """Paths with spaces in `run: wasmgen generate ...` split into several words."""
    spec = tmp_path / "my spec.yaml"
    spec.write_text(LAB.read_text())
    out = tmp_path / "my out"
    result = run_cli("generate", spec, "-o", out, "--check")
    assert result.code == 1
    hint = result.stderr.strip().rpartition("run: ")[2]
    assert shlex.split(hint) == ["wasmgen", "generate", str(spec), "-o", str(out)]
