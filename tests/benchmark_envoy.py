"""What a plugin costs in real Envoy: `python -m tests.benchmark_envoy [--envoy 1.40] [--rounds 5]`.

Each round starts a fresh Envoy (one worker) for every configuration in turn; the table shows
the median over rounds of: time from exec to ready, resident memory once ready and after the load, and
Envoy's CPU time per request under `wrk` on loopback (the upstream is a second Envoy answering
from a direct_response, so no Python is on the data path). "added" columns subtract the
router-only Envoy measured in the same run (CPU: the median of each round's difference from
it): wall times and CPU are noisy on shared machines,
so compare the ratios within one run. Memory per extra worker: the same plugin with two workers.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import wasmtime
from rich.console import Console

import wasmgen
from tests.benchmark import ROOT, TOOLCHAINS, _compile, _label
from wasmgen import pipeline
from wasmgen.deploy import deployment
from wasmgen.deploy.envoy import envoy_bootstrap
from wasmgen.envoy import EnvoyBinary, EnvoyProcess, find
from wasmgen.plan import BACKENDS, Backend, Plan

QUIET = Console(stderr=True, quiet=True)
HEADER_MUTATION = (
    "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
)
FLOOR_WAT = ROOT / "tests" / "plugins" / "floor" / "floor.wat"
LAB_CONFIG = '{"header_1": "first_header", "header_2": "second_header"}'


@dataclasses.dataclass(frozen=True)
class Config:
    """One Envoy setup to measure."""

    name: str
    bootstrap: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Row:
    """Medians over the rounds."""

    name: str
    ready_s: float
    rss_ready: int
    rss_loaded: int
    cpu_us: float  # Envoy CPU microseconds per request under load
    added_cpu_us: float  # median over rounds of the difference from that round's baseline
    rps: float
    worker_bytes: int | None = None


def _upstream_bootstrap() -> dict[str, Any]:
    plan = _plan("seed-lab", "dynamic")
    config = envoy_bootstrap(deployment(plan), "unused", listen_port=0, listen_address="127.0.0.1",
                             admin_port=0)  # fmt: skip
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]
    hcm["http_filters"] = hcm["http_filters"][-1:]  # the router only
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    route.pop("route")
    route["direct_response"] = {"status": 200, "body": {"inline_string": "ok\n"}}
    return config


def _plan(example: str, backend: Backend) -> Plan:
    spec = wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml")
    return pipeline.render(spec, backend=backend).plan


def _with_filter(base: dict[str, Any], http_filter: dict[str, Any] | None) -> dict[str, Any]:
    config = copy.deepcopy(base)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]
    router = hcm["http_filters"][-1]
    hcm["http_filters"] = ([http_filter] if http_filter else []) + [router]
    return config


def floor_wasm(work: Path) -> Path:
    """tests/plugins/floor/floor.wat assembled: the least a wasm filter setting two headers is."""
    out = work / "floor.wasm"
    out.write_bytes(wasmtime.wat2wasm(FLOOR_WAT.read_text()))
    return out


def _base(upstream_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The router-only bootstrap, and the wasm filter it would run (a template)."""
    plan = _plan("seed-lab", "dynamic")
    base = envoy_bootstrap(deployment(plan), "x", listen_port=0, listen_address="127.0.0.1",
                           admin_port=0, upstream_port=upstream_port)  # fmt: skip
    wasm_filter = base["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["http_filters"][0]  # fmt: skip
    return _with_filter(base, None), wasm_filter


def baselines(work: Path, upstream_port: int) -> list[Config]:
    """Router only, native header_mutation, and the floors of any wasm filter and any Go one."""
    base, wasm_filter = _base(upstream_port)
    out = [Config("router only", base)]
    mutations = [{"append": {"header": {"key": k, "value": v},
                             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}
                 for k, v in (("header_1", "first_header"), ("header_2", "second_header"))]  # fmt: skip
    native = {"name": "envoy.filters.http.header_mutation",
              "typed_config": {"@type": HEADER_MUTATION, "mutations": {"response_mutations": mutations}}}  # fmt: skip
    out.append(Config("native header_mutation (2 headers)", _with_filter(base, native)))
    wat = floor_wasm(work)
    floor = _wasm(wasm_filter, wat, "{}")
    name = f"any wasm filter ({wat.stat().st_size}-byte WAT floor)"
    out.append(Config(name, _with_filter(base, floor)))
    gofloor = work / "gofloor.wasm"
    gofloor.write_bytes(_compile(ROOT / "tests" / "plugins" / "gofloor", work))
    go = _wasm(wasm_filter, gofloor, "{}")
    out.append(Config("any upstream-Go plugin (Go floor)", _with_filter(base, go)))
    tinyfloor = work / "gofloor-tinygo.wasm"
    tinyfloor.write_bytes(_compile(ROOT / "tests" / "plugins" / "gofloor", work, "tinygo"))
    tiny = _wasm(wasm_filter, tinyfloor, "{}")
    out.append(Config(f"any TinyGo plugin ({tinyfloor.stat().st_size}-byte floor)", _with_filter(base, tiny)))  # fmt: skip
    return out


def configs(work: Path, upstream_port: int) -> list[Config]:
    """The baselines, the lab's plugin, and wasmgen's plugins."""
    base, wasm_filter = _base(upstream_port)
    out = baselines(work, upstream_port)
    lab = work / "lab.wasm"
    lab.write_bytes(_compile(ROOT / "tests" / "plugins" / "lab", work))
    out.append(Config("the lab's plugin", _with_filter(base, _wasm(wasm_filter, lab, LAB_CONFIG))))
    for example in ("seed-lab", "api-errors", "cors"):
        for toolchain in TOOLCHAINS:
            for backend in BACKENDS:
                built = pipeline.build(
                    wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml"),
                    work / f"{example}-{backend}-{toolchain}", toolchain, console=QUIET,
                    backend=backend,
                )  # fmt: skip
                filt = _wasm(wasm_filter, built.wasm, built.plan.config_json)
                name = _label(example, backend, toolchain)
                out.append(Config(name, _with_filter(base, filt)))
    return out


def _wasm(template: dict[str, Any], wasm: Path, config_json: str) -> dict[str, Any]:
    f = copy.deepcopy(template)
    cfg = f["typed_config"]["config"]
    cfg["configuration"]["value"] = config_json
    cfg["vm_config"]["code"]["local"]["filename"] = str(wasm.resolve())
    cfg.pop("failure_policy", None)
    return f


def _wrk(port: int, seconds: int) -> int:
    done = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "5s", f"http://127.0.0.1:{port}/api/v2/orders"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(r"(\d+) requests in", done.stdout)
    if m is None:
        raise SystemExit(f"wrk printed no request count: {done.stdout}")
    return int(m.group(1))


def _round(
    binary: EnvoyBinary, config: Config, seconds: int
) -> tuple[float, int, int, float, float]:
    """One fresh start: ready seconds, RSS ready, RSS loaded, CPU us per request, requests/s."""
    with EnvoyProcess(binary, config.bootstrap) as envoy:
        envoy.start(timeout=120)
        ready, rss_ready = envoy.ready_seconds, envoy.rss_bytes()
        _wrk(envoy.listener_port, 1)  # warm up
        before = envoy.cpu_seconds()
        count = _wrk(envoy.listener_port, seconds)
        cpu = (envoy.cpu_seconds() - before) / count * 1e6
        return ready, rss_ready, envoy.rss_bytes(), cpu, count / seconds


def _worker_bytes(binary: EnvoyBinary, config: Config, rss_loaded: int) -> int:
    """What a second worker adds: the same configuration with two workers, after a warm-up."""
    with EnvoyProcess(binary, config.bootstrap, concurrency=2) as two:
        two.start(timeout=120)
        _wrk(two.listener_port, 1)
        return two.rss_bytes() - rss_loaded


def measure(binary: EnvoyBinary, configs: list[Config], rounds: int, seconds: int) -> list[Row]:
    """Medians over rounds; each round starts every configuration once, in turn, so that drift
    in the machine's speed lands on all of them alike. The first configuration is the baseline:
    added CPU is the median of each round's difference from it."""
    samples = [[_round(binary, c, seconds) for c in configs] for _ in range(rounds)]
    med = statistics.median
    rows = []
    for i, config in enumerate(configs):
        ready, rss_ready, rss_loaded, cpu, rps = zip(*(s[i] for s in samples), strict=True)
        added = med(s[i][3] - s[0][3] for s in samples)
        loaded = int(med(rss_loaded))
        worker = _worker_bytes(binary, config, loaded) if i else None
        rows.append(Row(config.name, med(ready), int(med(rss_ready)), loaded, med(cpu), added,
                        med(rps), worker))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoy", default="1.40")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args(argv)
    binary = find(args.envoy)
    with tempfile.TemporaryDirectory(prefix="wasmgen-envoy-bench-") as tmp:
        upstream = EnvoyProcess(find(args.envoy), _upstream_bootstrap())
        with upstream:
            upstream.start()
            rows = measure(binary, configs(Path(tmp), upstream.listener_port), args.rounds,
                           args.seconds)  # fmt: skip
    base = rows[0]
    mib = 1 << 20
    print(
        f"{binary.name}, one worker, median of {args.rounds} interleaved rounds, wrk -t1 -c8 -d{args.seconds}s on loopback"
    )
    head = f"{'configuration':44} {'ready s':>8} {'RSS MiB':>8} {'added MiB':>9} {'CPU us/req':>10} {'added us':>8} {'req/s':>7} {'per worker MiB':>14}"
    print(head)
    print("-" * len(head))
    for r in rows:
        worker = f"{r.worker_bytes / mib:.1f}" if r.worker_bytes is not None else "-"
        print(f"{r.name:44} {r.ready_s:8.2f} {r.rss_loaded / mib:8.1f} {(r.rss_loaded - base.rss_loaded) / mib:9.1f} "
              f"{r.cpu_us:10.1f} {r.added_cpu_us:8.1f} {r.rps:7.0f} {worker:>14}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
