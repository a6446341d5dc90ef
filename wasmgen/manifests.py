"""Deployment manifests for a built plugin, built as data and serialized deterministically."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver

from wasmgen.errors import Problem, SpecError, WasmgenError
from wasmgen.names import DNS1123_LABEL, DNS1123_SUBDOMAIN, LABEL_NAME, TOKEN, check_label_key

ImagePullPolicy = Literal["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]
Phase = Literal["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]
FailStrategy = Literal["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]
PluginType = Literal["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]
MatchMode = Literal["UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"]

ISTIO_API_VERSION: Final = "extensions.istio.io/v1alpha1"
ENVOY_GATEWAY_API_VERSION: Final = "gateway.envoyproxy.io/v1alpha1"
WASM_FILTER_TYPE: Final = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE_TYPE: Final = "type.googleapis.com/google.protobuf.StringValue"
ROUTER_TYPE: Final = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HCM_TYPE: Final = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)

_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_URL_SCHEMES = ("", "oci", "http", "https", "file")
_OWS = " \t"  # optional whitespace around an HTTP field value


@dataclass(frozen=True)
class TargetRef:
    """A Gateway API style reference to the resource a plugin attaches to."""

    group: str
    kind: str
    name: str

    def as_dict(self) -> dict[str, str]:
        """The reference as a manifest object."""
        return {"group": self.group, "kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class Match:
    """Traffic selector of a WasmPlugin: direction and destination ports."""

    mode: MatchMode | None = None
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Everything needed to deploy one plugin; checked on construction (raises SpecError)."""

    name: str
    url: str  # e.g. "oci://registry/repo:v1"; Envoy Gateway gets it without "oci://"
    namespace: str = "default"
    selector: dict[str, str] | None = None
    target_refs: tuple[TargetRef, ...] = ()
    sha256: str | None = None  # OCI manifest digest (hex, no "sha256:" prefix)
    image_pull_policy: ImagePullPolicy | None = None
    image_pull_secret: str | None = None
    plugin_config: dict[str, Any] = field(default_factory=dict)
    plugin_name: str | None = None  # Envoy root_id
    phase: Phase | None = None
    priority: int | None = None
    fail_strategy: FailStrategy | None = None
    vm_env: tuple[tuple[str, str | None], ...] = ()  # value None: take it from the host
    match: tuple[Match, ...] = ()
    type: PluginType = "HTTP"  # Istio's default; written only when not HTTP

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise SpecError(problems)


def _check(d: Deployment) -> list[Problem]:
    """Every reason the deployment would be rejected by the WasmPlugin CRD (and a few more)."""
    out: list[Problem] = []

    def bad(loc: str, message: str) -> None:
        out.append(Problem(loc=f"deployment.{loc}", message=message))

    if len(d.name) > 253 or not DNS1123_SUBDOMAIN.match(d.name):
        bad("name", f"{d.name!r} is not a DNS-1123 subdomain (lower case, digits, '-', '.')")
    if len(d.namespace) > 63 or not DNS1123_LABEL.match(d.namespace):
        bad("namespace", f"{d.namespace!r} is not a DNS-1123 label")
    if d.selector is not None and d.target_refs:
        bad("selector", "set either selector or target_refs, not both (WasmPlugin CEL rule)")
    for key, label in (d.selector or {}).items():
        if not _is_label_key(key):
            bad(f"selector[{key!r}]", "not a valid label key (and '*' wildcards are not allowed)")
        if len(label) > 63 or (label and not LABEL_NAME.match(label)):
            bad(f"selector[{key!r}]", f"{label!r} is not a valid label value (no '*')")
    if len(d.target_refs) > 16:
        bad("target_refs", f"at most 16 allowed, got {len(d.target_refs)}")
    for i, ref in enumerate(d.target_refs):
        if ref.group and (len(ref.group) > 253 or not DNS1123_SUBDOMAIN.match(ref.group)):
            bad(f"target_refs[{i}].group", f"{ref.group!r} is not an API group")
        if len(ref.kind) > 63 or not _KIND.match(ref.kind):
            bad(f"target_refs[{i}].kind", f"{ref.kind!r} is not a kind")
        if not 1 <= len(ref.name) <= 253:
            bad(f"target_refs[{i}].name", "must be 1 to 253 characters")
    if not d.url:
        bad("url", "must not be empty")
    elif _scheme(d.url) not in _URL_SCHEMES:
        bad("url", f"scheme {_scheme(d.url)!r} is not one of oci, http, https, file")
    if d.sha256 is not None and not _SHA256.match(d.sha256):
        bad("sha256", "must be 64 lower-case hex digits with no 'sha256:' prefix")
    _check_enum(bad, "image_pull_policy", d.image_pull_policy, ImagePullPolicy)
    _check_enum(bad, "phase", d.phase, Phase)
    _check_enum(bad, "fail_strategy", d.fail_strategy, FailStrategy)
    _check_enum(bad, "type", d.type, PluginType)
    if d.image_pull_secret is not None and not 1 <= len(d.image_pull_secret) <= 253:
        bad("image_pull_secret", "must be 1 to 253 characters")
    if d.plugin_name is not None and not 1 <= len(d.plugin_name) <= 256:
        bad("plugin_name", "must be 1 to 256 characters")
    if d.priority is not None and not -(2**31) <= d.priority < 2**31:
        bad("priority", "must be a 32-bit integer")
    names = [name for name, _ in d.vm_env]
    for i, (name, value) in enumerate(d.vm_env):
        if not 1 <= len(name) <= 256 or names.count(name) > 1:
            bad(f"vm_env[{i}]", f"name {name!r} must be 1 to 256 characters and unique")
        if value is not None and len(value) > 2048:
            bad(f"vm_env[{i}]", "value longer than 2048 characters")
    for i, m in enumerate(d.match):
        _check_enum(bad, f"match[{i}].mode", m.mode, MatchMode)
        if any(not 1 <= p <= 65535 for p in m.ports) or len(set(m.ports)) != len(m.ports):
            bad(f"match[{i}].ports", "ports must be unique and between 1 and 65535")
    try:
        _json_copy(d.plugin_config)
    except (TypeError, ValueError) as exc:
        bad("plugin_config", f"not JSON-serializable: {exc}")
    return out


def _check_enum(bad: Any, loc: str, value: str | None, allowed: Any) -> None:
    """Report a value outside a Literal type's choices."""
    if value is not None and value not in get_args(allowed):
        bad(loc, f"{value!r} is not one of {', '.join(get_args(allowed))}")


def _is_label_key(key: str) -> bool:
    """Kubernetes qualified name: optional DNS prefix and a 1-63 character name."""
    try:
        check_label_key(key)
    except ValueError:
        return False
    return True


def _scheme(url: str) -> str:
    """The URL scheme the way Istio reads it ("" for a bare registry/repo:tag)."""
    return urlsplit(url).scheme if "://" in url else ""


def _json_copy(obj: Any) -> Any:
    """A deep copy as JSON sees it (tuples become lists); raises on non-JSON values."""
    return json.loads(json.dumps(obj, allow_nan=False))


def _resource(api_version: str, kind: str, d: Deployment, spec: Any) -> dict[str, Any]:
    meta = {"name": d.name, "namespace": d.namespace}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}


def wasm_plugin(d: Deployment) -> dict[str, Any]:
    """An Istio WasmPlugin (extensions.istio.io/v1alpha1); unset fields are left out."""
    spec: dict[str, Any] = {}
    if d.selector is not None:
        spec["selector"] = {"matchLabels": dict(d.selector)}
    if d.target_refs:
        spec["targetRefs"] = [ref.as_dict() for ref in d.target_refs]
    spec["url"] = d.url
    optional: list[tuple[str, Any]] = [
        ("sha256", d.sha256),
        ("imagePullPolicy", d.image_pull_policy),
        ("imagePullSecret", d.image_pull_secret),
        ("phase", d.phase),
        ("priority", d.priority),
        ("failStrategy", d.fail_strategy),
        ("pluginConfig", _json_copy(d.plugin_config) if d.plugin_config else None),
        ("pluginName", d.plugin_name),
        ("type", None if d.type == "HTTP" else d.type),
    ]
    spec.update((k, v) for k, v in optional if v is not None)
    if d.vm_env:
        spec["vmConfig"] = {"env": [_env_var(name, value) for name, value in d.vm_env]}
    if d.match:
        spec["match"] = [_match(m) for m in d.match]
    return _resource(ISTIO_API_VERSION, "WasmPlugin", d, spec)


def _env_var(name: str, value: str | None) -> dict[str, str]:
    if value is None:
        return {"name": name, "valueFrom": "HOST"}
    return {"name": name, "value": value}


def _match(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.mode is not None:
        out["mode"] = m.mode
    if m.ports:
        out["ports"] = [{"number": p} for p in m.ports]
    return out


def envoy_extension_policy(d: Deployment) -> dict[str, Any]:
    """An Envoy Gateway EnvoyExtensionPolicy running the same plugin on the targetRefs."""
    if not d.target_refs:
        raise WasmgenError(
            f"EnvoyExtensionPolicy {d.name!r} needs target_refs",
            hint="Envoy Gateway attaches policies to a Gateway or HTTPRoute, not to pods; set "
            "target_refs=(TargetRef('gateway.networking.k8s.io', 'Gateway', 'eg'),)",
        )
    if d.type == "NETWORK":
        raise WasmgenError("EnvoyExtensionPolicy runs HTTP plugins only", hint="use type HTTP")
    if any(value is not None for _, value in d.vm_env):
        raise WasmgenError(
            "EnvoyExtensionPolicy cannot set inline VM environment values",
            hint="pass them in plugin_config, or use value None to read them from the host",
        )
    code: dict[str, Any]
    scheme = _scheme(d.url)
    if scheme in ("", "oci"):
        image: dict[str, Any] = {"url": d.url.removeprefix("oci://")}
        if d.sha256:
            image["sha256"] = d.sha256
        if d.image_pull_secret:
            image["pullSecretRef"] = {"kind": "Secret", "name": d.image_pull_secret}
        code = {"type": "Image", "image": image}
    elif scheme in ("http", "https"):
        http: dict[str, Any] = {"url": d.url}
        if d.sha256:
            http["sha256"] = d.sha256
        code = {"type": "HTTP", "http": http}
    else:
        raise WasmgenError(
            f"Envoy Gateway cannot load {d.url!r}", hint="push the plugin to a registry (oci://)"
        )
    if d.image_pull_policy in ("IfNotPresent", "Always"):
        code["pullPolicy"] = d.image_pull_policy
    wasm: dict[str, Any] = {"name": d.plugin_name or d.name}
    if d.plugin_name:
        wasm["rootID"] = d.plugin_name
    wasm["code"] = code
    if d.plugin_config:
        wasm["config"] = _json_copy(d.plugin_config)
    if d.fail_strategy is not None:
        wasm["failOpen"] = d.fail_strategy == "FAIL_OPEN"  # FAIL_RELOAD falls back to closed
    host_keys = [name for name, value in d.vm_env if value is None]
    if host_keys:
        wasm["env"] = {"hostKeys": host_keys}
    spec = {"targetRefs": [ref.as_dict() for ref in d.target_refs], "wasm": [wasm]}
    return _resource(ENVOY_GATEWAY_API_VERSION, "EnvoyExtensionPolicy", d, spec)


def envoy_bootstrap(
    d: Deployment,
    wasm_path: str,
    listen_port: int = 10000,
    upstream_host: str = "127.0.0.1",
    upstream_port: int = 8000,
    *,
    listen_address: str = "0.0.0.0",
    admin_port: int | None = None,
) -> dict[str, Any]:
    """A standalone envoy.yaml: one listener, the wasm filter before the router, one upstream."""
    if d.type == "NETWORK":
        raise WasmgenError("the standalone bootstrap runs HTTP plugins only")
    vm_config: dict[str, Any] = {
        "vm_id": d.plugin_name or d.name,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": str(wasm_path)}},
    }
    inline = {name: value for name, value in d.vm_env if value is not None}
    host_keys = [name for name, value in d.vm_env if value is None]
    if inline or host_keys:
        env: dict[str, Any] = {}
        if host_keys:
            env["host_env_keys"] = host_keys
        if inline:
            env["key_values"] = inline
        vm_config["environment_variables"] = env
    config: dict[str, Any] = {"name": d.name}
    if d.plugin_name:
        config["root_id"] = d.plugin_name
    config["configuration"] = {"@type": STRING_VALUE_TYPE, "value": plugin_config_json(d)}
    config["vm_config"] = vm_config
    if d.fail_strategy == "FAIL_OPEN":
        config["fail_open"] = True
    http_filters = [
        {
            "name": "envoy.filters.http.wasm",
            "typed_config": {"@type": WASM_FILTER_TYPE, "config": config},
        },
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "ingress_http",
        "codec_type": "AUTO",
        "route_config": {
            "name": "local_route",
            "virtual_hosts": [
                {
                    "name": "upstream",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                }
            ],
        },
        "http_filters": http_filters,
    }
    listener = {
        "name": "listener_0",
        "address": _socket(listen_address, listen_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm},
                ]
            }
        ],
    }
    cluster = {
        "name": "upstream",
        "type": "STRICT_DNS" if _is_hostname(upstream_host) else "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket(upstream_host, upstream_port)}},
                    ]
                }
            ],
        },
    }
    out: dict[str, Any] = {"static_resources": {"listeners": [listener], "clusters": [cluster]}}
    if admin_port is not None:
        out["admin"] = {"address": _socket("127.0.0.1", admin_port)}
    return out


def plugin_config_json(d: Deployment) -> str:
    """The plugin configuration as the compact JSON string Envoy hands to the plugin."""
    return json.dumps(d.plugin_config, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _is_hostname(host: str) -> bool:
    """True unless host is an IP literal (which a STATIC cluster needs)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def sample_workloads(namespace: str | None = None) -> list[dict[str, Any]]:
    """The lab's httpbin and Istio's sleep client: ServiceAccount, Service, Deployment each."""
    httpbin_pod = {
        "serviceAccountName": "httpbin",
        "containers": [
            {
                "image": "docker.io/kennethreitz/httpbin",
                "imagePullPolicy": "IfNotPresent",
                "name": "httpbin",
                "ports": [{"containerPort": 80}],
            }
        ],
    }
    sleep_pod = {
        "terminationGracePeriodSeconds": 0,
        "serviceAccountName": "sleep",
        "containers": [
            {
                "name": "sleep",
                "image": "curlimages/curl:8.16.0",
                "command": ["/bin/sleep", "infinity"],
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/etc/sleep/tls", "name": "secret-volume"}],
            }
        ],
        "volumes": [
            {
                "name": "secret-volume",
                "secret": {"secretName": "sleep-secret", "optional": True},
            }
        ],
    }
    docs = [
        *_app(
            "httpbin",
            [{"name": "http", "port": 8000, "targetPort": 80}],
            {"app": "httpbin", "version": "v1"},
            httpbin_pod,
        ),
        *_app("sleep", [{"port": 80, "name": "http"}], {"app": "sleep"}, sleep_pod),
    ]
    if namespace is not None:
        for doc in docs:
            doc["metadata"]["namespace"] = namespace
    return docs


def _app(
    name: str, ports: list[dict[str, Any]], labels: dict[str, str], pod: dict[str, Any]
) -> list[dict[str, Any]]:
    """ServiceAccount, Service and Deployment of one sample app."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name, "service": name}},
            "spec": {"ports": ports, "selector": {"app": name}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
            },
        },
    ]


_VERIFY_BODY = r"""
failed=0
passed=0
check() {
  if got=$(printf '%s\n' "$HEADERS" | tr -d '\r' | WANT_NAME="$1" WANT_VALUE="$2" awk '
    BEGIN { found = 1 }
    index($0, ":") > 1 {
      name = tolower(substr($0, 1, index($0, ":") - 1))
      if (name == tolower(ENVIRON["WANT_NAME"])) {
        value = substr($0, index($0, ":") + 1)
        sub(/^[ \t]+/, "", value); sub(/[ \t]+$/, "", value)
        seen = seen (seen == "" ? "" : ", ") "\"" value "\""
        if (value == ENVIRON["WANT_VALUE"]) found = 0
      }
    }
    END { print seen; exit found }'); then
    printf 'PASS %s: %s\n' "$1" "$2"
    passed=$((passed + 1))
  else
    printf 'FAIL %s: want "%s", got %s\n' "$1" "$2" "${got:-<missing>}"
    failed=$((failed + 1))
  fi
}
"""


def verify_script(
    d: Deployment,
    expected_headers: Sequence[tuple[str, str]],
    *,
    client_label: str = "app=sleep",
    target: str = "httpbin:8000/get",
) -> str:
    """A POSIX sh script that curls the target from the client pod and checks each header."""
    for name, value in expected_headers:
        if not TOKEN.match(name):
            raise WasmgenError(f"{name!r} is not an HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise WasmgenError(f"header {name!r}: the value has a line break or NUL")
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# shellcheck disable=SC2016  # expected header values are literal strings",
        f"# Checks that WasmPlugin {d.name} adds its response headers (generated by wasmgen).",
        "# Usage: sh verify.sh   (NAMESPACE overrides the namespace; needs kubectl)",
        "set -u",
        f"NAMESPACE=${{NAMESPACE:-{d.namespace}}}",
        f'SLEEP_POD=$(kubectl get pod -n "$NAMESPACE" -l {q(client_label)} '
        "-o jsonpath='{.items[0].metadata.name}') || exit 2",
        'if [ -z "$SLEEP_POD" ]; then',
        f"  printf 'no pod labelled %s in namespace %s\\n' {q(client_label)} \"$NAMESPACE\" >&2",
        "  exit 2",
        "fi",
        f'HEADERS=$(kubectl exec -n "$NAMESPACE" "$SLEEP_POD" -- curl -s --head {q(target)})'
        " || exit 2",
        _VERIFY_BODY.strip("\n"),
        *(f"check {q(name)} {q(value.strip(_OWS))}" for name, value in expected_headers),
        'printf \'%s passed, %s failed\\n\' "$passed" "$failed"',
        '[ "$failed" -eq 0 ]',
    ]
    return "\n".join(lines) + "\n"


def _ambiguous(text: str) -> bool:
    """True when a plain scalar would not load back as this string in YAML 1.1, 1.2 or go-yaml."""
    if _NUMBERISH.match(text):
        return True
    for resolver in _RESOLVERS:
        tag = resolver.resolve(ScalarNode, text, (True, False))
        if tag != "tag:yaml.org,2002:str":
            return True
    return False


_RESOLVERS: Final = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
# go-yaml v2 (sigs.k8s.io/yaml, kubectl) reads anything float-shaped as a number, e.g. "08".
_NUMBERISH: Final = re.compile(r"^[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")


class _Representer(RoundTripRepresenter):
    """Block style, insertion order, explicit null, and strings quoted only when needed."""

    def represent_str(self, data: str) -> ScalarNode:
        if any(c in data for c in "\r\x85\u2028\u2029"):
            style: str | None = '"'  # readers normalize these breaks inside other styles
        elif "\n" in data:
            style = "|"
        else:
            style = "'" if _ambiguous(data) else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    def represent_none(self, data: Any) -> ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(type(None), _Representer.represent_none)


def dump_yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    """Deterministic multi-document YAML that loads back to the same data in any YAML reader."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Representer = _Representer
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 2**31 - 1
    yaml.allow_unicode = True
    stream = io.StringIO()
    yaml.dump_all([_json_copy(doc) for doc in docs], stream)
    return stream.getvalue()


def dump_json(obj: Any) -> str:
    """Deterministic, indented JSON with a trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
