"""The cost targets, in deterministic wasm instructions (wasmtime fuel), not wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import benchmark
from wasmgen.host import HttpRequest, HttpResponse
from wasmgen.pipeline import Built

pytestmark = pytest.mark.slow


def test_generated_plugin_costs_near_the_sdk_floor(
    built_examples: dict[str, Built], tmp_path: Path
) -> None:
    """The lab's plugin costs ~20k instructions and logs 4 lines per request; ours stays near the floor."""
    get = HttpRequest(method="GET", path="/get", authority="httpbin:8000")
    ok = HttpResponse(status=200, headers=(("content-type", "application/json"),))
    lab = benchmark._compile(benchmark.ROOT / "tests" / "plugins" / "lab", tmp_path)
    floor = benchmark._compile(benchmark.ROOT / "tests" / "plugins" / "addonly", tmp_path)
    seed = built_examples["seed-lab"]
    import wasmgen
    from wasmgen.plan import make_plan

    config = make_plan(
        wasmgen.load_spec(benchmark.ROOT / "examples" / "seed-lab.yaml")
    ).config_json.encode()
    m_lab = benchmark.measure("lab", lab, benchmark.LAB_CONFIG, get, ok)
    m_floor = benchmark.measure("floor", floor, b"", get, ok)
    m_seed = benchmark.measure("seed", seed.wasm.read_bytes(), config, get, ok)
    print(
        f"instructions/request: lab {m_lab.request_fuel}, floor {m_floor.request_fuel}, wasmgen {m_seed.request_fuel}"
    )
    assert m_lab.info_logs_per_request == 4.0
    assert m_seed.info_logs_per_request == 0.0
    assert m_seed.request_fuel < m_lab.request_fuel / 2
    assert m_seed.request_fuel < m_floor.request_fuel * 1.5
    assert "traps" in benchmark.lab_bad_config(tmp_path)


@pytest.mark.parametrize("version", ["1.36", "1.40"])
def test_envoy_benchmark_baselines_do_the_work_they_stand_for(tmp_path: Path, version: str) -> None:
    """The rows the plugins are measured against in real Envoy: native header_mutation and the
    WAT, Go and TinyGo floors must set the lab's two headers (a floor that did nothing would flatter nobody),
    and the router-only row must not."""
    import urllib.request

    from tests import benchmark_envoy
    from wasmgen.envoy import EnvoyProcess, find

    binary = find(version)
    with EnvoyProcess(binary, benchmark_envoy._upstream_bootstrap()) as upstream:
        upstream.start()
        rows = benchmark_envoy.baselines(tmp_path, upstream.listener_port)
        assert [r.name.split()[0] for r in rows] == ["router", "native", "any", "any", "any"]
        for row in rows:
            with EnvoyProcess(binary, row.bootstrap) as envoy:
                envoy.start(timeout=120)
                url = f"http://127.0.0.1:{envoy.listener_port}/api/v2/orders"
                with urllib.request.urlopen(url, timeout=10) as reply:
                    assert reply.status == 200
                    got = (reply.headers.get("header_1"), reply.headers.get("header_2"))
                    body = reply.read()
            want = (None, None) if row.name == "router only" else ("first_header", "second_header")
            assert got == want, row.name
            assert body == b"ok\n", row.name
