"""Shared test helpers: run the real CLI in a subprocess, list examples, snapshot trees."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmgen.host import ProxyWasmHost

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden"


def golden_dir(example: str, backend: str = "compiled") -> Path:
    """The committed output for an example: tests/golden/<example> for the default (compiled)
    backend, tests/golden/dynamic/<example> for the dynamic one."""
    return GOLDEN / example if backend == "compiled" else GOLDEN / backend / example


@dataclass
class Result:
    """What a CLI run printed and returned."""

    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 600,
) -> Result:
    """Run `python -m wasmgen ARGS` as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "wasmgen", *map(str, args)],
        cwd=cwd,
        env={
            # The suite means upstream Go unless a test names a toolchain (tests/test_tinygo*.py).
            "WASMGEN_TOOLCHAIN": "go",
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, keyed by relative POSIX path."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def started_plugin(
    spec: object, request: Any, tmp_path_factory: Any, backend: str
) -> ProxyWasmHost:
    """A module-scoped fixture's body: spec built with backend and started in the embedded host
    with its own pluginConfig, closed when the fixture's scope ends."""
    from rich.console import Console

    from wasmgen import pipeline
    from wasmgen.host import ProxyWasmHost
    from wasmgen.spec import validate

    out = tmp_path_factory.mktemp(backend)
    built = pipeline.build(
        validate(spec),
        Path(out),
        console=Console(quiet=True),
        backend=backend,  # type: ignore[arg-type]
    )
    host = ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode())
    assert host.start(), host.logs()
    request.addfinalizer(host.close)
    return host
