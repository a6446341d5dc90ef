"""Per-request cost of generated plugins against the seed lab's plugin: `python -m tests.benchmark`.

Instructions are wasmtime fuel (deterministic); wall times are noisy on shared machines, so
they are shown only as ratios against the lab's plugin measured in the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

import wasmgen
from wasmgen.build.compile import ToolchainKind, compile_project
from wasmgen.errors import HostError
from wasmgen.host import HttpRequest, HttpResponse, ProxyWasmHost
from wasmgen.plan import BACKENDS, Backend, make_plan

ROOT = Path(__file__).resolve().parent.parent
LAB_CONFIG = b'{"header_1": "first_header", "header_2": "second_header"}'
REQUESTS = 200
QUIET = Console(stderr=True, quiet=True)


@dataclass(frozen=True)
class Measurement:
    """What one plugin costs."""

    name: str
    size: int
    start_fuel: int
    request_fuel: int  # median per request/response exchange, context create to delete
    request_fuel_spread: int  # max - min over all requests (0 when perfectly stable)
    info_logs_per_request: float
    memory_bytes: int  # linear memory after all requests
    seconds_per_request: float


def measure(
    name: str, wasm: bytes, config: bytes, request: HttpRequest, response: HttpResponse
) -> Measurement:
    """Start the plugin once, then send REQUESTS identical exchanges."""
    with ProxyWasmHost(wasm, plugin_config=config) as host:
        if not host.start():
            raise SystemExit(f"{name}: plugin did not start: {host.logs()}")
        start_fuel = host.fuel_consumed
        info_before = len(host.logs("info"))
        fuel: list[int] = []
        seconds: list[float] = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            result = host.http_request(request, response)
            seconds.append(time.perf_counter() - t0)
            fuel.append(result.total_fuel)
        info = (len(host.logs("info")) - info_before) / REQUESTS
        return Measurement(
            name, len(wasm), start_fuel, int(statistics.median(fuel)), max(fuel) - min(fuel), info,
            host.memory_size, statistics.median(seconds),
        )  # fmt: skip


TOOLCHAINS: tuple[ToolchainKind, ...] = ("go", "tinygo")


def _compile(src: Path, work: Path, toolchain: ToolchainKind = "go") -> bytes:
    suffix = "" if toolchain == "go" else f"-{toolchain}"
    out = work / f"{src.name}{suffix}.wasm"
    return compile_project(src, out, toolchain, console=QUIET).path.read_bytes()


def _generated(
    example: str, work: Path, backend: Backend = "compiled", toolchain: ToolchainKind = "go"
) -> tuple[bytes, bytes]:
    spec = wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml")
    out = work / f"{example}-{backend}-{toolchain}"
    wasmgen.generate(spec, out, force=True, flavor=toolchain, backend=backend)
    wasm = compile_project(out, out / "plugin.wasm", toolchain, console=QUIET).path.read_bytes()
    return wasm, make_plan(spec, toolchain, backend=backend).config_json.encode()


def _label(example: str, backend: Backend, toolchain: ToolchainKind) -> str:
    return f"wasmgen {example} ({backend}, {'TinyGo' if toolchain == 'tinygo' else 'Go'})"


COOKIES = (("set-cookie", "session=abc123; Path=/; Max-Age=3600"), ("set-cookie", "id=7; secure"))
DEDUPE = (
    HttpRequest(path="/get", headers=(("origin", "https://app.example.com"),)),
    HttpResponse(
        status=200,
        headers=(
            ("access-control-allow-origin", "https://app.example.com"),
            ("vary", "Origin, Accept-Encoding, Origin"),
        ),
    ),
)
TRACKING = (
    HttpRequest(path="/get", headers=(("cookie", "_ga=GA1.2.3.4; session=abc123; _gid=GA1.2.5"),)),
    HttpResponse(status=200, headers=(("set-cookie", "debug-session=1; Path=/"), *COOKIES)),
)


def run(work: Path) -> list[Measurement]:
    """Measure the lab, the add-only floor and each example."""
    get = HttpRequest(method="GET", path="/get", authority="httpbin:8000")
    ok = HttpResponse(
        status=200, headers=(("content-type", "application/json"), ("content-length", "604"))
    )
    lab = _compile(ROOT / "tests" / "plugins" / "lab", work)
    floor = _compile(ROOT / "tests" / "plugins" / "addonly", work)
    gofloor = _compile(ROOT / "tests" / "plugins" / "gofloor", work)
    tinyfloor = _compile(ROOT / "tests" / "plugins" / "gofloor", work, "tinygo")
    rows = [
        measure("seed lab (hand-written)", lab, LAB_CONFIG, get, ok),
        measure("add-only floor (same SDK)", floor, b"", get, ok),
        measure("Go floor (no SDK)", gofloor, b"{}", get, ok),
        measure("TinyGo floor (same source)", tinyfloor, b"{}", get, ok),
    ]
    for toolchain in TOOLCHAINS:
        for backend in BACKENDS:
            seed_wasm, seed_cfg = _generated("seed-lab", work, backend, toolchain)
            rows.append(
                measure(_label("seed-lab", backend, toolchain), seed_wasm, seed_cfg, get, ok)
            )
    api = HttpRequest(
        method="GET", path="/api/v1/orders", authority="shop", headers=(("x-request-id", "r1"),)
    )
    for example, request, response in (
        (
            "api-errors",
            api,
            HttpResponse(status=503, headers=(("x-envoy-upstream-service-time", "3"),)),
        ),
        ("secure-gateway", get, HttpResponse(status=200, headers=(("server", "gunicorn"),))),
        (
            "cors",  # the one example with a real regex: links Go's regexp
            HttpRequest(method="GET", path="/", headers=(("origin", "https://a1.shop.example"),)),
            ok,
        ),
        (
            "request-guard",
            HttpRequest(method="POST", path="/anything", headers=(("x-api-version", "2"),)),
            ok,
        ),
        ("cookie-hardening", get, HttpResponse(status=200, headers=COOKIES)),
        ("tracking-cookies", *TRACKING),
        ("cors-dedupe", *DEDUPE),
        (  # query and cookie conditions under any: and not:, every rule tested
            "preview-beta",
            HttpRequest(
                path="/products/42?lang=en&preview=1",
                headers=(("cookie", "session=abc; beta=1; theme=dark"),),
            ),
            ok,
        ),
        (  # source: an IPv4 client from x-forwarded-for, in 10.0.0.0/8 and under not:
            "internal-debug",
            HttpRequest(path="/", headers=(("x-forwarded-for", "10.1.2.3"),)),
            ok,
        ),
        (  # value expressions (request id, client address, a path group, query values, the
            # status, an upstream header) under query, not: source and path regex conditions
            "echo-request",
            HttpRequest(
                path="/shop/socks?ref=mail&price=3",
                headers=(("x-request-id", "r-1"), ("x-forwarded-for", "192.0.2.1")),
            ),
            HttpResponse(status=200, headers=(("x-upstream-build", "b-17"),)),
        ),
    ):
        for toolchain in TOOLCHAINS:
            # The dynamic backend refuses value expressions.
            for backend in BACKENDS if example != "echo-request" else ("compiled",):
                wasm, cfg = _generated(example, work, backend, toolchain)
                name = _label(example, backend, toolchain)
                rows.append(measure(name, wasm, cfg, request, response))
    return rows


def lab_bad_config(work: Path) -> str:
    """What the lab's plugin does with a non-JSON pluginConfig."""
    lab = (work / "lab.wasm").read_bytes()
    with ProxyWasmHost(lab, plugin_config=b"header_1: first_header") as host:
        try:
            started = host.start()
        except HostError as exc:
            return f"traps: {exc.message.splitlines()[0]}"
        return f"start returned {started}"


def main() -> None:
    """Print the table."""
    with tempfile.TemporaryDirectory(prefix="wasmgen-bench-") as tmp:
        work = Path(tmp)
        rows = run(work)
        bad = lab_bad_config(work)
    lab = rows[0]
    head = f"{'plugin':44} {'size':>9} {'start instr':>12} {'instr/req':>10} {'vs lab':>7} {'spread':>7} {'info logs/req':>13} {'memory':>9} {'time vs lab':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.name:44} {r.size:>9} {r.start_fuel:>12} {r.request_fuel:>10} {r.request_fuel / lab.request_fuel:>6.2f}x "
            f"{r.request_fuel_spread:>7} {r.info_logs_per_request:>13.1f} {r.memory_bytes:>9} "
            f"{r.seconds_per_request / lab.seconds_per_request:>10.2f}x"
        )
    print(
        f"\n{REQUESTS} requests each; instructions are wasmtime fuel units (one per wasm instruction)."
    )
    print(f"seed lab plugin with a non-JSON pluginConfig: {bad}")
    print("wasmgen plugins with a non-JSON pluginConfig: start fails with one critical log line")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
