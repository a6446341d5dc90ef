"""Validate WasmPlugin manifests with kube-apiserver's own CRD code (the Go program in crdcheck)."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wasmgen.build.toolchain import find_go

CRDCHECK_DIR = Path(__file__).resolve().parent / "crdcheck"
CRD_FILE = "kubernetes/customresourcedefinitions.gen.yaml"
_SOURCES = ("main.go", "go.mod", "go.sum")


@dataclass(frozen=True)
class CrdCheck:
    """A built crdcheck binary and the Istio CRD bundle it reads."""

    binary: Path
    crd: Path


def _go_env() -> tuple[Path, str, dict[str, str]]:
    """The go binary, its version string, and the environment to run it in."""
    go = find_go()
    env = {**os.environ, **go.env()}
    if go.version[:2] < (1, 26):  # go.mod needs 1.26: let go fetch that toolchain itself
        env["GOTOOLCHAIN"] = "auto"
    return go.path, go.version_string, env


def _go(go: Path, env: dict[str, str], *args: str) -> str:
    """Run a go command in crdcheck/ and return its stdout; raise with its stderr on failure."""
    proc = subprocess.run(
        [str(go), *args], cwd=CRDCHECK_DIR, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


@functools.cache
def crdcheck() -> CrdCheck:
    """Build crdcheck once per session, reusing a binary cached by the hash of its sources."""
    go, version, env = _go_env()
    digest = hashlib.sha256(version.encode())
    for name in _SOURCES:
        digest.update((CRDCHECK_DIR / name).read_bytes())
    cache = Path(tempfile.gettempdir()) / "wasmgen-crdcheck" / digest.hexdigest()[:20]
    binary = cache / "crdcheck"
    if not binary.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"crdcheck.{os.getpid()}.partial"
        _go(go, env, "build", "-buildvcs=false", "-o", str(partial), ".")
        os.replace(partial, binary)  # atomic: parallel sessions never see half a binary
    module_dir = _go(go, env, "list", "-m", "-f", "{{.Dir}}", "istio.io/api").strip()
    if not module_dir:
        _go(go, env, "mod", "download", "istio.io/api")
        module_dir = _go(go, env, "list", "-m", "-f", "{{.Dir}}", "istio.io/api").strip()
    return CrdCheck(binary=binary, crd=Path(module_dir) / CRD_FILE)


def validate_wasmplugin(docs_yaml: str) -> list[str]:
    """Problems found in the YAML documents, one line each ("<stdin>#0 WasmPlugin/x: path: msg")."""
    check = crdcheck()
    proc = subprocess.run(
        [str(check.binary), "-crd", str(check.crd)],
        input=docs_yaml,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 0:
        return []
    if proc.returncode == 1 and proc.stdout:
        return proc.stdout.splitlines()
    raise RuntimeError(f"crdcheck exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
