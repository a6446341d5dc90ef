"""Expected values that vary: a case's {matches: RE2}, and ${time.*} headers compared with
real Envoy strictly (shape and the exchange's wall-clock window), not by presence.

Every check runs a compiled plugin: in the embedded host, and in real Envoy 1.40 for the
clock; the one built spec writes ${time.http}, ${time.unix} with literal parts, and
${request.id}.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import run_cli
from wasmgen.build.compile import go_test
from wasmgen.envoy import find, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, exchange
from wasmgen.envoy_headers import TEST_CLOCK
from wasmgen.host import EnvoySurroundings, ProxyWasmHost
from wasmgen.pipeline import Built, build
from wasmgen.semantics import scenarios
from wasmgen.semantics.values import clocked, http_date
from wasmgen.spec import validate
from wasmgen.testing import run
from wasmgen.testing.clock import Clocked, Window, fixdate_seconds
from wasmgen.testing.envoy import compare, observed_wire
from wasmgen.testing.runner import check_case

FIXDATE = (
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|"
    r"Nov|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$"
)
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
SPEC = {
    "name": "expect-patterns",
    "image": "r.io/p:v1",
    "response": [
        {"set": {"x-at": "${time.http}", "x-unix": "u=${time.unix};", "x-id": "${request.id}"}}
    ],
    "tests": [
        {
            "name": "times and the generated id",
            "expect": {
                "responseHeaders": {
                    "x-at": {"matches": FIXDATE},
                    "x-unix": {"matches": "^u=[0-9]+;$"},
                    "x-id": {"matches": UUID4},
                    "x-absent": None,
                }
            },
        }
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("patterns")
    return build(validate(SPEC), Path(out), "go", console=Console(quiet=True))


def _case(expect: dict[str, object]) -> object:
    return validate({**SPEC, "tests": [{"name": "c", "expect": expect}]}).tests[0]


def test_a_bad_pattern_is_refused_where_it_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: p\nimage: r.io/p:v1\nresponse: [{set: {x: y}}]\ntests:\n  - name: c\n    expect:\n      responseHeaders:\n"
        '        x-a: {matches: "("}\n        x-b: {equal: x}\n'
    )
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{spec}:8:24: tests[0].expect.responseHeaders.x-a.matches: invalid RE2 regular "
        "expression '(': missing ): (",
        f"{spec}:9:9: tests[0].expect.responseHeaders.x-b.matches: missing required key",
        f"{spec}:9:15: tests[0].expect.responseHeaders.x-b.equal: unknown key 'equal' "
        "(allowed: matches)",
    ]
    assert not (tmp_path / "out").exists()


def test_the_dsl_spells_a_pattern_as_yaml_does() -> None:
    plugin = wasmgen.Plugin("expect-patterns").image("r.io/p:v1")
    plugin.response(wasmgen.set_headers(SPEC["response"][0]["set"]))  # type: ignore[index]
    plugin.test("times and the generated id", expect=SPEC["tests"][0]["expect"])  # type: ignore[index]
    assert plugin.build() == validate(SPEC)


@pytest.mark.slow
def test_patterns_hold_in_the_embedded_host_and_failures_say_what(built: Built) -> None:
    results = run(built.plan, [], built.wasm.read_bytes(), built.compat.target)
    assert [(r.name, r.failures) for r in results] == [("times and the generated id", [])]
    case = _case(
        {
            "responseHeaders": {
                "x-unix": {"matches": "^[0-9]+$"},
                "x-at": {"matches": "1999"},
                "x-id": {"matches": "^req-"},
                "x-nothing": {"matches": "."},
                "x-absent": "here",
            }
        }
    )
    req, resp = scenarios.test_case_headers(case)  # type: ignore[arg-type]
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start()
        result = host.exchange(req, resp)
    assert check_case(case, result) == [  # type: ignore[arg-type]
        "response header x-unix: expected a match of /^[0-9]+$/, got 'u=1640995200;'",
        f"response header x-at: expected a match of /1999/, got '{http_date(TEST_CLOCK)}'",
        f"response header x-id: expected a match of /^req-/, got '{scenarios.generated_request_id(case)}'",  # type: ignore[arg-type]
        "response header x-nothing: expected a match of /./, got absent",
        "response header x-absent: expected 'here', got absent",
    ]


def test_the_generated_request_id_is_a_fixed_v4_uuid_unless_the_case_sends_one() -> None:
    case = _case({})
    req, _ = scenarios.test_case_headers(case)  # type: ignore[arg-type]
    ids = [v for k, v in req if k == "x-request-id"]
    assert ids == [scenarios.generated_request_id(case)]  # type: ignore[arg-type]
    assert ids[0] == scenarios.generated_request_id(_case({"requestHeaders": {"x": "1"}}))  # type: ignore[arg-type]
    import re

    assert re.fullmatch(UUID4, ids[0])
    without, _ = scenarios.test_case_headers(case, request_id=False)  # type: ignore[arg-type]
    assert not any(k == "x-request-id" for k, _ in without)


def test_imf_fixdate_is_read_strictly() -> None:
    assert fixdate_seconds("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    for wrong in (
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime
        "Mon, 06 Nov 1994 08:49:37 GMT",  # the wrong weekday
        "Sun, 6 Nov 1994 08:49:37 GMT",  # one-digit day
        "Thu, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
    ):
        assert fixdate_seconds(wrong) is None, wrong


def test_a_clocked_value_is_checked_in_shape_time_and_literal_parts() -> None:
    now = 1764669600  # Tue, 02 Dec 2025 10:00:00 GMT
    clock = Clocked({"x-at": frozenset({"time.http"}), "x-unix": frozenset({"time.unix"})},
                    Window(now + 0.2, now + 0.7))  # fmt: skip
    host_at, host_unix = http_date(TEST_CLOCK), f"u={TEST_CLOCK};"
    assert clock.mismatch("x-at", http_date(now), host_at) is None
    assert clock.mismatch("x-at", http_date(now + 2), host_at) is None  # a second of slack
    assert clock.mismatch("x-unix", f"u={now - 1};", host_unix) is None
    window = f"{now - 1}..{now + 2} ({http_date(now - 1)} to {http_date(now + 2)})"
    assert clock.mismatch("x-at", http_date(now + 3), host_at) == (
        f"Envoy {http_date(now + 3)!r}: {http_date(now + 3)!r} is outside the exchange's time "
        + window
    )
    assert clock.mismatch("x-unix", f"u={now - 2};", host_unix) == (
        f"Envoy 'u={now - 2};': '{now - 2}' is outside the exchange's time {window}"
    )
    assert clock.mismatch("x-at", "Tue Dec  2 10:00:00 2025", host_at) == (
        "Envoy 'Tue Dec  2 10:00:00 2025': 'Tue Dec  2 10:00:00 2025' is not an IMF-fixdate "
        "(RFC 9110), as ${time.http} writes"
    )
    assert clock.mismatch("x-unix", f"u={now}.5;", host_unix) == (
        f"Envoy 'u={now}.5;': '{now}.5' is not decimal seconds, as ${{time.unix}} writes"
    )
    assert clock.mismatch("x-unix", f"v={now};", host_unix) == (
        f"Envoy 'v={now};' is not the embedded host's 'u={TEST_CLOCK};' with its time replaced"
    )


@pytest.mark.slow
def test_envoy_is_compared_with_the_host_by_shape_and_time(built: Built) -> None:
    """Real Envoy 1.40 and the embedded host on the same exchange: the clocked headers agree
    within the exchange's window, and a window in the past or a date in another format is
    reported for exactly the header it concerns."""
    case = validate(SPEC).tests[0]
    request, response = scenarios.test_case_headers(case, request_id=False)
    upstream = ScriptedUpstream()
    try:
        with plugin_process(find("1.40"), built.wasm, built.plan, ("127.0.0.1", upstream.port)) as p, \
                ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
            p.start()
            assert host.start()
            start = time.time()
            wire = exchange(p.listener_port, upstream, request, response)
            window = Window(start, time.time())
            sim = host.exchange(request, [*response, ("content-length", "0")],
                                envoy=EnvoySurroundings())  # fmt: skip
    finally:
        upstream.close()
    kinds = clocked(built.plan.config)
    assert kinds == {"x-at": {"time.http"}, "x-unix": {"time.unix"}}
    assert compare(wire, sim, Clocked(kinds, window)) == []
    assert check_case(case, observed_wire(wire)) == []
    past = compare(wire, sim, Clocked(kinds, Window(TEST_CLOCK + 10, TEST_CLOCK + 11)))
    assert [f.split(":")[0] for f in past] == ["response header x-at", "response header x-unix"]
    assert all("is outside the exchange's time" in f for f in past)
    sent = dict(wire.response)
    asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(int(sent["x-unix"][2:-1])))
    odd = [(k, asctime if k == "x-at" else v) for k, v in wire.response]
    assert compare(dataclasses.replace(wire, response=tuple(odd)), sim, Clocked(kinds, window)) == [
        f"response header x-at: Envoy {asctime!r}: {asctime!r} is not an IMF-fixdate (RFC 9110), "
        "as ${time.http} writes"
    ]
    assert compare(wire, sim) != []  # without the clock the times differ as text


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["compiled", "dynamic"])
def test_the_generated_go_tests_check_patterns(tmp_path: Path, backend: str) -> None:
    """A case's pattern reaches the Go tests wasmgen generates: one that holds passes, one
    that does not fails with the header, the regex and the value (natively; test_plugin_go.py
    runs echo-request's patterns in the SDK's wazero host too)."""
    spec = {
        "name": "go-patterns",
        "image": "r.io/p:v1",
        "response": [{"set": {"x-build": "b-17"}}],
        "tests": [
            {
                "name": "holds",
                "expect": {"responseHeaders": {"x-build": {"matches": "^b-[0-9]+$"}}},
            },
            {"name": "fails", "expect": {"responseHeaders": {"x-build": {"matches": "^c-"}}}},
        ],
    }
    out = tmp_path / "out"
    wasmgen.generate(validate(spec), out, backend=backend)  # type: ignore[arg-type]
    result = go_test(out, args=("-count=1", "-run", "TestScenarios", "."), check=False,
                     console=Console(quiet=True))  # fmt: skip
    assert not result.ok
    assert 'header x-build: want "^c-" (pattern=true), got "b-17" (present=true)' in result.output
    failed = [line.split()[2] for line in result.output.splitlines()
              if line.strip().startswith("--- FAIL: TestScenarios/")]  # fmt: skip
    leaves = {name for name in failed if "test:" in name}  # dynamic nests them under go/
    assert leaves and all(name.endswith("/test:_fails") for name in leaves), failed
