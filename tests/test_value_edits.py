"""cookieFlags, removeCookie and dedupe: refused where they cannot work, and what both plugins
do to real header values in the embedded host (Envoy's header maps), against the reference
model."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

import wasmgen
from tests.helpers import ROOT, run_cli
from wasmgen.host import ProxyWasmHost
from wasmgen.pipeline import Built, build
from wasmgen.semantics import model
from wasmgen.semantics.edits import (
    dedupe,
    drop_cookies,
    drop_set_cookie,
    edit_query,
    elements,
    harden,
    rewrite,
)
from wasmgen.semantics.model import Headers
from wasmgen.spec.edits import encode_query_value, go_template

ALL = {"secure": True, "httpOnly": True, "sameSite": "Lax"}


@pytest.mark.parametrize(
    ("line", "flags", "want"),
    [
        ("a=b", ALL, "a=b; Secure; HttpOnly; SameSite=Lax"),
        ("a=b; Path=/", ALL, "a=b; Path=/; Secure; HttpOnly; SameSite=Lax"),
        # Managed attributes are respelled where they stand; duplicates go; others stay as is.
        ("a=b;secure;  samesite=strict; SameSite=None", ALL, "a=b;Secure;  SameSite=Lax; HttpOnly"),
        ("a=b;;Path=/;", ALL, "a=b;Path=/; Secure; HttpOnly; SameSite=Lax"),
        ("a=b; HttpOnly; Secure", {"secure": False, "httpOnly": False}, "a=b"),
        ("a=b; Secure", {"sameSite": "None", "secure": True}, "a=b; Secure; SameSite=None"),
        ("noeq; Path=/", ALL, "noeq; Path=/"),  # no "=": not a cookie (RFC 6265 5.2)
        ("other=1", {**ALL, "cookies": ["session"]}, "other=1"),
        (" session =1", {"secure": True, "cookies": ["session"]}, " session =1; Secure"),
    ],
)
def test_the_reference_model_edits_a_line(line: str, flags: dict[str, object], want: str) -> None:
    assert harden(line, flags) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("_ga=1; session=abc; _gid=2;theme=dark", "session=abc; theme=dark"),
        ("session=abc;theme=dark", "session=abc;theme=dark"),  # nothing removed: as it was
        ("_ga=1", None),  # nothing left: the header goes
        ("_ga=1;; noeq ;x=", "noeq; x="),  # a pair without "=" is kept, empty ones go
        (" _ga =1; _gax=2", "_gax=2"),
    ],
)
def test_the_reference_model_drops_request_cookies(value: str, want: str | None) -> None:
    assert drop_cookies(value, ["_ga", "_gid"]) == want


def test_the_reference_model_drops_set_cookie_lines() -> None:
    assert drop_set_cookie("debug=1; Path=/", ["debug"]) is None
    assert drop_set_cookie("debugger=1", ["debug"]) == "debugger=1"
    assert drop_set_cookie("debug", ["debug"]) == "debug"  # no "=": sets no cookie


def test_the_reference_model_dedupes() -> None:
    assert elements(' a, "b,c" ,, "d\\",e" ') == ["a", '"b,c"', '"d\\",e"']
    values = ["https://a.example, https://b.example", "https://a.example"]
    assert dedupe(values, "first") == "https://a.example"
    assert dedupe(values, "last") == "https://a.example"
    assert dedupe(values, "unique") == "https://a.example, https://b.example"
    assert dedupe(["", " , "], "first") is None


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/p?utm_source=n&id=7&q=a%20b&utm_medium=e", "/p?id=7&q=a%20b&lang=x%20%26%20y"),
        ("/p?lang=de&lang=fr&utm_a#frag", "/p?lang=x%20%26%20y#frag"),  # first in place, rest go
        ("/p?a=1&&b", "/p?a=1&b&lang=x%20%26%20y"),  # rebuilt: empty pieces go
        ("/p#?utm_a=1", "/p?lang=x%20%26%20y#?utm_a=1"),  # a "?" in the fragment is no query
        ("/p", "/p?lang=x%20%26%20y"),
    ],
)
def test_the_reference_model_edits_the_query(path: str, want: str) -> None:
    rule = {"removeQuery": ["utm_*"], "setQuery": {"lang": encode_query_value("x & y")}}
    assert edit_query(path, rule) == want
    assert edit_query("/p?utm_a=1", {"removeQuery": ["utm_*"]}) == "/p"
    assert edit_query("/p?a=1&&b", {"removeQuery": ["utm_*"]}) == "/p?a=1&&b"  # unchanged


@pytest.mark.parametrize(
    ("value", "regex", "template", "want"),
    [
        ("http://a/b", "^http://(.*)$", "https://$1", "https://a/b"),
        ("abc", "x*", "-", "-a-b-c-"),  # empty matches between characters, as Go's ReplaceAll
        ("aaa", "a*", "-", "-"),  # no empty match right after a match
        ("banana", "a", "[$$]", "b[$]n[$]n[$]"),
        ("abab", "(?P<x>a)b", "${x}$1x", "aaxaax"),  # $1x is group 1 then "x"
    ],
)
def test_the_reference_model_rewrites(value: str, regex: str, template: str, want: str) -> None:
    assert rewrite(value, regex, go_template(regex, template)) == want


BAD = """\
name: bad-cookies
image: r.io/p:v1
request:
  - cookieFlags: {secure: true}
response:
  - cookieFlags: {sameSite: lax}
  - cookieFlags: {secure: true, cookies: ["a b"]}
  - cookieFlags: {sameSite: None}
  - cookieFlags: {cookies: [session]}
  - removeCookie: ["bad;name"]
  - dedupe: {set-cookie: first, expires: last, x-a: all}
  - removeQuery: [a&b]
  - rewrite:
      location: {regex: "^http://(.*)$", with: "https://$2"}
      x-a: {regex: "(", with: x}
      x-envoy-upstream-service-time: {regex: "1", with: "2"}
"""


def test_bad_cookie_flags_are_refused_at_their_lines(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    err = result.stderr
    assert "bad.yaml:4:5: request[0].cookieFlags: cookieFlags edits the upstream's Set-Cookie: it belongs in a response rule" in err  # fmt: skip
    assert "bad.yaml:6:29: response[0].cookieFlags.sameSite: must be 'Strict', 'Lax' or 'None'" in err  # fmt: skip
    assert "bad.yaml:7:43: response[1].cookieFlags.cookies[0]: 'a b' is not a cookie name" in err
    assert "bad.yaml:8:5: response[2].cookieFlags: sameSite: None needs secure: true" in err
    assert "bad.yaml:9:5: response[3].cookieFlags: cookieFlags needs at least one of" in err
    assert "bad.yaml:10:20: response[4].removeCookie[0]: 'bad;name' is not a cookie name" in err
    assert "response[5].dedupe.set-cookie: 'set-cookie' cannot be deduplicated" in err
    assert "response[5].dedupe.expires: 'expires' cannot be deduplicated: its value is an HTTP date" in err  # fmt: skip
    assert "response[5].dedupe.x-a: must be 'first', 'last' or 'unique'" in err
    assert "bad.yaml:12:5: response[6].removeQuery: removeQuery edits the request's query string: it belongs in a request rule" in err  # fmt: skip
    assert "response[6].removeQuery[0]: 'a&b' is not a query parameter name" in err
    assert "bad.yaml:14:7: response[7].rewrite.location: 'https://$2' uses $2, but '^http://(.*)$' has 1 group(s)" in err  # fmt: skip
    assert "response[7].rewrite.x-a.regex: invalid RE2 regular expression '('" in err
    assert "response[7].rewrite.x-envoy-upstream-service-time: rewriting x-envoy-upstream-service-time has no use" in err  # fmt: skip
    assert not (tmp_path / "out").exists()


def _built(example: str, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> Built:
    """An example built with the backend the fixture is parametrized with."""
    out = tmp.mktemp(example) / request.param
    spec = wasmgen.load_spec(ROOT / "examples" / f"{example}.yaml")
    return build(spec, out, console=Console(stderr=True, quiet=True), backend=request.param)


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _built("cookie-hardening", request, tmp_path_factory)


LINES = [
    ("set-cookie", "session=1; Path=/"),
    ("x-a", "between"),
    ("set-cookie", "ui-prefs=dark; HttpOnly; secure"),
    ("set-cookie", "garbage"),
    ("set-cookie", "id=2;samesite=none;;Secure; HTTPONLY"),
]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/", "/app/home"])
def test_the_plugins_harden_every_line_in_order(built: Built, path: str) -> None:
    request = [(":authority", "example.com"), (":method", "GET"), (":path", path)]
    response = [(":status", "200"), *LINES]
    want = model.run(built.plan.config, request, response).response
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start(), host.logs()
        got = host.exchange(request, response).response_headers
    cookies = [v for k, v in got or () if k == "set-cookie"]
    assert cookies == [v for k, v in want or () if k == "set-cookie"]
    readable = "ui-prefs=dark; Secure; SameSite=Lax" if path == "/app/home" else None
    assert cookies == [
        "session=1; Path=/; Secure; HttpOnly; SameSite=Lax",
        readable or "ui-prefs=dark; HttpOnly; Secure; SameSite=Lax",
        "garbage",
        "id=2;SameSite=Lax;Secure; HttpOnly",
    ]
    assert ("x-a", "between") in (got or [])


@pytest.mark.slow
def test_lines_already_hardened_are_left_where_they_are(built: Built) -> None:
    """No line changes: nothing is removed and re-added, so the order of headers holds."""
    done = [("set-cookie", "a=1; Secure; HttpOnly; SameSite=Lax"), ("x-b", "1")]
    request = [(":authority", "example.com"), (":method", "GET"), (":path", "/")]
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start()
        got = list(host.exchange(request, [(":status", "200"), *done]).response_headers or ())
    assert [kv for kv in got if kv[0] in ("set-cookie", "x-b")] == done


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _built("tracking-cookies", request, tmp_path_factory)


@pytest.mark.slow
def test_the_plugins_remove_cookies_on_both_sides(tracking: Built) -> None:
    request = [(":authority", "example.com"), (":method", "GET"), (":path", "/"),
               ("cookie", "_ga=1; a=1"), ("x-a", "1"), ("cookie", "_gid=2"), ("cookie", "b=2")]  # fmt: skip
    response = [(":status", "200"), ("set-cookie", "debug-session=1"), ("set-cookie", "s=1"),
                ("set-cookie", "debug-session=2; Path=/")]  # fmt: skip
    want = model.run(tracking.plan.config, request, response)
    with ProxyWasmHost(tracking.wasm.read_bytes(), plugin_config=tracking.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start(), host.logs()
        got = host.exchange(request, response)
    assert sorted(got.request_headers) == sorted(want.request)
    assert [v for k, v in got.request_headers if k == "cookie"] == ["a=1", "b=2"]
    assert [v for k, v in got.response_headers or () if k == "set-cookie"] == ["s=1"]


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def deduping(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _built("cors-dedupe", request, tmp_path_factory)


@pytest.mark.slow
def test_the_plugins_collapse_repeated_values(deduping: Built) -> None:
    """Envoy joins an inline header's repeated lines with ","; the plugin collapses them."""
    request = [(":authority", "example.com"), (":method", "GET"), (":path", "/"),
               ("origin", "https://app.example.com")]  # fmt: skip
    response = [(":status", "200"), ("access-control-allow-origin", "https://app.example.com"),
                ("vary", 'Origin, "a,b"'), ("vary", "Accept-Encoding, origin, Origin")]  # fmt: skip
    want = model.run(deduping.plan.config, request, response)
    with ProxyWasmHost(deduping.wasm.read_bytes(), plugin_config=deduping.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start(), host.logs()
        got = list(host.exchange(request, response).response_headers or ())
    assert sorted(got) == sorted(want.response or [])
    assert [v for k, v in got if k == "access-control-allow-origin"] == ["https://app.example.com"]
    assert [v for k, v in got if k == "vary"] == ['Origin, "a,b", Accept-Encoding, origin']


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def querying(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _built("clean-query", request, tmp_path_factory)


@pytest.fixture(scope="module", params=["compiled", "dynamic"])
def rewriting(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _built("https-location", request, tmp_path_factory)


def _exchange(built: Built, request: Headers, response: Headers) -> tuple[Headers, Headers]:
    """What the plugin leaves, after checking it is what the reference model says."""
    want = model.run(built.plan.config, request, response)
    with ProxyWasmHost(built.wasm.read_bytes(), plugin_config=built.plan.config_json.encode()) as host:  # fmt: skip
        assert host.start(), host.logs()
        got = host.exchange(request, response)
    assert sorted(got.request_headers) == sorted(want.request)
    assert sorted(got.response_headers or ()) == sorted(want.response or ())
    return list(got.request_headers), list(got.response_headers or ())


@pytest.mark.slow
def test_the_plugins_edit_the_query(querying: Built) -> None:
    path = "/docs/a?utm_source=x&v=%2F1&&fbclid=9#top"
    request = [(":authority", "example.com"), (":method", "GET"), (":path", path)]
    sent, _ = _exchange(querying, request, [(":status", "200")])
    assert model.first(sent, ":path") == "/docs/a?v=%2F1&lang=en#top"


@pytest.mark.slow
def test_the_plugins_rewrite_every_value(rewriting: Built) -> None:
    request = [(":authority", "example.com"), (":method", "GET"), (":path", "/")]
    response = [(":status", "302"), ("location", "http://a.example/x"),
                ("content-location", "http://b.example/http://c"), ("content-location", "/rel")]  # fmt: skip
    _, got = _exchange(rewriting, request, response)
    assert [v for k, v in got if k == "location"] == ["https://a.example/x"]
    assert [v for k, v in got if k == "content-location"] == ["https://b.example/http://c", "/rel"]
