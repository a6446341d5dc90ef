"""The compiled backend's generated Go: deterministic, gofmt-clean, marked, readable, lowered.

Also the synthetic specs the slow compiled tests build, covering every operation and condition.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import wasmgen
from tests.helpers import EXAMPLES
from wasmgen.backends.compiled.goident import unique_idents
from wasmgen.backends.compiled.lowering import lower_regex, status_ranges, status_test
from wasmgen.backends.templating import GENERATED_MARK
from wasmgen.plan import Plan, make_plan
from wasmgen.semantics import model
from wasmgen.spec import parse_spec
from wasmgen.spec.models import Spec
from wasmgen.spec.names import compile_regex

HEAD = "image: registry.example.com/wasmgen/{name}:v1\nname: {name}\n"
# Every operation and condition kind, on both sides, with literal and real regexes.
EVERY_OP = """
request:
  - respond: {status: 403, body: "denied\\n", headers: {content-type: text/plain, x-reason: path},
              copyFromRequest: {x-request-id: x-request-id, user-agent: x-echo-agent}}
    when: {path: {regex: "^/items/[0-9]+$"}, method: [DELETE]}
  - respond: {status: 204, copyFromRequest: {origin: access-control-allow-origin}}
    when: {method: [OPTIONS], headers: [{name: origin, matches: "^https://(?:a|b)\\\\.example$"}]}
  - set: {x-route: exact}
    when: {path: {exact: /exact}, host: {exact: api.example.com}}
  - append: {x-forwarded-for: 10.0.0.1, x-list: one}
    when: {path: {prefix: /api/}, host: {prefix: api.}}
  - addIfAbsent: {x-one: "1"}
    when: {path: {suffix: .json}, host: {suffix: .example.com}}
  - addIfAbsent: {x-two-a: a, x-two-b: b}
    when: {path: {regex: "\\\\.json$"}, host: {regex: "^api\\\\."}}
  - addIfAbsent: {x-three-a: a, x-three-b: b, x-three-c: c}
    when: {headers: [{name: authorization, matches: "^Bearer "}, {name: x-debug, absent: true}]}
  - remove: [x-secret, x-internal-token]
    when: {headers: [{name: x-trace, present: true}, {name: x-mode, equals: strip}]}
  - remove: [x-drop, "x-tmp-*", "x-scratch-*"]
    when: {host: {regex: "^(?:www|api)\\\\.example\\\\.com$"}}
  - rename: {x-old-accept: accept, x-legacy: x-modern}
    when: {headers: [{name: x-ver, matches: "^[0-9]{2}$"}], method: [GET, HEAD, POST]}
  - set: {x-tag: request}
    when: {path: {regex: "(?:beta|canary)"}}
response:
  - copyFromRequest: {x-request-id: x-request-id}
  - copyFromRequest: {user-agent: x-agent, x-tenant: x-tenant}
    when: {path: {prefix: /api/}, status: [200-299]}
  - set: {x-tag: response, cache-control: no-store}
    when: {status: ["5xx", "429", "400-404", 405, 406-410]}
  - append: {vary: origin, x-list: resp}
    when: {method: [GET], headers: [{name: origin, present: true}]}
  - addIfAbsent: {x-content-type-options: nosniff}
    when: {host: {suffix: example.com}, headers: [{name: x-ver, matches: "^[0-9]{2}$"}]}
  - rename: {x-upstream-id: x-request-id-upstream}
  - remove: ["x-envoy-*", x-powered-by]
    when: {status: ["5xx"]}
  - remove: [x-debug-info]
    when: {headers: [{name: x-debug, absent: true}], status: [2xx, 3xx]}
"""
# Header names whose Go identifiers collide, and a name with values in several rules.
IDENTS = """
onInvalidConfig: passThrough
request:
  - set: {x-a: "1", x_a: "2", x.a: "3", x-a2: "4", "x!a": "5", 1x: "6", "~": "7", "x+y": "8"}
  - append: {x-a: again}
    when: {headers: [{name: "x!a", equals: "5"}]}
response:
  - set: {x-a: response, x_a: response}
    when: {headers: [{name: x_a, present: true}]}
"""
# A local reply and response rules: the response rules must leave the reply alone.
GUARD_AND_TAG = """
request:
  - respond: {status: 403, body: "no\\n", headers: {content-type: text/plain}}
    when: {path: {prefix: /admin}, method: [GET, POST]}
response:
  - set: {x-tag: tagged}
  - set: {content-type: application/problem+json}
    when: {status: [403]}
"""
# A spec without values (empty configuration), passThrough, and a reply that always fires.
NO_VALUES = """
onInvalidConfig: passThrough
presets: {stripServerHeaders: true}
request:
  - remove: [x-debug]
  - respond: {status: 503, body: "maintenance\\n"}
  - remove: [x-never]
"""
SPECS = {
    "every-op": EVERY_OP,
    "idents": IDENTS,
    "guard-and-tag": GUARD_AND_TAG,
    "no-values": NO_VALUES,
}


def synthetic(name: str) -> Spec:
    """A synthetic spec by name."""
    return parse_spec((HEAD.format(name=name) + SPECS[name]).encode(), f"{name}.yaml")


def all_specs() -> dict[str, Spec]:
    """The examples and the synthetic specs, by name."""
    specs = {e.stem: wasmgen.load_spec(e) for e in EXAMPLES}
    return {**specs, **{n: synthetic(n) for n in SPECS}}


def compiled(spec: Spec) -> Plan:
    """spec's plan for the compiled backend."""
    return make_plan(spec, backend="compiled")


@pytest.mark.parametrize("name", sorted(all_specs()))
def test_generated_go_is_deterministic_marked_and_gofmt_clean(name: str, tmp_path: Path) -> None:
    """Same spec, same bytes; every .go file says it is generated; gofmt has nothing to change."""
    spec = all_specs()[name]
    files = wasmgen.render_files(spec, backend="compiled")
    assert files == wasmgen.render_files(spec, backend="compiled")
    go_files = [p for p in files if p.endswith(".go")]
    assert {"rules.go", "abi.go", "sdktest/wasm_test.go", "scenarios_test.go"} <= set(go_files)
    for path in go_files:
        assert files[path].startswith(f"// {GENERATED_MARK}\n".encode()), path
    assert b"require" not in files["go.mod"] and "go.sum" not in files
    assert b"proxy-wasm-go-sdk" in files["sdktest/go.mod"] and files["sdktest/go.sum"]
    gofmt = shutil.which("gofmt")
    if gofmt is None:
        pytest.skip("gofmt not installed")
    for path in go_files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(files[path])
    out = subprocess.run([gofmt, "-l", "."], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


def test_rules_read_like_the_spec() -> None:
    """A comment per rule, names as constants, the cheapest tests, no regexp when lowerable."""
    files = wasmgen.render_files(
        wasmgen.load_spec(EXAMPLES[0].parent / "api-errors.yaml"), backend="compiled"
    )
    rules = files["rules.go"].decode()
    assert "// response[1]: set cache-control when path prefix /api/ and status 5xx or 429" in rules
    assert 'hXRequestID   = "x-request-id"' in rules
    assert "(status == 429 || status >= 500 && status <= 599)" in rules
    assert 'hasPrefix(path, "/api/v1/")' in rules and "regexp" not in rules
    assert "func init()" not in "".join(v.decode() for k, v in files.items() if k.endswith(".go"))
    cors = wasmgen.render_files(
        wasmgen.load_spec(EXAMPLES[0].parent / "cors.yaml"), backend="compiled"
    )["rules.go"].decode()
    assert 'import "regexp"' in cors and "regexp.Compile(" in cors
    assert cors.index("regexp.Compile(") > cors.index("func prepareRules")


def test_lab_config_is_the_seed_labs() -> None:
    """The seed lab's own pluginConfig is what the manifests carry and what the plugin reads."""
    plan = compiled(wasmgen.load_spec(EXAMPLES[0].parent / "seed-lab.yaml"))
    assert plan.plugin_config == {"header_1": "first_header", "header_2": "second_header"}
    rules = wasmgen.render_files(plan.spec, backend="compiled")["rules.go"].decode()
    assert (
        'const exampleConfig = `{"header_1": "first_header", "header_2": "second_header"}`' in rules
    )


def test_header_identifiers_are_valid_and_unique() -> None:
    """x-a, x_a, x.a, x!a all camel-case to XA: each gets its own identifier, deterministically."""
    names = ["x-a", "x_a", "x.a", "x-a2", "x!a", "1x", "~", "x+y", "x-request-id", "header"]
    idents = unique_idents("h", names)
    assert len(set(idents.values())) == len(names)
    assert idents["x-a"] == "hXA" and idents["x-request-id"] == "hXRequestID"
    assert all(i.isidentifier() and i.isascii() for i in idents.values())
    assert idents == unique_idents("h", names)
    rules = wasmgen.render_files(synthetic("idents"), backend="compiled")["rules.go"].decode()
    assert '"request[0].x-a"' in rules and '"response[0].x_a"' in rules  # qualified keys


PATTERNS = [
    "^/api/v1/", "\\.json$", "^/exact$", "beta", "^(?:a|b)\\.example$", "^(www|api)\\.x$",
    "a|^b|c$", "", "^", "^/a\\+b\\?$", "(?:x|y)", "^/items/[0-9]+$", "(?i)^/a", "\\d", "a{2}",
    "^(a)(b)$", "^(?P<n>a)$", "a\\", "\\Qa\\E", "a.b", "^a$|^b$", "\\/x\\-y",
]  # fmt: skip
SAMPLES = ["", "a", "b", "c", "ab", "/api/v1/x", "/api/v2", "x.json", "/exact", "/exact/",
           "beta", "xbetay", "a.example", "b.example", "c.example", "www.x", "api.x", "/a+b?",
           "x", "y", "/items/12", "A", "1", "aa", "a.b", "axb", "/x-y", "\\/x"]  # fmt: skip


@pytest.mark.parametrize("pattern", PATTERNS)
def test_lowered_regexes_match_exactly_what_re2_matches(pattern: str) -> None:
    """A regex lowered to string tests selects exactly what an RE2 search selects."""
    lowered = lower_regex(pattern)
    try:
        regex = compile_regex(pattern)
    except ValueError:
        return  # not valid RE2 at all: the spec refuses it before lowering
    if lowered is None:
        return  # kept as a regex
    tests: dict[str, Callable[[str, str], bool]] = {
        "exact": lambda s, lit: s == lit,
        "prefix": lambda s, lit: s.startswith(lit),
        "suffix": lambda s, lit: s.endswith(lit),
        "contains": lambda s, lit: lit in s,
    }
    rng = random.Random(pattern)
    samples = SAMPLES + [lit + s for _, lit in lowered for s in ("", "z", "/")]
    samples += [
        "".join(rng.choice("ab./xjson") for _ in range(rng.randint(0, 6))) for _ in range(200)
    ]
    for s in samples:
        want = regex.search(s) is not None
        assert any(tests[k](s, lit) for k, lit in lowered) == want, (pattern, s, lowered)


def test_what_is_lowered() -> None:
    """Literal patterns become string tests; classes, flags and escapes stay regexes."""
    assert lower_regex("^/api/v1/") == (("prefix", "/api/v1/"),)
    assert lower_regex("\\.json$") == (("suffix", ".json"),)
    assert lower_regex("^(?:a|b)$") == (("exact", "a"), ("exact", "b"))
    for kept in ("^/items/[0-9]+$", "(?i)^/a", "\\d", "a.b", "a{2}", "\\Qa\\E"):
        assert lower_regex(kept) is None, kept


def test_status_sets_merge_into_ranges() -> None:
    """Classes, codes and ranges merge; adjacent ranges join."""
    assert status_ranges(["5xx", "429", "400-404", "405", "406-410"]) == [(400, 410), (429, 429), (500, 599)]  # fmt: skip
    assert status_test(["200"]) == "status == 200"
    for code in range(100, 600):
        spec = ["2xx", "404", "500-503"]
        expr = status_test(spec).replace("||", " or ").replace("&&", " and ")
        assert eval(expr, {"status": code}) == any(model.status_in(s, code) for s in spec)
