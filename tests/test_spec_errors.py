"""Broken specs: exit 2, file:line:col: key: message for every problem, no traceback, nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_cli

GOOD = """\
name: demo
selector: {app: httpbin}
image: registry.example.com/demo:v1
response:
  - set: {x-a: "1"}
"""

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "name: *i\n"
)

CASES: list[tuple[str, bytes, list[str]]] = [
    (
        "invalid yaml",
        b"name: demo\nselector: {app: httpbin\nimage: x\n",
        [r":\d+:\d+: invalid YAML"],
    ),
    ("tab indentation", b"name: demo\n\tselector: x\n", [r":2:1: invalid YAML"]),
    ("empty", b"", [r":1:1: the spec is empty"]),
    ("only a comment", b"# nothing\n", [r":1:1: the spec is empty"]),
    ("a list", b"- name: demo\n", [r":1:1: the spec must be a mapping of keys, got a list"]),
    ("a scalar", b"hello\n", [r":1:1: the spec must be a mapping of keys, got a str"]),
    ("two documents", GOOD.encode() + b"---\n" + GOOD.encode(), [r"expected one YAML document"]),
    ("duplicate key", GOOD.encode() + b"name: again\n", [r":6:1: invalid YAML.*duplicate key"]),
    (
        "unknown key with hint",
        GOOD.replace("response:", "respons:").encode(),
        [r":4:1: respons: unknown key 'respons'; did you mean 'response'\?"],
    ),
    (
        "unknown op with hint",
        GOOD.replace("- set:", "- sett:").encode(),
        [r":5:5: response\[0\]\.sett: unknown key 'sett'; did you mean 'set'\?"],
    ),
    (
        "wrong type",
        GOOD.encode() + b"priority: high\n",
        [r":6:11: priority: must be a valid integer"],
    ),
    (
        "rules not a list",
        GOOD.replace('response:\n  - set: {x-a: "1"}', "response: {set: {x-a: '1'}}").encode(),
        [r":4:1: response: must be a valid list \(got mapping\)"],
    ),
    (
        "missing image",
        GOOD.replace("image: registry.example.com/demo:v1\n", "").encode(),
        [r": image: missing required key"],
    ),
    (
        "bad kubernetes name",
        GOOD.replace("name: demo", "name: Demo_Plugin").encode(),
        [r":1:7: name: 'Demo_Plugin' is not a valid Kubernetes name"],
    ),
    (
        "wildcard label",
        GOOD.replace("{app: httpbin}", "{'app*': httpbin}").encode(),
        [r":2:\d+: selector.app\*: label key 'app\*' is invalid"],
    ),
    (
        "upper-case header",
        GOOD.replace("x-a", "X-A").encode(),
        [r":5:\d+: response\[0\]\.set\.X-A: header name 'X-A' must be lower-case"],
    ),
    (
        "header injection",
        GOOD.replace('"1"', '"a\\r\\nset-cookie: x"').encode(),
        [r":5:\d+: response\[0\]\.set\.x-a: value contains control character 0x0d"],
    ),
    (
        "pseudo header",
        GOOD.replace('set: {x-a: "1"}', "remove: [':path']").encode(),
        [r"response\[0\]\.remove\[0\]: ':path' is a pseudo-header"],
    ),
    (
        "hop-by-hop header",
        GOOD.replace("x-a", "transfer-encoding").encode(),
        [r"'transfer-encoding' cannot be changed: hop-by-hop header"],
    ),
    (
        "content-length",
        GOOD.replace("x-a", "content-length").encode(),
        [r"'content-length' cannot be changed"],
    ),
    (
        "invalid regex",
        GOOD.encode() + b"    when: {path: {regex: '(?<=/api)x'}}\n",
        [r":6:26: response\[0\]\.when\.path\.regex: invalid RE2 regular expression"],
    ),
    (
        "two ops in one rule",
        GOOD.encode() + b"    remove: [x-b]\n",
        [r":5:5: response\[0\]: a rule needs exactly one of .* \(found set, remove\)"],
    ),
    (
        "status on a request rule",
        GOOD.replace("response:", "request:").encode() + b"    when: {status: [5xx]}\n",
        [r":6:12: request\[0\]\.when\.status: the response status is only known to response rules"],
    ),
    (
        "bad status",
        GOOD.encode() + b"    when: {status: [600, '2xy']}\n",
        [
            r"response\[0\]\.when\.status\[0\]: 600 is outside",
            r"response\[0\]\.when\.status\[1\]: '2xy' is not a status",
        ],
    ),
    (
        "selector and targetRefs",
        GOOD.encode() + b"targetRefs: [{name: gw}]\n",
        [r":6:1: targetRefs: set selector or targetRefs, not both"],
    ),
    ("alias bomb", BOMB.encode(), [r":1:1: the document expands to more than 100000 nodes"]),
    (
        "alias text bomb",
        GOOD.replace(
            'set: {x-a: "1"}', "remove: [&a " + "x" * 200 + ", " + ", ".join(["*a"] * 21000) + "]"
        ).encode(),
        [r":1:1: the document expands to more than 4194304 bytes of text"],
    ),
    (
        "nested too deep",
        GOOD.encode() + b"tests: " + b"[" * 250 + b"]" * 250 + b"\n",
        # at the first bracket past the limit, with the limit named
        [r":6:39: the document nests deeper than a spec can \(more than 32 levels\)"],
    ),
    (
        "header name too long",
        GOOD.replace("x-a", "x-" + "a" * 300).encode(),
        [r":5:\d+: response\[0\]\.set\.x-a+: header name is 302 bytes long"],
    ),
    (
        "non-ascii value",
        GOOD.replace('"1"', '"caf\u00e9"').encode(),
        [
            r":5:\d+: response\[0\]\.set\.x-a: value contains the non-ASCII character 'é' \(U\+00E9\)"
        ],
    ),
    (
        "host with a port",
        GOOD.encode() + b"    when: {host: {exact: 'example.com:8080'}}\n",
        [
            r":6:\d+: response\[0\]\.when\.host: .*'example.com:8080' has a port.*write 'example.com'"
        ],
    ),
    (
        "image variable not set",
        GOOD.replace("registry.example.com/demo:v1", "$WASMGEN_TEST_UNSET/demo:v1").encode(),
        [r":3:8: image: \$WASMGEN_TEST_UNSET is not set in the environment"],
    ),
    *[
        (
            f"bad image {image}",
            GOOD.replace("registry.example.com/demo:v1", f"'{image}'").encode(),
            [r":3:8: image: (invalid image reference|.*'\$' must start \$NAME)"],
        )
        for image in ("/", ".", "${}", "reg.io//x", "reg.io/../x", "reg.io/UPPER:v1")
    ],
    ("not utf-8", b"name: demo\nimage: \xff\xfe\n", [r":2:8: not UTF-8: byte 0xff"]),
    (
        "query and cookie names and values outside their grammar, all at once",
        (
            GOOD + "    when:\n"
            '      query: [{name: "a b", present: true}, {name: ok, equals: "x&y"}]\n'
            '      cookie: [{name: "be ta", absent: true}, {name: c, equals: "a;b"}, {name: d}]\n'
        ).encode(),
        [
            r":7:22: response\[0\]\.when\.query\[0\]\.name: 'a b' is not a query parameter name",
            r":7:64: response\[0\]\.when\.query\[1\]\.equals: 'x&y' cannot appear as a query",
            r":8:23: response\[0\]\.when\.cookie\[0\]\.name: 'be ta' is not a cookie name",
            r":8:65: response\[0\]\.when\.cookie\[1\]\.equals: 'a;b' is not a cookie value",
            r":8:73: response\[0\]\.when\.cookie\[2\]: a cookie condition needs exactly one of",
        ],
    ),
    (
        "empty not and any blocks, status nested in them",
        (
            GOOD + "    when:\n      not: {}\n      any: []\n"
            '  - set: {x-a: "1"}\n    when: {any: [{status: ["5xx"]}]}\n'
        ).encode(),
        [
            r":7:7: response\[0\]\.when\.not: an empty block under not: always holds",
            r":8:7: response\[0\]\.when\.any: an empty any: never holds",
            r":10:\d+: response\[1\]\.when\.any: status cannot be inside any:",
        ],
    ),
    (
        "malformed address blocks, all at once",
        (
            GOOD + "    when:\n"
            '      source: ["10.0.0.1/8", "10.0.0.0/33", "2001:db8::/32", "fe80::1%eth0"]\n'
            "      not: {source: []}\n"
        ).encode(),
        [
            r":7:16: response\[0\]\.when\.source\[0\]: '10\.0\.0\.1/8' has bits set past its "
            r"prefix length; the block is 10\.0\.0\.0/8",
            r":7:30: response\[0\]\.when\.source\[1\]: '10\.0\.0\.0/33' is not an IPv4 or IPv6 "
            r'address or address block: write an address block as "10\.0\.0\.0/8"',
            r":7:62: response\[0\]\.when\.source\[3\]: 'fe80::1%eth0' is not an IPv4 or IPv6",
            r":8:13: response\[0\]\.when\.not\.source: list must have at least 1 item",
        ],
    ),
    (
        "empty query list",
        (GOOD + "    when: {query: []}\n").encode(),
        [r":6:12: response\[0\]\.when\.query: list must have at least 1 item"],
    ),
]


@pytest.mark.parametrize(("name", "content", "patterns"), CASES, ids=[c[0] for c in CASES])
def test_broken_spec(tmp_path: Path, name: str, content: bytes, patterns: list[str]) -> None:
    """Each broken spec is reported precisely, with exit code 2 and nothing written."""
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    out = tmp_path / "out"
    result = run_cli("generate", spec, "-o", out)
    assert result.code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for pattern in patterns:
        assert re.search(re.escape(str(spec)) + r".*" + pattern, result.stderr), (
            pattern,
            result.stderr,
        )
    assert not out.exists(), "nothing may be written for a broken spec"


def test_all_problems_at_once(tmp_path: Path) -> None:
    """Several problems are all reported, each on its own located line."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: Bad_Name\nnamespace: -x\nselector: {app: httpbin}\nimage: r/p:v1\n"
        "response:\n  - set: {X-A: '1'}\n  - remove: []\n"
    )
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(str(spec))]
    assert result.code == 2 and len(lines) >= 4, result.stderr
    assert [ln.split(":")[1] for ln in lines] == sorted((ln.split(":")[1] for ln in lines), key=int)


def test_cross_field_problems_come_with_field_problems(tmp_path: Path) -> None:
    """A request rule's status condition is reported together with an unrelated bad name."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: demo\nselector: {app: x}\nimage: r.io/p:v1\n"
        "request:\n  - set: {X-Upper: '1'}\n    when: {status: ['5xx']}\n"
    )
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2
    assert "request[0].set.X-Upper: header name 'X-Upper' must be lower-case" in result.stderr
    assert "request[0].when.status: the response status is only known" in result.stderr


def test_missing_file_and_directory(tmp_path: Path) -> None:
    """A missing file or a directory is a located error, not a traceback."""
    missing = run_cli("generate", tmp_path / "nope.yaml", "-o", tmp_path / "out")
    assert missing.code == 2 and f"{tmp_path / 'nope.yaml'}: no such file" in missing.stderr
    folder = run_cli("generate", tmp_path, "-o", tmp_path / "out")
    assert folder.code == 2 and "is a directory" in folder.stderr
    assert "Traceback" not in missing.stderr + folder.stderr


def test_bad_option_exit_code(tmp_path: Path) -> None:
    """Usage errors exit 2 as well."""
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD)
    result = run_cli("generate", spec, "--toolchain", "rust")
    assert result.code == 2 and "unknown toolchain" in result.stderr


ENVOY_OWNED: list[tuple[str, str, str]] = [
    (
        "request remove of x-forwarded-proto",
        "request:\n  - remove: ['x-forwarded-*']\n",
        r"request\[0\]\.remove\[0\]: 'x-forwarded-\*' removes x-forwarded-proto.*404",
    ),
    (
        "request rename of x-forwarded-proto",
        "request:\n  - rename: {x-forwarded-proto: x-proto}\n",
        r"request\[0\]\.rename\.x-forwarded-proto: renaming x-forwarded-proto.*404",
    ),
    (
        "a body on a 204",
        "request:\n  - respond: {status: 204, body: gone}\n",
        r"request\[0\]\.respond\.body: a 204 response has no body",
    ),
    (
        "removing date",
        "response:\n  - remove: [date]\n",
        r"response\[0\]\.remove\[0\]: Envoy adds `date` to every response",
    ),
    (
        "expecting the router's timing",
        "response:\n  - set: {x-a: '1'}\ntests:\n  - name: t\n    expect:\n"
        "      responseHeaders: {x-envoy-upstream-service-time: '3'}\n",
        r"tests\[0\]\.expect\.responseHeaders\.x-envoy-upstream-service-time: .*cannot be expected",
    ),
    (
        "expecting no date",
        "response:\n  - set: {x-a: '1'}\ntests:\n  - name: t\n    expect:\n"
        "      responseHeaders: {date: null}\n",
        r"tests\[0\]\.expect\.responseHeaders\.date: Envoy adds `date`",
    ),
    (
        "a rename chain",
        "response:\n  - rename: {x-b: x-c, x-a: x-b}\n",
        r"response\[0\]\.rename: 'x-b' is both a source and a target.*key order",
    ),
    (
        "two copies to one header",
        "response:\n  - copyFromRequest: {x-a: x-out, x-b: x-out}\n",
        r"response\[0\]\.copyFromRequest: 'x-out' is the target of more than one pair",
    ),
]


@pytest.mark.parametrize(("name", "rules", "pattern"), ENVOY_OWNED, ids=[c[0] for c in ENVOY_OWNED])
def test_rules_envoy_would_not_honour_are_refused(
    tmp_path: Path, name: str, rules: str, pattern: str
) -> None:
    """What real Envoy would undo, or what would mean different things in different key orders
    (Istio sorts pluginConfig keys), is refused with the reason, at its line."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: demo\nselector: {app: x}\nimage: r.io/p:v1\n" + rules)
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2, result.stderr
    assert re.search(pattern, result.stderr), result.stderr
