"""Istio's own code on a wasmgen project: build and run the Go harness in tests/istio.

The harness binary is built once per source hash into wasmgen's cache
($WASMGEN_CACHE_DIR or ~/.cache/wasmgen, under istioharness/), under a file lock: `.ci/run`
starts `python -m tests.istio_harness` in the background while it installs everything else, and
a test that needs the binary before that build is done waits on the lock instead of building it
a second time (a cold build is about 9 minutes on 2 cores; warm, about 20 seconds).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmgen.build.toolchain import find_go
from wasmgen.pipeline import Built
from wasmgen.plan.pin import Pin
from wasmgen.spec.models import Spec

HARNESS_DIR = Path(__file__).resolve().parent / "istio"
_SOURCES = ("main.go", "go.mod", "go.sum")
BUILD_TIMEOUT = 3600.0  # a cold build on a busy 2-core machine
RUN_TIMEOUT = 300.0
REPORT_START = '{"admission":'
CRD_FILE = "manifests/charts/base/files/crd-all.gen.yaml"  # inside the istio.io/istio module


@dataclass(frozen=True)
class Harness:
    """The built harness and the Istio module it was built from."""

    binary: Path
    istio_dir: Path  # the istio.io/istio module source (for its CRD bundle)

    @property
    def crd_file(self) -> Path:
        """Istio's CRD bundle, as its Helm chart installs it."""
        return self.istio_dir / CRD_FILE


def _cache_root() -> Path:
    explicit = os.environ.get("WASMGEN_CACHE_DIR")
    return Path(explicit) if explicit else Path.home() / ".cache" / "wasmgen"


def _go(*args: str, timeout: float = BUILD_TIMEOUT) -> str:
    go = find_go()
    proc = subprocess.run(
        [str(go.path), *args],
        cwd=HARNESS_DIR,
        env={**os.environ, **go.env()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed in {HARNESS_DIR}:\n{proc.stderr[-4000:]}")
    return proc.stdout


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks while another process builds
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def harness() -> Harness:
    """The harness binary for the current sources, built (or waited for) once."""
    digest = hashlib.sha256(find_go().version_string.encode())
    for name in _SOURCES:
        digest.update((HARNESS_DIR / name).read_bytes())
    folder = _cache_root() / "istioharness" / digest.hexdigest()[:20]
    binary = folder / "istioharness"
    with _locked(folder.parent / "build.lock"):
        if not binary.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f"istioharness.{os.getpid()}.partial"
            _go("build", "-buildvcs=false", "-o", str(partial), ".")
            os.replace(partial, binary)
            _prune(folder)
    istio_dir = _go("list", "-m", "-f", "{{.Dir}}", "istio.io/istio", timeout=120).strip()
    return Harness(binary, Path(istio_dir))


def _prune(current: Path, keep_seconds: float = 7 * 86400) -> None:
    """Remove harness binaries (about 200 MB each) built from other sources over a week ago."""
    now = time.time()
    for other in current.parent.iterdir():
        if other.is_dir() and other != current and now - other.stat().st_mtime > keep_seconds:
            shutil.rmtree(other, ignore_errors=True)


def run(
    request: dict[str, Any],
    between: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the harness on a request; one report per round. `between(i)` runs before round i>0."""
    h = harness()
    request = {"crdFile": str(h.crd_file), **request}
    rounds = max(1, len(request.get("rounds", [])))
    with tempfile.TemporaryFile("w+") as errors:  # a file: Istio's logs never block a pipe
        proc = subprocess.Popen(
            [str(h.binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        assert proc.stdin is not None and proc.stdout is not None
        reports: list[dict[str, Any]] = []
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            for i in range(rounds):
                if i > 0:
                    if between is not None:
                        between(i)
                    proc.stdin.write("next\n")
                    proc.stdin.flush()
                line = proc.stdout.readline()
                while line and not line.startswith(REPORT_START):  # Istio's init-time log lines
                    line = proc.stdout.readline()
                if not line:
                    break
                reports.append(json.loads(line))
            proc.stdin.close()
            proc.wait(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        errors.seek(0)
        stderr = errors.read()
    if proc.returncode != 0 or len(reports) != rounds:
        raise RuntimeError(f"istioharness exited {proc.returncode}:\n{stderr[-4000:]}")
    for report in reports:  # what Istio logged, for assertion messages (e.g. why a pull failed)
        report["log"] = "\n".join(_istio_errors(stderr))
    return reports


def _istio_errors(log: str) -> list[str]:
    """Istio's error lines, without the CRD-bundle noise its validator prints on load."""
    return [ln for ln in log.splitlines() if "\terror\t" in ln and "CRD " not in ln]


def wasm_filter(report: dict[str, Any], key: str = "converted") -> list[dict[str, Any]]:
    """The Wasm filter configs (`typedConfig`) of the report's ECDS resources, in order."""
    return [r["typedConfig"] for r in report.get(key, [])]


def chain_with(
    report: dict[str, Any], filter_name: str, listener: str | None = None
) -> list[dict[str, Any]]:
    """The HTTP filters of the chains holding `filter_name` (in one listener, by default the
    sidecar's inbound one when it has any, else every listener); all such chains must agree."""

    def holding(name: str | None) -> list[list[dict[str, Any]]]:
        return [
            c["filters"]
            for lst in report.get("listeners", [])
            if name is None or lst["name"] == name
            for c in lst["chains"]
            if any(f["name"] == filter_name for f in c["filters"])
        ]

    chains = holding(listener) if listener else (holding(INBOUND) or holding(None))
    if not chains:
        return []
    names = {tuple(f["name"] for f in c) for c in chains}
    if len(names) != 1:
        raise AssertionError(f"chains holding {filter_name} differ: {sorted(names)}")
    return chains[0]


# Filters whose config type upstream Envoy has; Istio's own (peer metadata exchange, stats, ...)
# need istio-proxy, so the Envoy runs leave them out and say so.
UPSTREAM_TYPE_PREFIX = "type.googleapis.com/envoy."
INBOUND = "virtualInbound"  # a sidecar's inbound listener
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


@dataclass(frozen=True)
class Pushed:
    """A built project pushed to a registry, with deploy/ pinned to the pushed digest."""

    built: Built
    pin: Pin
    manifests: str  # deploy/wasm-plugin.yaml


def build_and_push(
    spec: Spec,
    out_dir: Path,
    image: str,
    username: str | None = None,
    password: str | None = None,
) -> Pushed:
    """What `wasmgen push SPEC --image IMAGE -o OUT_DIR` does, through the Python API."""
    from rich.console import Console

    from wasmgen.pipeline import build, package, push

    built = build(spec, out_dir, console=Console(stderr=True, quiet=True))
    pin = push(spec, built, package(built), image, username=username, password=password)
    manifests = (out_dir / "deploy" / "wasm-plugin.yaml").read_text(encoding="utf-8")
    return Pushed(built, pin, manifests)


def workload(spec: Spec) -> dict[str, Any]:
    """The proxy the spec's manifest selects: a sidecar with its labels, or for targetRefs the
    gateway deployment Istio labels with the Gateway's name."""
    if spec.target_refs:
        labels = {"istio": "ingressgateway", GATEWAY_NAME_LABEL: spec.target_refs[0].name}
        return {"proxy": "gateway", "namespace": spec.namespace, "labels": labels}
    return {"proxy": "sidecar", "namespace": spec.namespace, "labels": dict(spec.selector or {})}


def envoy_http_filters(
    chain: list[dict[str, Any]], converted: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Istio's HTTP filter chain for upstream Envoy: ECDS filters get the agent's converted
    config, filters upstream Envoy has keep Istio's config; the rest are left out (listed)."""
    out: list[dict[str, Any]] = []
    left_out: list[str] = []
    for f in chain:
        if f.get("ecds"):
            out.append({"name": f["name"], "typed_config": converted[f["name"]]})
        elif f["typedConfig"]["@type"].startswith(UPSTREAM_TYPE_PREFIX):
            out.append({"name": f["name"], "typed_config": f["typedConfig"]})
        else:
            left_out.append(f["name"])
    return out, left_out


def replace_http_filters(bootstrap: dict[str, Any], filters: list[dict[str, Any]]) -> None:
    """Put `filters` into the one listener's connection manager of a wasmgen bootstrap."""
    listener = bootstrap["static_resources"]["listeners"][0]
    listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"] = filters


if __name__ == "__main__":  # `.ci/run` builds it in the background: python -m tests.istio_harness
    print(harness().binary)
    sys.exit(0)
