"""The poll_oneoff question, measured: `python -m tests.envoy_soak [--versions 1.36 1.38] [--seconds 20]`.

Envoy 1.33-1.38 (Istio 1.25-1.30) stub WASI poll_oneoff with ENOSYS; a Go runtime that needs it
aborts ("fatal error: ... poll_oneoff", golang/go#78513). This loads every example plugin in
those Envoys, sends bounded traffic on loopback with wrk (every request carries 60 extra
400-byte headers, so plugins that read the header map allocate and the Go runtime collects
garbage), counts garbage
collections (GODEBUG=gctrace=1 in the plugin's VM environment: one stderr line per cycle), failed
requests and runtime aborts in Envoy's log, and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

import wasmgen
from tests.benchmark import ROOT
from tests.benchmark_envoy import _upstream_bootstrap
from wasmgen import pipeline
from wasmgen.envoy import EnvoyBinary, EnvoyProcess, find, plugin_process
from wasmgen.plan import BACKENDS

LUA = """
local n = 0
local big = {}
for i = 1, 60 do big["x-pad-" .. i] = string.rep("p", 400) end
request = function()
  n = n + 1
  local headers = {["x-request-id"] = "r" .. n, ["x-api-version"] = "2", ["x-debug-level"] = "9"}
  for k, v in pairs(big) do headers[k] = v end
  local paths = {"/get", "/api/v2/orders", "/api/v1/orders?page=2", "/admin/users", "/anything"}
  local methods = {"GET", "POST", "GET", "DELETE", "PUT"}
  return wrk.format(methods[n % 5 + 1], paths[n % 5 + 1], headers)
end
"""


def soak(
    binary: EnvoyBinary, work: Path, example: str, backend: str, seconds: int, upstream: int
) -> dict[str, Any]:
    """One plugin under load in one Envoy; what happened."""
    built = pipeline.build(
        wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml"),
        work / f"{example}-{backend}",
        console=Console(quiet=True),
        backend=backend,  # type: ignore[arg-type]
    )
    process = plugin_process(binary, built.wasm, built.plan, ("127.0.0.1", upstream))
    vm = process.bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["http_filters"][0]["typed_config"]["config"]["vm_config"]  # fmt: skip
    vm["environment_variables"] = {"key_values": {"GODEBUG": "gctrace=1"}}
    lua = work / "soak.lua"
    lua.write_text(LUA)
    with process:
        process.start(timeout=120)
        done = subprocess.run(
            ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "5s", "-s", str(lua),
             f"http://127.0.0.1:{process.listener_port}/"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        stats = process.stats("http.ingress_http.downstream_rq_")
        # Envoy logs each write to the plugin's stderr as one record and drops one trailing
        # newline, so the runtime's output (printed piecewise) is put back together first.
        log = "".join(text or "\n" for text in process.plugin_logs("error"))
        log += "\n".join(line.raw for line in process.lines if line.plugin_text is None)
    requests = int(re.search(r"(\d+) requests in", done.stdout).group(1))  # type: ignore[union-attr]
    return {
        "envoy": binary.name,
        "plugin": f"{example} ({backend})",
        "requests": requests,
        "5xx": stats.get("http.ingress_http.downstream_rq_5xx", 0),
        "aborts": len(re.findall(r"poll_oneoff|panic during panic|Uncaught RuntimeError", log)),
        "gc": len(re.findall(r"\bgc \d+ @", log)),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", nargs="+", default=["1.36", "1.38"])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="wasmgen-soak-") as tmp:
        upstream = EnvoyProcess(find("1.40"), copy.deepcopy(_upstream_bootstrap()))
        with upstream:
            upstream.start()
            for version in args.versions:
                binary = find(version)
                for example in ("seed-lab", "api-errors", "secure-gateway", "request-guard"):
                    for backend in args.backends:
                        rows.append(
                            soak(
                                binary,
                                Path(tmp),
                                example,
                                backend,
                                args.seconds,
                                upstream.listener_port,
                            )
                        )
    print(f"wrk -t1 -c8 -d{args.seconds}s per plugin, loopback, one Envoy worker")
    head = f"{'Envoy':14} {'plugin':30} {'requests':>9} {'5xx':>5} {'aborts':>6} {'GC cycles':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['envoy']:14} {r['plugin']:30} {r['requests']:>9} {r['5xx']:>5} {r['aborts']:>6} {r['gc']:>9}"
        )


if __name__ == "__main__":
    main()
