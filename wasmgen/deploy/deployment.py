"""What one plugin deployment needs (the inputs of every manifest), checked as the CRDs check it."""

from __future__ import annotations

import json
import re
from dataclasses import field
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from wasmgen.errors import Problem, SpecError
from wasmgen.records import record
from wasmgen.spec.names import DNS1123_LABEL, DNS1123_SUBDOMAIN, LABEL_NAME, check_label_key

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


@record
class TargetRef:
    """A Gateway API style reference to the resource a plugin attaches to."""

    group: str
    kind: str
    name: str

    def as_dict(self) -> dict[str, str]:
        """The reference as a manifest object."""
        return {"group": self.group, "kind": self.kind, "name": self.name}


@record
class Match:
    """Traffic selector of a WasmPlugin: direction and destination ports."""

    mode: MatchMode | None = None
    ports: tuple[int, ...] = ()


@record(kw_only=True)
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
    elif url_scheme(d.url) not in _URL_SCHEMES:
        bad("url", f"scheme {url_scheme(d.url)!r} is not one of oci, http, https, file")
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
        json_copy(d.plugin_config)
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


def url_scheme(url: str) -> str:
    """The URL scheme the way Istio reads it ("" for a bare registry/repo:tag)."""
    return urlsplit(url).scheme if "://" in url else ""


def json_copy(obj: Any) -> Any:
    """A deep copy as JSON sees it (tuples become lists); raises on non-JSON values."""
    return json.loads(json.dumps(obj, allow_nan=False))


def resource(api_version: str, kind: str, d: Deployment, spec: Any) -> dict[str, Any]:
    """A namespaced Kubernetes object around spec."""
    meta = {"name": d.name, "namespace": d.namespace}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}
