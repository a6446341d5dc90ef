"""source: what both plugins do with the client's address, written out by hand.

The address is the property source.address; the embedded host gives it as Envoy 1.36 and 1.40
do with their default settings (docs/envoy-behaviour.md): the last x-forwarded-for entry with
port 0 when it is an IP, else 127.0.0.1 (the loopback connection). The expected markers are
stated from those rules and from the blocks' arithmetic, so a mistake shared by the reference
model and the hand-rolled Go parser (cidr.go) would still fail here.
"""

from __future__ import annotations

import pytest

from tests.helpers import started_plugin
from wasmgen.host import ProxyWasmHost
from wasmgen.plan import make_plan
from wasmgen.semantics import model
from wasmgen.spec import validate

pytestmark = pytest.mark.slow
BLOCKS = {
    "x-ten": ["10.0.0.0/8"],
    "x-odd-prefix": ["172.16.0.0/12"],  # a prefix that ends inside a byte
    "x-bare": ["192.0.2.7"],  # one address: all 32 bits
    "x-v6": ["2001:db8::/32"],
    "x-v6-host": ["2001:db8::1:0:0:1/128"],
    "x-mapped": ["::ffff:0:0/96"],  # IPv4-mapped IPv6: IPv4 clients are not in it
    "x-all-v4": ["0.0.0.0/0"],  # every IPv4 address and no IPv6 one
    "x-loopback": ["127.0.0.1"],
}
SPEC = {
    "name": "traffic-source",
    "image": "r.io/p:v1",
    "request": [{"set": {"x-req-ten": "1"}, "when": {"source": ["10.0.0.0/8"]}}],
    "response": [
        *({"set": {name: "1"}, "when": {"source": blocks}} for name, blocks in BLOCKS.items()),
        {"set": {"x-not-ten": "1"}, "when": {"not": {"source": ["10.0.0.0/8"]}}},
    ],
}
MARKERS = (*BLOCKS, "x-not-ten")
# (x-forwarded-for headers the client sends, the markers the response must carry)
CASES: list[tuple[tuple[str, ...], set[str]]] = [
    ((), {"x-all-v4", "x-loopback", "x-not-ten"}),
    (("10.255.255.255",), {"x-ten", "x-all-v4"}),
    (("11.0.0.0",), {"x-all-v4", "x-not-ten"}),
    (("172.31.255.255",), {"x-odd-prefix", "x-all-v4", "x-not-ten"}),
    (("172.32.0.0",), {"x-all-v4", "x-not-ten"}),
    (("192.0.2.7",), {"x-bare", "x-all-v4", "x-not-ten"}),
    (("192.0.2.8",), {"x-all-v4", "x-not-ten"}),
    (("10.1.2.3, 192.0.2.7",), {"x-bare", "x-all-v4", "x-not-ten"}),  # the last entry counts
    (("192.0.2.7,10.1.2.3",), {"x-ten", "x-all-v4"}),
    (("2001:db8:ffff::1",), {"x-v6", "x-not-ten"}),
    (("2001:DB8:0:0:1::1",), {"x-v6", "x-v6-host", "x-not-ten"}),  # upper case, long form
    (("2001:db9::",), {"x-not-ten"}),
    (("::ffff:10.1.2.3",), {"x-mapped", "x-not-ten"}),  # IPv6, though it names an IPv4
    (("unknown",), {"x-all-v4", "x-loopback", "x-not-ten"}),  # not an IP: the connection
    (("10.1.2.3:8080",), {"x-all-v4", "x-loopback", "x-not-ten"}),  # with a port: not an IP
    (("010.1.2.3",), {"x-all-v4", "x-loopback", "x-not-ten"}),  # leading zero: not an IP
]


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ProxyWasmHost:
    return started_plugin(SPEC, request, tmp_path_factory, request.param)


@pytest.mark.parametrize(("xff", "markers"), CASES, ids=[" | ".join(x) or "-" for x, _ in CASES])
def test_source_edge_cases(host: ProxyWasmHost, xff: tuple[str, ...], markers: set[str]) -> None:
    request = [(":authority", "example.com"), (":method", "GET"), (":path", "/"),
               (":scheme", "http"), *(("x-forwarded-for", x) for x in xff)]  # fmt: skip
    response = [(":status", "200")]
    got = host.exchange(request, response)
    carried = {name for name, _ in got.response_headers or () if name in MARKERS}
    assert carried == markers
    assert (("x-req-ten", "1") in got.request_headers) == ("x-ten" in markers)
    want = model.run(make_plan(validate(SPEC)).config, request, response)
    assert {n for n, _ in want.response or () if n in MARKERS} == markers, "the model agrees"
