"""Starter specs for `wasmgen init`: a commented YAML file, or the same spec in the Python DSL."""

from __future__ import annotations

from wasmgen.spec.emit import python_script
from wasmgen.spec.loader import parse_spec

SCHEMA_FILE = "wasmgen-spec.schema.json"

YAML_STARTER = f"""\
# yaml-language-server: $schema={SCHEMA_FILE}
# A wasmgen spec: header rules for a proxy-wasm plugin. `wasmgen generate THIS -o DIR` writes the
# Go plugin, its tests, a Dockerfile and the Istio WasmPlugin; `wasmgen build` compiles it.

name: "{{name}}"                # WasmPlugin name (a Kubernetes name; quoted so 123 stays text)
namespace: default
selector:                       # Istio workloads to run on (or targetRefs: for gateways)
  app: httpbin
image: registry.example.com/wasm/{{name}}:v1   # where `wasmgen push` puts the image

# failStrategy: FAIL_OPEN       # FAIL_CLOSE (Istio's default), FAIL_OPEN or FAIL_RELOAD
# onInvalidConfig: fail         # or passThrough: what the plugin does when pluginConfig is bad

presets:
  stripServerHeaders: false     # remove server, x-powered-by, ...
  secureHeaders: false          # OWASP secure response headers (kept when the app sets its own)

# Rules run in order. Operations: set, append, addIfAbsent, remove (names or "x-prefix-*"),
# rename, copyFromRequest (response only), respond (request only: a local reply), cookieFlags
# (response only: {{{{secure: true, httpOnly: true, sameSite: Lax}}}} on every Set-Cookie),
# removeCookie, dedupe, rewrite (a regex over a header's values), setQuery and removeQuery
# (request only). Values may take parts of the traffic: "${{{{request.header.x-user}}}}",
# "${{{{request.query.lang}}}}", "${{{{request.cookie.session}}}}", "${{{{request.id}}}}",
# "${{{{source.address}}}}", "${{{{response.status}}}}", "${{{{time.http}}}}" ("$$" is a literal $).
# Conditions under when: path/host {{{{exact|prefix|suffix|regex}}}}, method [..], headers [..],
# query [..], cookie [..], source ["10.0.0.0/8"], status ["404", "5xx", "200-299"] (response
# only); all must hold, and not: {{{{..}}}} / any: [{{{{..}}}}, ..] combine them. The README has
# every operation, condition and value.
request:
  - set:
      x-wasmgen: "on"
response:
  - set:
      x-frame-options: deny
  - remove: [x-envoy-upstream-service-time]
    when:
      status: ["5xx"]
      path: {{{{prefix: /api/}}}}

# Test cases for `wasmgen test` (and the generated Go test). null means "must be absent".
tests:
  - name: adds the frame header
    request: {{{{method: GET, path: /get}}}}
    expect:
      responseHeaders:
        x-frame-options: deny
"""


def yaml_starter(name: str) -> str:
    """The commented YAML starter."""
    return YAML_STARTER.format(name=name)


def python_starter(name: str) -> str:
    """The YAML starter as a Python DSL script, by the emitter `wasmgen export` uses."""
    spec = parse_spec(yaml_starter(name).encode(), "<starter>")
    return python_script(spec, f"The {name} header plugin as a wasmgen spec in Python.")
