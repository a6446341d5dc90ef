"""`wasmgen export SPEC --python`: a black-formatted DSL script that regenerates the same files,
written by the emitter `wasmgen init --python` uses too."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import black
import pytest

import wasmgen
from tests.helpers import EXAMPLES, ROOT, run_cli, snapshot
from wasmgen.spec.emit import python_script
from wasmgen.spec.starter import python_starter, yaml_starter

EVERY_FIELD = """\
name: every-field
namespace: edge
selector:
  app.kubernetes.io/name: web
  tier: front
image: ${WASMGEN_EXPORT_REGISTRY:-registry.example.com}/wasm/every:v2
imagePullPolicy: Always
imagePullSecret: pull-secret
phase: AUTHN
priority: -5
failStrategy: FAIL_OPEN
onInvalidConfig: passThrough
templates: tpl
presets: {secureHeaders: true, stripServerHeaders: true}
request:
  - respond:
      status: 204
      headers: {x-local: "yes"}
      copyFromRequest: {origin: x-echo}
    when:
      method: [OPTIONS]
      headers: [{name: origin, present: true}]
  - respond: {status: 403, body: "no\\n"}
    when: {path: {regex: "^/admin"}, host: {suffix: .example.com}}
  - set: {x-a: "1"}
  - append: {x-b: "2"}
  - addIfAbsent: {x-c: "3"}
  - remove: [x-d, "x-e-*"]
  - rename: {x-f: x-g}
    when: {headers: [{name: x-h, equals: "1"}, {name: x-i, matches: "^a"}, {name: x-j, absent: true}]}
response:
  - copyFromRequest: {x-request-id: x-request-id}
    when: {status: [404, "5xx", "200-299"], path: {exact: /x}}
  - cookieFlags: {secure: false, httpOnly: true, sameSite: Strict, cookies: [session, csrf]}
  - rewrite: {location: {regex: "^http://(?P<rest>.*)$", with: "https://${rest}$$"}}
  - dedupe: {vary: unique}
  - set: {x-q: "1"}
    when:
      query: [{name: a%20b, equals: "x=y"}, {name: q, absent: true}]
      cookie: [{name: Sess, matches: "^v"}, {name: beta, present: true}]
  - set: {x-internal: "1"}
    when:
      source: ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]
      not: {source: ["10.9.0.0/16"]}
  - remove: [x-internal]
    when:
      not: {cookie: [{name: staff, equals: "1"}], any: [{method: [GET]}, {path: {prefix: /x}}]}
      any: [{host: {exact: a.example}}, {not: {headers: [{name: x-k, present: true}]}}]
tests:
  - name: "quotes ' and \\" and a backslash \\\\ survive"
    request: {method: POST, path: /p, host: h.example.com, headers: {origin: o}}
    response: {status: 503, headers: {x-k: v}}
    expect:
      requestHeaders: {x-a: "1", x-d: null}
      responseHeaders: {x-request-id: null}
  - name: local
    expect: {localResponse: 403}
"""

GATEWAY_CORS = """\
name: gw-cors
targetRefs:
  - name: edge
  - {kind: Service, group: "", name: api}
image: registry.example.com/gw:v1
variant: cors
options:
  allowOrigins: ["*"]
  exposeHeaders: [x-a]
response:
  - set: {x-after-cors: "1"}
"""


def _export(spec: Path, script: Path) -> str:
    result = run_cli("export", spec, "--python", "-o", script)
    assert result.code == 0, result.stderr
    return script.read_text()


def _run_script(script: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_exported_script_regenerates_the_same_tree(tmp_path: Path, example: Path) -> None:
    """python SCRIPT DIR writes byte for byte what `wasmgen generate SPEC -o DIR` writes."""
    text = _export(example, tmp_path / "spec.py")
    assert black.format_str(text, mode=black.Mode(line_length=100)) == text
    result = _run_script(tmp_path / "spec.py", tmp_path / "from-python", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert run_cli("generate", example, "-o", tmp_path / "from-yaml").code == 0
    exported = snapshot(tmp_path / "from-python")
    assert exported and exported == snapshot(tmp_path / "from-yaml")


@pytest.mark.parametrize(("name", "text"), [("every", EVERY_FIELD), ("gateway", GATEWAY_CORS)])
def test_every_spec_field_survives_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    """Every field a spec can hold comes back equal from the script, $VARIABLES as written."""
    (tmp_path / "tpl").mkdir()
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    loaded = wasmgen.load_spec(spec)
    script = _export(spec, tmp_path / f"{name}.py")
    if name == "every":
        assert "${WASMGEN_EXPORT_REGISTRY:-registry.example.com}" in script
        assert '.select({"app.kubernetes.io/name": "web", "tier": "front"})' in script
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the templates folder was exported as an absolute path
    built = runpy.run_path(str(tmp_path / f"{name}.py"), run_name="exported")["spec"]
    assert built == loaded
    assert built.model_dump() == loaded.model_dump()


def test_export_refuses_what_generate_refuses(tmp_path: Path) -> None:
    """A spec with bad variant options is not exported; export needs --python."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(GATEWAY_CORS.replace('["*"]', '["*"]\n  allowCredentials: true'))
    result = run_cli("export", spec, "--python")
    assert result.code == 2 and f"{spec}:9:21: options.allowCredentials" in result.stderr
    plain = run_cli("export", ROOT / "examples" / "seed-lab.yaml")
    assert plain.code == 2 and "--python" in plain.stderr


def test_init_python_uses_the_export_emitter(tmp_path: Path) -> None:
    """`wasmgen init --python` writes what `wasmgen export` writes for the YAML starter."""
    assert run_cli("init", tmp_path / "s.yaml", "--name", "demo").code == 0
    assert run_cli("init", tmp_path / "s.py", "--python", "--name", "demo").code == 0
    exported = _export(tmp_path / "s.yaml", tmp_path / "e.py")
    started = (tmp_path / "s.py").read_text()
    assert started.splitlines()[1:] == exported.splitlines()[1:]  # all but the docstring
    spec = wasmgen.parse_spec(yaml_starter("demo").encode())
    assert python_starter("demo") == python_script(
        spec, "The demo header plugin as a wasmgen spec in Python."
    )
    result = _run_script(tmp_path / "s.py", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "rules.go").is_file()
