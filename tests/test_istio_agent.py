"""istio-agent's image pull (pkg/wasm, through tests/istio) against a real `docker-registry`:
imagePullPolicy, imagePullSecret with an htpasswd registry, and which images it refuses."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wasmgen
from tests import istio_harness
from tests.registry_fixture import LocalRegistry, bcrypt_hash, make_wasm, running_registry
from wasmgen.errors import WasmgenError
from wasmgen.pipeline import render
from wasmgen.plan.pin import Pin
from wasmgen.ship import oci, registry
from wasmgen.ship.extract import extract_plugin

pytestmark = pytest.mark.slow
SPEC = """
name: {name}
namespace: default
selector: {{app: httpbin}}
image: {image}
{extra}
response:
  - set: {{x-a: "1"}}
"""


def spec_for(name: str, image: str, extra: str = "") -> wasmgen.Spec:
    return wasmgen.parse_spec(SPEC.format(name=name, image=image, extra=extra).encode())


def manifest(spec: wasmgen.Spec, digest: str | None) -> str:
    pin = Pin(spec.name, spec.image, digest) if digest else None
    return render(spec, pin=pin).files["deploy/wasm-plugin.yaml"].decode()


def agent_rounds(
    spec: wasmgen.Spec,
    docs: str,
    cache: Path,
    rounds: int = 1,
    between: Any = None,
    kube: str = "",
) -> list[dict[str, Any]]:
    request = {
        "manifests": docs,
        "kubeObjects": kube,
        "cacheDir": str(cache),
        "rounds": [{"resourceVersion": str(i + 1)} for i in range(rounds)],
        **istio_harness.workload(spec),
    }
    return istio_harness.run(request, between)


def local_module(report: dict[str, Any]) -> bytes | None:
    """The module the agent pointed Envoy at, or None when it substituted an RBAC filter."""
    (converted,) = istio_harness.wasm_filter(report)
    code = converted.get("config", {}).get("vmConfig", {}).get("code", {})
    return Path(code["local"]["filename"]).read_bytes() if "local" in code else None


# imagePullPolicy, for a tag the registry moves between two pushes of the WasmPlugin (resource
# versions 1 and 2): which module the workload runs after the second.
PULL_CASES = {
    "IfNotPresent keeps the cached module": ("v1", "imagePullPolicy: IfNotPresent", False, "A"),
    "Always pulls again": ("v1", "imagePullPolicy: Always", False, "B"),
    "unset means IfNotPresent": ("v1", "", False, "A"),
    "unset on :latest means Always": ("latest", "", False, "B"),
    "a pinned digest never re-pulls, even Always": ("v1", "imagePullPolicy: Always", True, "A"),
}


@pytest.mark.parametrize("case", list(PULL_CASES))
def test_image_pull_policy(case: str, oci_registry: LocalRegistry, tmp_path: Path) -> None:
    tag, extra, pinned, expected = PULL_CASES[case]
    name = "pull-" + str(list(PULL_CASES).index(case))
    image = oci_registry.ref(name, tag)
    modules = {"A": make_wasm(b"module A"), "B": make_wasm(b"module B")}
    first = registry.push(oci.build_image(modules["A"]), image)
    spec = spec_for(name, image, extra)
    docs = manifest(spec, first.digest if pinned else None)

    def move_tag(_: int) -> None:
        registry.push(oci.build_image(modules["B"]), image)

    reports = agent_rounds(spec, docs, tmp_path / "cache", 2, move_tag)
    assert [local_module(r) for r in reports] == [modules["A"], modules[expected]]


def dockerconfig_secret(name: str, reg: LocalRegistry) -> str:
    """A kubernetes.io/dockerconfigjson Secret with the registry's login, as `kubectl create
    secret docker-registry` writes it."""
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    config = json.dumps({"auths": {reg.host: {"auth": auth}}})
    data = base64.b64encode(config.encode()).decode()
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\n"
        f"type: kubernetes.io/dockerconfigjson\ndata: {{.dockerconfigjson: {data}}}\n"
    )


@pytest.fixture(scope="module")
def url_realm_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An htpasswd registry whose Basic challenge names a public https URL as its realm: the only
    kind of 401 challenge this Istio's agent accepts from a registry (see below)."""
    workdir, login = tmp_path_factory.mktemp("registry-url-realm"), ("istio-user", "pw-istio")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{login[0]}:{bcrypt_hash(login[1])}\n", encoding="utf-8")
    auth: dict[str, object] = {"htpasswd": {"realm": PUBLIC_REALM, "path": str(htpasswd)}}
    with running_registry(workdir, auth, login) as reg:
        yield reg


PUBLIC_REALM = "https://registry.example.com/"


def _pull_with_secret(
    reg: LocalRegistry, name: str, secret: str, tmp_path: Path
) -> tuple[bytes, dict[str, Any]]:
    module = make_wasm(name.encode())
    image = reg.ref(name)
    pushed = registry.push(
        oci.build_image(module), image, username=reg.username, password=reg.password
    )
    extra = "" if secret == "none" else "imagePullSecret: regcred"
    spec = spec_for(name, image, extra)
    kube = dockerconfig_secret("regcred", reg) if secret == "present" else ""
    (report,) = agent_rounds(spec, manifest(spec, pushed.digest), tmp_path / "cache", kube=kube)
    return module, report


@pytest.mark.parametrize("secret", ["present", "missing", "none"])
def test_image_pull_secret_with_htpasswd_registry(
    secret: str, url_realm_registry: LocalRegistry, tmp_path: Path
) -> None:
    """With the Secret istiod hands the agent the login and it pulls; a Secret that does not
    exist, or none at all, gets no module and (FAIL_CLOSE, the default) deny-all in its place."""
    module, report = _pull_with_secret(url_realm_registry, "secret-" + secret, secret, tmp_path)
    assert "convertError" not in report
    assert local_module(report) == (module if secret == "present" else None), report["log"]
    if secret != "present":
        (fallback,) = istio_harness.wasm_filter(report)
        assert "rules" in fallback  # deny all


def test_agent_refuses_a_basic_realm_that_is_not_a_public_url(
    oci_auth_registry: LocalRegistry, tmp_path: Path
) -> None:
    """This Istio's agent checks every 401 challenge's realm against SSRF (an http(s) URL whose
    host is not loopback, private or link-local) before it uses the pull secret, Basic
    challenges included: distribution's `realm: <name>` registries cannot be pulled from."""
    _, report = _pull_with_secret(oci_auth_registry, "plain-realm", "present", tmp_path)
    assert local_module(report) is None
    assert "rejected unsafe bearer realm" in report["log"], report["log"]


def _gzip_tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    return oci.deterministic_gzip(oci.make_tar(entries))


def _image(layers: list[oci.Blob], media_type: str = oci.OCI_MANIFEST) -> oci.Image:
    """A single-manifest image with the given layers, as another tool might push it."""
    config = oci.Blob.of("application/vnd.oci.image.config.v1+json", b"{}")
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    manifest_bytes = oci.canonical_json(doc)
    digest = oci.sha256_digest(manifest_bytes)
    return oci.Image("oci", media_type, manifest_bytes, digest, config, tuple(layers))


WASM = make_wasm(b"refused or not")
FORMATS: tuple[oci.Format, ...] = ("oci", "docker", "wasm-artifact")
REFUSED = {
    "uncompressed tar layer": [
        oci.Blob.of("application/vnd.oci.image.layer.v1.tar", oci.make_tar([("plugin.wasm", WASM)]))
    ],
    "zstd layer type": [
        oci.Blob.of(
            "application/vnd.oci.image.layer.v1.tar+zstd", _gzip_tar([("plugin.wasm", WASM)])
        )
    ],
    "no plugin.wasm in the layer": [
        oci.Blob.of(oci.OCI_LAYER_GZIP, _gzip_tar([("main.wasm", WASM)]))
    ],
    "plugin.wasm is not wasm": [
        oci.Blob.of(oci.OCI_LAYER_GZIP, _gzip_tar([("plugin.wasm", b"#!/bin/sh\n")]))
    ],
    "gzip layer type holding a plain tar": [
        oci.Blob.of(oci.OCI_LAYER_GZIP, oci.make_tar([("plugin.wasm", WASM)]))
    ],
    "CNCF application/wasm artifact": [oci.Blob.of("application/wasm", WASM)],
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_image_the_agent_refuses_is_one_wasmgen_never_pushes(
    case: str, oci_registry: LocalRegistry, tmp_path: Path
) -> None:
    image = _image(REFUSED[case])
    ref = oci_registry.ref("refused-" + str(list(REFUSED).index(case)))
    pushed = registry.push(image, ref)
    spec = spec_for("refused", ref, "failStrategy: FAIL_OPEN")
    (report,) = agent_rounds(spec, manifest(spec, pushed.digest), tmp_path / "cache")
    assert local_module(report) is None, "Istio's agent took it"
    blobs = {b.digest: b.data for b in image.layers}
    with pytest.raises(WasmgenError):  # wasmgen's reading of the fetcher refuses it too
        extract_plugin(image.manifest, blobs.__getitem__)
    produced = {b.media_type for f in FORMATS for b in oci.build_image(WASM, f).layers}
    refused_types = {b.media_type for b in image.layers}
    # wasmgen never produces it: another layer type, or a layer wasmgen always writes otherwise
    assert not refused_types <= produced or case in WASMGEN_WOULD_NOT_WRITE


# Refused images whose layer type wasmgen uses too: wasmgen writes that layer differently.
WASMGEN_WOULD_NOT_WRITE = {
    "no plugin.wasm in the layer",  # oci._tar_image always names it plugin.wasm
    "plugin.wasm is not wasm",  # build_image refuses a module without the \0asm header
    "gzip layer type holding a plain tar",  # deterministic_gzip always compresses
}


def test_wasmgen_never_packages_what_is_not_wasm() -> None:
    with pytest.raises(WasmgenError):
        oci.build_image(b"#!/bin/sh\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_wasmgen_pushes_is_pulled(
    fmt: oci.Format, oci_registry: LocalRegistry, tmp_path: Path
) -> None:
    image = oci.build_image(WASM, fmt)
    ref = oci_registry.ref("format-" + fmt)
    pushed = registry.push(image, ref)
    spec = spec_for("format", ref)
    (report,) = agent_rounds(spec, manifest(spec, pushed.digest), tmp_path / "cache")
    assert local_module(report) == WASM
    blobs = {b.digest: b.data for b in image.layers}
    assert extract_plugin(image.manifest, blobs.__getitem__) == WASM


def test_generate_warns_that_always_does_nothing_on_a_pinned_manifest() -> None:
    """What test_image_pull_policy measured, said where the manifest is written."""
    spec = spec_for("warned", "127.0.0.1:1/warned:v1", "imagePullPolicy: Always")
    pinned = render(spec, pin=Pin(spec.name, spec.image, "sha256:" + "b" * 64))
    assert [w.loc for w in pinned.warnings] == ["imagePullPolicy"]
    assert "never pulls it again" in pinned.warnings[0].message
    assert render(spec).warnings == ()  # a tag-only manifest: Always does pull again
