"""`wasmgen test --envoy`: every exchange through real Envoy and through the embedded host.

The upstream is wasmgen's own: it answers each exchange with the declared status and headers
and records what reached it, so request rules are checked where they land. The embedded host
runs the same exchange with Envoy's surroundings modelled (what the connection manager and
router add around the filter, wasmgen.host.envoy_rules); any difference between the two is a
failure, reported header by header, since Envoy is the truth the host must match. Values
Envoy makes up per request (date, generated request ids, the router's timing) are compared by
presence; values a ${time.*} expression wrote by shape and time (wasmgen.testing.clock). The
spec's own cases are also checked against what Envoy did.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wasmgen.deploy.files import server_header
from wasmgen.envoy import EnvoyBinary, PluginStartFailed, plugin_process
from wasmgen.envoy.wire import ScriptedUpstream, WireResult, exchange
from wasmgen.host import HttpResult, ProxyWasmHost
from wasmgen.host.envoy_rules import EnvoySurroundings
from wasmgen.plan import Plan
from wasmgen.semantics import Scenario, test_case_headers
from wasmgen.semantics.values import clocked
from wasmgen.spec.models import TestCase
from wasmgen.testing.clock import Clocked, Window
from wasmgen.testing.runner import CaseResult, Header, Observed, check_case
from wasmgen.wasm.compat import Target

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VOLATILE = frozenset({"date", "x-envoy-upstream-service-time"})


def _normalise(headers: Sequence[Header], volatile: frozenset[str]) -> dict[str, list[str]]:
    """name -> values in order; volatile values and generated request ids become placeholders."""
    out: dict[str, list[str]] = defaultdict(list)
    for name, value in headers:
        if name.startswith(":"):
            continue
        shown = "<varies>" if name in volatile else _UUID.sub("<uuid>", value)
        out[name.lower()].append(shown)
    return dict(out)


def _diff(
    what: str,
    envoy: Sequence[Header],
    host: Sequence[Header],
    volatile: frozenset[str],
    clock: Clocked | None = None,
) -> list[str]:
    a, b = _normalise(envoy, volatile), _normalise(host, volatile)
    out = []
    for name in sorted(set(a) | set(b)):
        both = name in a and name in b and len(a[name]) == len(b[name])
        if clock is not None and name in clock.kinds and both:
            found = (clock.mismatch(name, x, y) for x, y in zip(a[name], b[name], strict=True))
            out += [f"{what} header {name}: {why}" for why in found if why is not None]
        elif a.get(name) != b.get(name):
            shown_a = ", ".join(map(repr, a[name])) if name in a else "absent"
            shown_b = ", ".join(map(repr, b[name])) if name in b else "absent"
            out.append(f"{what} header {name}: Envoy {shown_a}, embedded host {shown_b}")
    return out


def compare(envoy: WireResult, host: HttpResult, clock: Clocked | None = None) -> list[str]:
    """Every difference between real Envoy and the embedded host, header by header; clock:
    the headers ${time.*} values write, checked in shape and against the exchange's window
    (test hosts run at a fixed clock, see wasmgen.testing.clock)."""
    volatile = VOLATILE | host.volatile
    failures: list[str] = []
    reached = host.upstream is not None
    if (envoy.upstream_request is not None) != reached:
        failures.append(
            "the request "
            + ("reached" if envoy.upstream_request is not None else "did not reach")
            + " the upstream in Envoy but "
            + ("did" if reached else "did not")
            + " in the embedded host"
        )
    elif envoy.upstream_request is not None and host.upstream is not None:
        failures += _diff(
            "upstream request", envoy.upstream_request, host.upstream.headers, volatile, clock
        )
    client = host.client
    if client is None:
        return [*failures, "the embedded host produced no response for the client"]
    if client.status != envoy.status:
        failures.append(f"status: Envoy {envoy.status}, embedded host {client.status}")
    failures += _diff("response", envoy.response, client.headers, volatile, clock)
    return failures


def observed_wire(result: WireResult) -> Observed:
    """What Envoy did, as a spec case checks it."""
    local = result.status if result.upstream_request is None else None
    return Observed(local, result.upstream_request, result.response)


def run_in_envoy(
    plan: Plan,
    scenarios: Sequence[Scenario],
    wasm: Path,
    binary: EnvoyBinary,
    target: Target,
    bootstrap: Callable[[dict[str, Any]], None] | None = None,
) -> list[CaseResult]:
    """Each derived scenario and declared case through Envoy and the host, compared.

    `bootstrap` may edit Envoy's bootstrap first (e.g. to put the filter chain Istio built in).
    """
    derived = [(s.name, s.request, s.response, None) for s in scenarios
               if not s.name.startswith("test: ")]  # fmt: skip
    declared = [(c.name, *test_case_headers(c, request_id=False), c) for c in plan.spec.tests]
    return _through_envoy(plan, [*derived, *declared], wasm, binary, target, bootstrap)


def compare_exchanges(
    plan: Plan,
    exchanges: Sequence[tuple[Sequence[Header], Sequence[Header]]],
    wasm: Path,
    binary: EnvoyBinary,
    target: Target,
) -> list[CaseResult]:
    """Any (request, upstream response) pairs through Envoy and the host, compared header by
    header; for traffic no spec declares (tests/test_envoy_differential.py draws it)."""
    named = [(f"exchange {i}", req, resp, None) for i, (req, resp) in enumerate(exchanges)]
    return _through_envoy(plan, named, wasm, binary, target)


_Exchange = tuple[str, Sequence[Header], Sequence[Header], TestCase | None]


def _through_envoy(
    plan: Plan,
    exchanges: Sequence[_Exchange],
    wasm: Path,
    binary: EnvoyBinary,
    target: Target,
    bootstrap: Callable[[dict[str, Any]], None] | None = None,
) -> list[CaseResult]:
    upstream = ScriptedUpstream()
    around = EnvoySurroundings(server_header_transformation=server_header(plan) or "OVERWRITE")
    clocks = clocked(plan.config)  # the same for every exchange: read the rules once
    results: list[CaseResult] = []
    try:
        process = plugin_process(binary, wasm, plan, ("127.0.0.1", upstream.port))
        if bootstrap is not None:
            bootstrap(process.bootstrap)
        with process, ProxyWasmHost(wasm.read_bytes(), plugin_config=plan.config_json.encode(),
                                    target=target, plugin_name=plan.name) as host:  # fmt: skip
            try:
                process.start()
            except PluginStartFailed as exc:
                started = host.start()
                why = [
                    f"{exc.message} (the embedded host {'started it' if started else 'refused it too'})"
                ]
                return [CaseResult("plugin start", why, runner=binary.name)]
            if not host.start():
                reason = (host.logs("critical") or ["no log"])[-1]
                refused = f"started in Envoy, not in the embedded host: {reason}"
                return [CaseResult("plugin start", [refused], runner=binary.name)]
            for name, request, response, case in exchanges:
                results.append(_one(name, process.listener_port, upstream, host, around,
                                    request, response, case, binary.name, clocks))  # fmt: skip
    finally:
        upstream.close()
    return results


def _one(
    name: str,
    port: int,
    upstream: ScriptedUpstream,
    host: ProxyWasmHost,
    around: EnvoySurroundings,
    request: Sequence[Header],
    response: Sequence[Header],
    case: TestCase | None,
    runner: str,
    clocked: dict[str, frozenset[str]] | None = None,
) -> CaseResult:
    sent = list(response)
    if not any(k == "content-length" for k, _ in sent):
        sent.append(("content-length", "0"))  # what the scripted upstream adds
    start = time.time()
    wire = exchange(port, upstream, request, response)
    clock = Clocked(clocked or {}, Window(start, time.time()))
    sim = host.exchange(request, sent, envoy=around)
    failures = compare(wire, sim, clock)
    if case is not None:
        failures += [f"in Envoy: {f}" for f in check_case(case, observed_wire(wire))]
    return CaseResult(name, failures, declared=case is not None, runner=runner)
