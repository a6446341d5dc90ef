"""Query, cookie, not and any: what both compiled plugins do to edge-case traffic, written out.

The differential test compares the plugins with the reference model on random traffic; here the
expected headers are stated by hand from the documented rules (README, "How a query parameter
and a cookie are read"), so a mistake shared by the model and the plugins would still fail.
"""

from __future__ import annotations

import pytest

from tests.helpers import started_plugin
from wasmgen.host import ProxyWasmHost
from wasmgen.plan import make_plan
from wasmgen.semantics import model
from wasmgen.spec import validate

pytestmark = pytest.mark.slow
SPEC = {
    "name": "traffic-conditions",
    "image": "r.io/p:v1",
    "request": [{"set": {"x-req-q": "1"}, "when": {"query": [{"name": "q", "present": True}]}}],
    "response": [
        {"set": {"x-q-present": "1"}, "when": {"query": [{"name": "preview", "present": True}]}},
        {"set": {"x-q-one": "1"}, "when": {"query": [{"name": "preview", "equals": "1"}]}},
        {"set": {"x-c-beta": "1"}, "when": {"cookie": [{"name": "beta", "present": True}]}},
        {"set": {"x-c-on": "1"}, "when": {"cookie": [{"name": "beta", "matches": "^on$"}]}},
        {
            "set": {"x-neither": "1"},
            "when": {
                "not": {
                    "any": [
                        {"query": [{"name": "q", "present": True}]},
                        {"cookie": [{"name": "beta", "present": True}]},
                    ]
                }
            },
        },
    ],
}
MARKERS = ("x-q-present", "x-q-one", "x-c-beta", "x-c-on", "x-neither")
# (path, cookie headers, the markers the response must carry, whether the request got x-req-q)
CASES: list[tuple[str, tuple[str, ...], set[str], bool]] = [
    ("/a?preview=1", (), {"x-q-present", "x-q-one", "x-neither"}, False),
    ("/a?preview", (), {"x-q-present", "x-neither"}, False),  # a bare name: the empty value
    ("/a?p%72eview=1", (), {"x-neither"}, False),  # names are not percent-decoded
    ("/a?x=1&&preview=1#frag", (), {"x-q-present", "x-q-one", "x-neither"}, False),
    ("/a?previewx=1&preview=2&preview=1", (), {"x-q-present", "x-neither"}, False),  # first wins
    ("/a?q=&preview=1", (), {"x-q-present", "x-q-one"}, True),
    ("/a", ("beta=on",), {"x-c-beta", "x-c-on"}, False),
    ("/a", (' beta = "on" ;x=2',), {"x-c-beta", "x-c-on"}, False),  # trimmed, quotes dropped
    ("/a", ("betax=1; beta",), {"x-neither"}, False),  # a pair without "=" is no cookie
    ("/a", ("a=1; beta=",), {"x-c-beta"}, False),  # present, with the empty value
    ("/a", ("a=1", "beta=on"), {"x-neither"}, False),  # only the first Cookie header is read
    ("/a?q", ("beta=off",), {"x-c-beta"}, True),
]


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ProxyWasmHost:
    return started_plugin(SPEC, request, tmp_path_factory, request.param)


@pytest.mark.parametrize(
    ("path", "cookies", "markers", "req_q"), CASES, ids=[f"{p} {c}" for p, c, _, _ in CASES]
)
def test_query_and_cookie_edge_cases(
    host: ProxyWasmHost, path: str, cookies: tuple[str, ...], markers: set[str], req_q: bool
) -> None:
    request = [(":authority", "example.com"), (":method", "GET"), (":path", path),
               (":scheme", "http"), *(("cookie", c) for c in cookies)]  # fmt: skip
    response = [(":status", "200")]
    got = host.exchange(request, response)
    carried = {name for name, _ in got.response_headers or () if name in MARKERS}
    assert carried == markers
    assert (
        ("x-req-q", "1") in got.request_headers
        if req_q
        else "x-req-q" not in dict(got.request_headers)
    )
    want = model.run(make_plan(validate(SPEC)).config, request, response)
    assert {n for n, _ in want.response or () if n in MARKERS} == markers, "the model agrees"
