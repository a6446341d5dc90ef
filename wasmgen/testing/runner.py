"""`wasmgen test`: run a spec's cases and derived scenarios through the compiled plugin in the embedded host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from wasmgen.host import HttpResult, ProxyWasmHost
from wasmgen.plan import Plan
from wasmgen.records import record
from wasmgen.semantics import Scenario, model, test_case_headers
from wasmgen.spec.expected import ValueMatch, holds, shown
from wasmgen.spec.models import TestCase
from wasmgen.wasm.compat import Target

Header = tuple[str, str]


@record(frozen=False)
class CaseResult:
    """One case's outcome and, when it failed, why."""

    name: str
    failures: list[str] = field(default_factory=list)
    declared: bool = True  # a case from the spec, not one wasmgen derived
    runner: str = "embedded host"  # or the Envoy release it ran in, e.g. "Envoy 1.36.4"

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


def _first(headers: Sequence[Header] | None, name: str) -> str | None:
    return next((v for k, v in headers or () if k == name), None)


def exchange(host: ProxyWasmHost, req: Sequence[Header], resp: Sequence[Header]) -> HttpResult:
    """Send exactly these request and upstream response headers through the plugin."""
    return host.exchange(req, resp)


@record
class Observed:
    """What a case can be checked against, from any host: the embedded one or real Envoy."""

    local_status: int | None  # a local reply answered the request
    request: Sequence[Header] | None  # the request headers as they left the plugin
    response: Sequence[Header] | None  # the response headers the client got (a local reply's too)


def observed(result: HttpResult) -> Observed:
    """What the embedded host saw leave the plugin."""
    local, client = result.local_response, result.client
    if local is None and client is not None and client.local:  # Envoy answered by itself
        return Observed(client.status, result.request_headers or None, client.headers)
    response = result.response_headers
    if local is not None:
        response = client.headers if client is not None else local.headers
    return Observed(local.status if local else None, result.request_headers, response)


def check_case(case: TestCase, result: HttpResult | Observed) -> list[str]:
    """Compare a result with a spec case's expectations."""
    seen = result if isinstance(result, Observed) else observed(result)
    failures: list[str] = []
    expect = case.expect
    if expect.local_response is not None:
        if seen.local_status is None:
            failures.append(
                f"expected a local response {expect.local_response}, the request was forwarded"
            )
        elif seen.local_status != expect.local_response:
            failures.append(
                f"local response status {seen.local_status}, expected {expect.local_response}"
            )
    elif seen.local_status is not None:
        failures.append(f"unexpected local response {seen.local_status}")
    for where, wanted, got in (
        ("request", expect.request_headers, None if seen.local_status else seen.request),
        ("response", expect.response_headers, seen.response),
    ):
        if wanted and got is None:
            failures.append(f"no {where} to check: the request was answered locally")
            continue
        for name, value in (wanted or {}).items():
            actual = _first(got, name.lower())
            if holds(value, actual):
                continue
            if value is None:
                failures.append(f"{where} header {name} should be absent, is {actual!r}")
            else:
                seen_as = "absent" if actual is None else repr(actual)
                wanted_as = ("a match of " if isinstance(value, ValueMatch) else "") + shown(value)
                failures.append(f"{where} header {name}: expected {wanted_as}, got {seen_as}")
    return failures


def _sorted(headers: Sequence[Header] | None) -> list[Header]:
    return sorted(headers or (), key=lambda kv: kv[0])


def check_scenario(
    config: dict[str, object], req: list[Header], resp: list[Header], result: HttpResult
) -> list[str]:
    """Compare a result with the rule model's Envoy semantics (every header, not just some)."""
    want = model.run(config, req, resp)
    failures: list[str] = []
    if want.local_status is not None:
        got = result.local_response.status if result.local_response else None
        if got != want.local_status:
            failures.append(f"local response {got}, the rules give {want.local_status}")
        return failures
    if _sorted(result.request_headers) != _sorted(want.request):
        failures.append(
            f"request headers {_sorted(result.request_headers)} != {_sorted(want.request)}"
        )
    if _sorted(result.response_headers) != _sorted(want.response):
        failures.append(
            f"response headers {_sorted(result.response_headers)} != {_sorted(want.response)}"
        )
    return failures


def run(plan: Plan, scenarios: Sequence[Scenario], wasm: bytes, target: Target) -> list[CaseResult]:
    """Run every derived scenario and declared case; the host is shared, like one Envoy worker."""
    with ProxyWasmHost(wasm, plugin_config=plan.config_json.encode(), target=target,
                       plugin_name=plan.name) as host:  # fmt: skip
        if not host.start():
            reason = host.logs("critical") or host.logs()
            return [
                CaseResult(
                    "plugin start", [f"the plugin refused to start: {reason[-1:] or 'no log'}"]
                )
            ]
        results: list[CaseResult] = []
        for scenario in scenarios:
            if scenario.name.startswith("test: "):
                continue
            res = exchange(host, scenario.request, scenario.response)
            failures = check_scenario(
                plan.config, list(scenario.request), list(scenario.response), res
            )
            results.append(CaseResult(scenario.name, failures, declared=False))
        for case in plan.spec.tests:
            req, resp = test_case_headers(case)
            res = exchange(host, req, resp)
            results.append(CaseResult(case.name, check_case(case, res)))
        return results
