"""What a deployed plugin should visibly do: the request to send and the headers to expect.

deploy/verify.sh and the generated README check a running deployment with one `curl --head`.
Which URL depends on where the plugin runs (the httpbin sample behind a sidecar, a Gateway's
address, or a workload only the operator can name); the expected headers come from the
reference model, so later remove and rename rules and conditions are honoured.
"""

from __future__ import annotations

from wasmgen.plan import Plan
from wasmgen.records import record
from wasmgen.semantics import model

SAMPLE_URL = "http://httpbin:8000/get"  # the lab's httpbin sample, seen from the sleep pod
SAMPLE_RESPONSE: model.Headers = [(":status", "200"), ("content-type", "application/json")]


@record
class Verification:
    """How to check a deployment: where to send the request and what must come back."""

    where: str  # the workloads or gateway the plugin runs on, in words
    url: str | None  # the default TARGET_URL; None when only the operator knows it
    gateway: str | None  # a Gateway whose status address replaces GATEWAY_ADDRESS in url
    example_url: str  # shown when url is None
    expected: tuple[tuple[str, str], ...]  # response headers the plugin must leave


def verification(plan: Plan) -> Verification:
    """The check for a plan's deployment target (selector or targetRefs)."""
    spec = plan.spec
    ns = spec.namespace
    url: str | None = None
    gateway: str | None = None
    if spec.target_refs:
        ref = spec.target_refs[0]
        where = f"{ref.kind} {ref.name}"
        if ref.kind == "Gateway":
            gateway, url = ref.name, "http://$GATEWAY_ADDRESS/get"
        example = f"http://{ref.name}.{ns}/get"
    else:
        labels = dict(spec.selector or {})
        where = "workloads labelled " + (
            ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(all) in the namespace"
        )
        if labels.get("app") == "httpbin":
            url = SAMPLE_URL
        name = labels.get("app", "my-service")
        example = f"http://{name}.{ns}:8080/"
    host = "httpbin:8000" if url == SAMPLE_URL else "example.com"
    request: model.Headers = [
        (":authority", host),
        (":method", "GET"),
        (":path", "/get"),
        (":scheme", "http"),
    ]
    outcome = model.run(plan.config, request, list(SAMPLE_RESPONSE))
    before = set(SAMPLE_RESPONSE)
    seen: set[str] = set()
    expected: list[tuple[str, str]] = []
    for name, value in outcome.response or []:
        if name.startswith(":") or (name, value) in before or name in seen:
            continue
        seen.add(name)
        expected.append((name, model.first(outcome.response or [], name) or value))
    return Verification(where, url, gateway, example, tuple(expected))
