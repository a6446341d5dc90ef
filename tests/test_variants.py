"""Variants: entry-point discovery, the cors variant's options and rules, broken third-party
variants, respond.copyFromRequest in the spec, and the variant schema."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import re2

import wasmgen
from tests.helpers import GOLDEN, ROOT, run_cli, snapshot
from wasmgen.errors import SpecError
from wasmgen.plan import make_plan
from wasmgen.semantics import model
from wasmgen.variants import Loaded, VariantError, find, installed, registry, resolve
from wasmgen.variants.cors import Cors, CorsOptions, origin_condition

CORS = ROOT / "examples" / "cors.yaml"
BASE = """\
name: web-cors
selector: {app: web}
image: registry.example.com/web-cors:v1
variant: cors
"""


def _cors_spec(tmp_path: Path, options: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "options:\n" + textwrap.indent(textwrap.dedent(options), "  "))
    return spec


def _problems(spec: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        resolve(wasmgen.load_spec(spec))
    return [p.render() for p in info.value.problems]


def _config(**options: Any) -> dict[str, Any]:
    return make_plan(
        wasmgen.Plugin("c").select(app="a").image("r.io/c:v1").variant("cors", **options).build()
    ).config


# --- discovery ---------------------------------------------------------------------------


def test_entry_points_list_the_built_in_variants() -> None:
    """headers and cors come from wasmgen's own entry points, with version and description."""
    from importlib.metadata import entry_points

    registered = {ep.name: ep.value for ep in entry_points(group="wasmgen.variants")}
    assert registered["headers"] == "wasmgen.variants.headers:Headers"
    assert registered["cors"] == "wasmgen.variants.cors:Cors"
    found = {v.info.name: v.info for v in installed() if isinstance(v, Loaded)}
    for name in ("headers", "cors"):
        info = found[name]
        assert (info.package, info.version) == ("wasmgen", wasmgen.__version__)
        assert info.description and "\n" not in info.description
    result = run_cli("variants")
    assert result.code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "PACKAGE", "DESCRIPTION"]
    assert any(r.split()[:3] == ["cors", wasmgen.__version__, "wasmgen"] for r in rows)
    listed = json.loads(run_cli("variants", "--json").stdout)
    assert {"headers", "cors"} <= {v["name"] for v in listed}


def test_headers_stays_the_default() -> None:
    """A spec without variant: is a headers spec and plans exactly as before."""
    spec = wasmgen.load_spec(ROOT / "examples" / "seed-lab.yaml")
    assert spec.variant == "headers" and spec.options == {}
    plan = make_plan(spec)
    assert plan.variant is not None and plan.variant.name == "headers"
    assert plan.spec == spec and plan.spec.templates is None


# --- cors: validation --------------------------------------------------------------------


def test_any_origin_with_credentials_is_refused_where_written(tmp_path: Path) -> None:
    """'*' with credentials: refused at the allowCredentials value, with the CORS reason."""
    spec = _cors_spec(tmp_path, 'allowOrigins: ["*"]\nallowCredentials: true\n')
    [problem] = _problems(spec)
    assert problem.startswith(f"{spec}:7:21: options.allowCredentials: ")
    assert "CORS protocol forbids access-control-allow-origin: *" in problem
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2 and problem in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            "allowOrigins:\n  - https://app.example.com/\n",
            ":7:7: options.allowOrigins[0].exact: 'https://app.example.com/' has a path",
        ),
        (
            "allowOrigins:\n  - HTTPS://App.example.com\n",
            ":7:7: options.allowOrigins[0].exact: 'HTTPS://App.example.com' must be lower-case",
        ),
        (
            "allowOrigins:\n  - regex: '(unclosed'\n",
            ":7:14: options.allowOrigins[0].regex: invalid RE2 regular expression",
        ),
        (
            "allowOrigin: [https://a.example]\n",
            ":6:3: options.allowOrigin: unknown key 'allowOrigin'; did you mean 'allowOrigins'?",
        ),
        (
            "allowOrigins: [https://a.example]\nmaxAge: -1\n",
            ":7:11: options.maxAge: must be greater than or equal to 0",
        ),
        (
            "allowOrigins: ['*', https://a.example]\n",
            ":6:3: options.allowOrigins: '*' allows every origin",
        ),
        (
            "allowOrigins: [https://a.example]\nallowMethods: [get]\n",
            ":7:18: options.allowMethods[0]: 'get' is not an upper-case HTTP method",
        ),
    ],
)
def test_cors_option_errors_point_at_the_yaml(tmp_path: Path, options: str, expected: str) -> None:
    """Option errors are located like the spec's own: file:line:col: key path: reason."""
    spec = _cors_spec(tmp_path, options)
    problems = _problems(spec)
    assert any(p.startswith(str(spec) + expected) for p in problems), problems


def test_missing_options_point_at_the_variant(tmp_path: Path) -> None:
    """A cors spec without options: is told what it needs, at its variant: line."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    assert _problems(spec) == [
        f"{spec}:4:1: options.allowOrigins: the cors variant needs this option, under options:"
    ]


def test_unknown_variant_and_headers_options(tmp_path: Path) -> None:
    """An unknown variant name is located with a did-you-mean; options need a variant."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("variant: cors", "variant: corz"))
    [problem] = _problems(spec)
    assert problem.startswith(f"{spec}:4:1: variant: no variant named 'corz' is installed")
    assert "did you mean 'cors'?" in problem
    result = run_cli("generate", spec, "-o", tmp_path / "out")
    assert result.code == 2 and "corz" in result.stderr
    spec.write_text(BASE.replace("variant: cors\n", "options: {a: 1}\nresponse: [{remove: [x]}]\n"))
    with pytest.raises(SpecError) as info:
        wasmgen.load_spec(spec)
    assert f"{spec}:4:1: options: the headers variant (the default) takes no options" in str(
        info.value.render()
    )


# --- cors: rules -------------------------------------------------------------------------


def test_one_exact_origin_echoes_it() -> None:
    """One exact origin: an equals condition, echoed with copyFromRequest, vary appended."""
    config = _config(allowOrigins=["https://a.example"])
    origin = {"name": "origin", "equals": "https://a.example"}
    assert config["request"] == [
        {
            "respond": {
                "status": 204,
                "body": "",
                "headers": {"access-control-allow-methods": "GET, HEAD, POST", "vary": "origin"},
                "copyFromRequest": {"origin": "access-control-allow-origin"},
            },
            "when": {
                "method": ["OPTIONS"],
                "headers": [origin, {"name": "access-control-request-method", "present": True}],
            },
        }
    ]
    assert config["response"] == [
        {
            "copyFromRequest": {"origin": "access-control-allow-origin"},
            "when": {"headers": [origin]},
        },
        {"append": {"vary": "origin"}, "when": {"headers": [origin]}},
    ]


def test_any_origin_without_credentials_says_star() -> None:
    """'*' without credentials: any origin gets '*', nothing is echoed, nothing varies."""
    config = _config(allowOrigins=["*"], exposeHeaders=["x-trace"], maxAge=60)
    origin = {"name": "origin", "present": True}
    reply = config["request"][0]["respond"]
    assert reply["headers"] == {
        "access-control-allow-methods": "GET, HEAD, POST",
        "access-control-allow-origin": "*",
        "access-control-max-age": "60",
    }
    assert "copyFromRequest" not in reply
    assert config["response"] == [
        {
            "set": {"access-control-allow-origin": "*", "access-control-expose-headers": "x-trace"},
            "when": {"headers": [origin]},
        }
    ]


def test_exact_and_regex_origins_match_whole_origins_only() -> None:
    """Exact origins are escaped, regexes anchored: lookalikes never match."""
    options = CorsOptions.model_validate(
        {"allowOrigins": ["https://a.example", {"regex": "^https://[a-z]+\\.b\\.example$"}]}
    )
    condition = origin_condition(options)
    assert condition == {
        "name": "origin",
        "matches": "^(?:https://a\\.example|https://[a-z]+\\.b\\.example)$",
    }
    pattern = re2.compile(condition["matches"])
    for origin in ("https://a.example", "https://x.b.example"):
        assert pattern.search(origin), origin
    for origin in (
        "https://a.example.evil",
        "https://aXexample",
        "http://a.example",
        "https://x.b.example.evil",
    ):
        assert not pattern.search(origin), origin


def test_cors_rules_in_the_reference_model() -> None:
    """The example's rules: a preflight is answered locally with the origin echoed; a simple
    request's response is marked; a foreign origin gets nothing."""
    config = make_plan(wasmgen.load_spec(CORS)).config
    preflight = [
        (":method", "OPTIONS"),
        (":path", "/api/orders"),
        ("origin", "https://eu.shop.example"),
        ("access-control-request-method", "PUT"),
    ]
    outcome = model.run(config, preflight, [(":status", "200")])
    assert outcome.local_status == 204
    local = dict(outcome.local_headers or [])
    assert local["access-control-allow-origin"] == "https://eu.shop.example"
    assert local["access-control-allow-credentials"] == "true"
    simple = [(":method", "GET"), (":path", "/"), ("origin", "https://app.example.com")]
    outcome = model.run(config, simple, [(":status", "200"), ("vary", "accept-encoding")])
    response = dict(outcome.response or [])
    assert outcome.local_status is None
    assert response["access-control-allow-origin"] == "https://app.example.com"
    assert response["vary"] == "accept-encoding,origin"
    foreign = [(":method", "GET"), (":path", "/"), ("origin", "https://evil.example")]
    outcome = model.run(config, foreign, [(":status", "200")])
    assert not any(k.startswith("access-control-") for k, _ in outcome.response or [])


def test_generate_the_cors_example(tmp_path: Path) -> None:
    """`wasmgen generate examples/cors.yaml` writes the project; the rules are in pluginConfig."""
    result = run_cli("generate", CORS, "-o", tmp_path)
    assert result.code == 0, result.stderr
    plugin = (tmp_path / "deploy" / "wasm-plugin.yaml").read_text()
    assert "access-control-allow-methods" in plugin
    assert snapshot(tmp_path) == snapshot(GOLDEN / "cors")


def test_dsl_variant_equals_yaml() -> None:
    """Plugin(...).variant("cors", ...) builds the spec the YAML does."""
    loaded = wasmgen.load_spec(CORS)
    built = (
        wasmgen.Plugin("api-cors", namespace="shop")
        .select(app="orders")
        .image("registry.example.com/platform/api-cors:v1")
        .variant("cors", dict(loaded.options))
        .build()
    )
    assert built.model_copy(update={"tests": loaded.tests}) == loaded
    assert make_plan(built).config == make_plan(loaded).config
    assert isinstance(Cors().rules(CorsOptions.model_validate(loaded.options)).data(), tuple)


# --- respond.copyFromRequest ---------------------------------------------------------------


def test_respond_copy_from_request_in_the_spec() -> None:
    """respond.copyFromRequest: validated header names, one pair per target; the DSL spells it."""
    rule = wasmgen.respond(204, copy_from_request={"origin": "access-control-allow-origin"})
    spec = wasmgen.Plugin("x").select(app="a").image("r.io/x:v1").request(rule).build()
    assert spec.request[0].as_config()["respond"]["copyFromRequest"] == {
        "origin": "access-control-allow-origin"
    }
    twice = wasmgen.respond(204, copy_from_request={"a": "x-t", "b": "x-t"})
    upper = wasmgen.respond(204, copy_from_request={"C": "x-u"})
    with pytest.raises(SpecError) as info:
        wasmgen.Plugin("x").select(app="a").image("r.io/x:v1").request(twice, upper).build()
    text = info.value.render()
    assert "request[0].respond.copyFromRequest: 'x-t' is the target of more than one pair" in text
    assert "request[1].respond.copyFromRequest.C" in text and "lower-case" in text


# --- the variant schema --------------------------------------------------------------------


def test_variant_schema(tmp_path: Path) -> None:
    """`wasmgen schema --variant cors` is the spec schema with typed options; schemas/ has it."""
    import jsonschema
    import yaml

    result = run_cli("schema", "--variant", "cors")
    assert result.code == 0, result.stderr
    committed = (ROOT / "schemas" / "wasmgen-spec.cors.schema.json").read_text()
    assert result.stdout == committed, "stale: wasmgen schema --variant cors -o schemas/..."
    schema = json.loads(result.stdout)
    assert schema["properties"]["variant"]["const"] == "cors"
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(CORS.read_text())))
    wrong = yaml.safe_load(CORS.read_text())
    wrong["options"]["maxAge"] = "ten"
    assert list(validator.iter_errors(wrong))
    unknown = run_cli("schema", "--variant", "nope")
    assert unknown.code == 2 and "no variant named 'nope'" in unknown.stderr


# --- broken third-party variants -------------------------------------------------------------

BROKEN = {
    "import": ("broken_import:Broken", "import no_such_module_anywhere\n"),
    "model": (
        "broken_model:Broken",
        "from wasmgen.variants import Variant\n\nclass Broken(Variant):\n    options_model = int\n",
    ),
    "rules": (
        "broken_rules:Broken",
        "from wasmgen.variants import NoOptions, Variant\n\n"
        "class Broken(Variant[NoOptions]):\n    options_model = NoOptions\n\n"
        "    def rules(self, options):\n        raise RuntimeError('kaboom')\n",
    ),
    "template": (
        "broken_template:Broken",
        "from pathlib import Path\nfrom wasmgen.variants import NoOptions, Rules, Variant\n\n"
        "class Broken(Variant[NoOptions]):\n    options_model = NoOptions\n"
        "    templates = Path(__file__).parent / 'broken_templates'\n\n"
        "    def rules(self, options):\n"
        "        return Rules(response=[{'set': {'x-broken': '1'}}])\n",
    ),
}


def _install_broken(site: Path) -> None:
    """One fake installed distribution per broken variant: dist-info with an entry point."""
    for kind, (target, source) in BROKEN.items():
        module = target.split(":")[0]
        (site / f"{module}.py").write_text(source)
        info = site / f"broken_{kind}_pkg-0.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: broken-{kind}-pkg\nVersion: 0.3\n"
        )
        (info / "entry_points.txt").write_text(f"[wasmgen.variants]\nbroken-{kind} = {target}\n")
    templates = site / "broken_templates" / "common"
    templates.mkdir(parents=True)
    (templates / "README.md.jinja").write_text("# {{ plan.name }}\n\n{{ no_such_value }}\n")


@pytest.fixture
def broken_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Broken variants on sys.path (in this process) and PYTHONPATH (for the CLI)."""
    site = tmp_path / "site"
    site.mkdir()
    _install_broken(site)
    monkeypatch.syspath_prepend(str(site))
    registry.clear_cache()
    yield {"PYTHONPATH": f"{ROOT}:{site}"}
    registry.clear_cache()


def _spec_of(tmp_path: Path, variant: str) -> Path:
    spec = tmp_path / f"{variant}.yaml"
    spec.write_text(BASE.replace("variant: cors", f"variant: {variant}"))
    return spec


def test_broken_variants_are_listed_and_flagged(broken_site: dict[str, str]) -> None:
    """`wasmgen variants` lists every variant, flags the broken ones with package and reason,
    and exits 2; the built-in ones still load."""
    by_name = {(v.info if isinstance(v, Loaded) else v).name: v for v in installed()}
    assert isinstance(by_name["cors"], Loaded) and isinstance(by_name["headers"], Loaded)
    result = run_cli("variants", env=broken_site)
    assert result.code == 2
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert {"cors", "headers", "broken-import", "broken-model", "broken-rules"} <= set(rows)
    assert (
        "broken-import-pkg" in rows["broken-import"]
        and "BROKEN: cannot be imported" in rows["broken-import"]
    )
    assert "No module named 'no_such_module_anywhere'" in rows["broken-import"]
    assert "options model is not a pydantic model" in rows["broken-model"]
    assert "BROKEN" not in rows["cors"] + rows["broken-rules"]
    assert (
        "error: variant 'broken-import' (package broken-import-pkg 0.3) is broken" in result.stderr
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("import", "is broken: cannot be imported (broken_import:Broken): ModuleNotFoundError"),
        ("model", "is broken: its options model is not a pydantic model"),
        ("rules", "failed turning its options into rules: RuntimeError: kaboom"),
    ],
)
def test_a_broken_variant_fails_alone(
    tmp_path: Path, broken_site: dict[str, str], kind: str, reason: str
) -> None:
    """Using a broken variant: exit 2 naming it, its package and the reason; a headers spec
    and the cors example still generate next to it."""
    with pytest.raises(VariantError) as info:
        find(f"broken-{kind}") if kind != "rules" else resolve(
            wasmgen.load_spec(_spec_of(tmp_path, f"broken-{kind}"))
        )
    assert f"variant 'broken-{kind}' (package broken-{kind}-pkg 0.3)" in info.value.message
    assert reason in info.value.message
    result = run_cli(
        "generate", _spec_of(tmp_path, f"broken-{kind}"), "-o", tmp_path / "bad", env=broken_site
    )
    assert result.code == 2 and "Traceback" not in result.stderr
    assert f"variant 'broken-{kind}' (package broken-{kind}-pkg 0.3)" in result.stderr
    assert reason in result.stderr and not (tmp_path / "bad").exists()
    for spec in (ROOT / "examples" / "seed-lab.yaml", CORS):
        ok = run_cli("generate", spec, "-o", tmp_path / spec.stem, env=broken_site)
        assert ok.code == 0, ok.stderr


def _template_fallback() -> bool:
    """Whether the renderer falls back to the built-in templates for files a variant lacks."""
    from wasmgen.backends.templating import environment

    loader = environment(ROOT).loader
    return len(getattr(loader, "searchpath", [])) > 1


def test_a_variant_template_error_names_the_variant(
    tmp_path: Path, broken_site: dict[str, str]
) -> None:
    """A variant's broken template: exit 2 with the variant, its package and the template."""
    if not _template_fallback():
        pytest.skip(
            "needs the renderer's fallback to the built-in templates: in "
            "wasmgen/backends/templating.py environment(), FileSystemLoader([str(variant_dir), "
            'str(generators_root() / "headers")])'
        )
    result = run_cli(
        "generate", _spec_of(tmp_path, "broken-template"), "-o", tmp_path / "out", env=broken_site
    )
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "variant 'broken-template' (package broken-template-pkg 0.3)" in result.stderr
    assert "README.md.jinja" in result.stderr and "no_such_value" in result.stderr
