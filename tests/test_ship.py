"""Ship without Docker: wasmgen package/push against a real registry, pinned manifests, failures."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run_cli, snapshot
from tests.registry_fixture import LocalRegistry
from wasmgen.ship import oci
from wasmgen.ship.extract import extract_plugin

pytestmark = pytest.mark.slow
SEED = ROOT / "examples" / "seed-lab.yaml"
GATEWAY = ROOT / "examples" / "secure-gateway.yaml"


def _registry_manifest(reg: LocalRegistry, repo: str, tag: str) -> tuple[bytes, str]:
    """The manifest bytes and Docker-Content-Digest, read over the registry API."""
    req = urllib.request.Request(
        f"{reg.url}/v2/{repo}/manifests/{tag}",
        headers={"Accept": ", ".join(oci.MANIFEST_MEDIA_TYPES)},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read(), resp.headers["Docker-Content-Digest"]


def _blob(reg: LocalRegistry, repo: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"{reg.url}/v2/{repo}/blobs/{digest}", timeout=10) as resp:
        data: bytes = resp.read()
        return data


@pytest.mark.parametrize("fmt", ["oci", "docker", "wasm-artifact"])
def test_push_pins_manifests_to_the_registry_digest(
    oci_registry: LocalRegistry, tmp_path: Path, fmt: str
) -> None:
    """The pushed image holds plugin.wasm the way Istio fetches it, and every manifest pins its digest."""
    out = tmp_path / "seed"
    repo = f"wasmgen/seed-{fmt}"
    result = run_cli("push", SEED, "-o", out, "--image", oci_registry.ref(repo), "--format", fmt)
    assert result.code == 0, result.stderr
    manifest, digest = _registry_manifest(oci_registry, repo, "v1")
    assert digest in result.stdout
    wasm = extract_plugin(manifest, lambda d: _blob(oci_registry, repo, d))
    assert wasm == (out / "plugin.wasm").read_bytes()
    plugin = yaml.safe_load((out / "deploy" / "wasm-plugin.yaml").read_text())
    assert plugin["spec"]["url"] == f"oci://{oci_registry.ref(repo)}"
    assert plugin["spec"]["sha256"] == digest.removeprefix("sha256:")
    lock = json.loads((out / "wasmgen.lock").read_text())
    assert lock["digest"] == digest and lock["format"] == fmt
    assert run_cli("generate", SEED, "-o", out, "--check").code == 0, (
        "a push leaves the project current"
    )
    assert (
        run_cli("push", SEED, "-o", out, "--image", oci_registry.ref(repo), "--format", fmt).stdout
        == result.stdout
    )


def test_gateway_policy_is_pinned_and_skopeo_reads_the_image(
    oci_registry: LocalRegistry, tmp_path: Path
) -> None:
    """Envoy Gateway's policy gets the same digest; skopeo inspects the pushed image."""
    out = tmp_path / "gw"
    ref = oci_registry.ref("wasmgen/gateway", "v3")
    assert run_cli("push", GATEWAY, "-o", out, "--image", ref).code == 0
    policy = yaml.safe_load((out / "deploy" / "envoy-extension-policy.yaml").read_text())
    image = policy["spec"]["wasm"][0]["code"]["image"]
    _, digest = _registry_manifest(oci_registry, "wasmgen/gateway", "v3")
    assert image == {"url": ref, "sha256": digest.removeprefix("sha256:")}
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is required: .ci/run installs it"
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=True,
    )
    import hashlib

    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == digest


def test_package_is_reproducible(tmp_path: Path) -> None:
    """package writes an OCI layout and tarball; the same wasm gives the same digest."""
    a, b = tmp_path / "a", tmp_path / "b"
    first = run_cli("package", SEED, "-o", a, "--tar")
    second = run_cli("package", SEED, "-o", b, "--tar")
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    assert (a / "plugin.wasm").read_bytes() == (b / "plugin.wasm").read_bytes()
    assert first.stdout.split()[2] == second.stdout.split()[2]
    assert (a / "image.tar").read_bytes() == (b / "image.tar").read_bytes()
    index = json.loads((a / "image" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == first.stdout.split()[2]


def test_basic_auth_registry(oci_auth_registry: LocalRegistry, tmp_path: Path) -> None:
    """Right credentials push; a wrong password fails clearly, leaks nothing, rewrites nothing."""
    assert oci_auth_registry.username and oci_auth_registry.password
    out = tmp_path / "seed"
    ref = oci_auth_registry.ref("wasmgen/private")
    assert run_cli("generate", SEED, "-o", out).code == 0
    before = snapshot(out / "deploy")
    wrong = "not-" + oci_auth_registry.password
    bad = run_cli(
        "push",
        SEED,
        "-o",
        out,
        "--image",
        ref,
        "--username",
        oci_auth_registry.username,
        "--password-stdin",
        stdin=wrong + "\n",
    )
    assert bad.code == 2 and "authentication failed" in bad.stderr
    assert wrong not in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
    assert snapshot(out / "deploy") == before and not (out / "wasmgen.lock").exists()
    env = {
        "WASMGEN_REGISTRY_USERNAME": oci_auth_registry.username,
        "WASMGEN_REGISTRY_PASSWORD": oci_auth_registry.password,
    }
    good = run_cli("push", SEED, "-o", out, "--image", ref, env=env)
    assert good.code == 0, good.stderr
    assert oci_auth_registry.password not in good.stdout + good.stderr
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".wasm":
            assert oci_auth_registry.password.encode() not in path.read_bytes(), path
    via_stdin = run_cli(
        "push",
        SEED,
        "-o",
        out,
        "--image",
        ref,
        "--username",
        oci_auth_registry.username,
        "--password-stdin",
        stdin=oci_auth_registry.password + "\n",
    )
    assert via_stdin.code == 0, via_stdin.stderr


def test_unreachable_registry(closed_port: int, tmp_path: Path) -> None:
    """A registry nobody answers on: clear error naming it, non-zero exit, nothing rewritten."""
    out = tmp_path / "seed"
    assert run_cli("generate", SEED, "-o", out).code == 0
    before = snapshot(out / "deploy")
    result = run_cli("push", SEED, "-o", out, "--image", f"127.0.0.1:{closed_port}/wasm:v1")
    assert result.code == 2
    assert f"127.0.0.1:{closed_port}" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(out / "deploy") == before


def test_manifests_without_building(tmp_path: Path) -> None:
    """manifests writes pinned manifests from --image/--digest and builds nothing."""
    digest = "sha256:" + "ab" * 32
    result = run_cli(
        "manifests", SEED, "-o", tmp_path, "--image", "reg.example.com/wasm:v2", "--digest", digest
    )
    assert result.code == 0, result.stderr
    assert not (tmp_path / "plugin.wasm").exists()
    plugin = yaml.safe_load((tmp_path / "deploy" / "wasm-plugin.yaml").read_text())
    assert plugin["spec"]["url"] == "oci://reg.example.com/wasm:v2"
    assert plugin["spec"]["sha256"] == "ab" * 32
    bad = run_cli("manifests", SEED, "-o", tmp_path, "--digest", "sha256:xyz")
    assert bad.code == 2 and "--digest" in bad.stderr
