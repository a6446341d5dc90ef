"""The image builder: reproducible bytes, the layout on disk, and Istio's way of reading it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wasmgen.errors import WasmgenError
from wasmgen.ship.extract import extract_plugin
from wasmgen.ship.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    FORMATS,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    WASM_CONFIG,
    WASM_CONTENT_LAYER,
    Format,
    Image,
    build_image,
    canonical_json,
    deterministic_gzip,
    make_tar,
    sha256_digest,
    write_layout,
    write_layout_tar,
)

ROOT = Path(__file__).resolve().parents[1]

# The manifest digests of make_wasm()'s module. A change here changes every digest users
# have pinned in WasmPlugin `sha256` fields: only update it on purpose.
PINNED = {
    "oci": "sha256:c8b51b7bee90556a144a73de0a52a220e0f437c4926a5a680575360eba1ec258",
    "docker": "sha256:f413ed9177b09c5de085f8d84443adad745d7158487f567444344fa96028b643",
    "wasm-artifact": "sha256:9e1a1bc0fffba8510624c21c6b15bf12c058157f313f158e914278a8f2242a4a",
}

_DIGESTS_SCRIPT = """
import json, sys
from pathlib import Path
from wasmgen.ship.oci import FORMATS, build_image, write_layout_tar
wasm = bytes.fromhex(sys.argv[1])
out = {}
for fmt in FORMATS:
    image = build_image(wasm, fmt, annotations={"b": "2", "a": "1"} if fmt != "docker" else None)
    tar = write_layout_tar(image, Path(sys.argv[2]) / f"{fmt}.tar", ref_name="v1")
    out[fmt] = [image.digest, tar.read_bytes().hex()]
print(json.dumps(out))
"""


def _getter(image: Image) -> Callable[[str], bytes]:
    """A blob getter over an image's own blobs, as a registry would serve them."""
    blobs = {blob.digest: blob.data for blob in image.blobs}
    return blobs.__getitem__


def _doc(data: bytes) -> Any:
    """Parse JSON bytes."""
    return json.loads(data)


def _tar_members(tgz: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Entries and contents of a gzipped tar."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tgz)), mode="r:") as tar:
        return [(m, (tar.extractfile(m) or io.BytesIO()).read()) for m in tar.getmembers()]


def _manifest(layers: list[tuple[str, bytes]], media_type: str = OCI_MANIFEST) -> tuple[bytes, Any]:
    """A hand-made manifest over some (media type, data) layers, with its blob getter."""
    blobs = {sha256_digest(data): data for _, data in layers}
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [
            {"mediaType": mt, "digest": sha256_digest(data), "size": len(data)}
            for mt, data in layers
        ],
    }
    return canonical_json(doc), blobs.__getitem__


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_wasm_builds_same_bytes(fmt: Format, tiny_wasm: bytes) -> None:
    first, second = build_image(tiny_wasm, fmt), build_image(bytes(bytearray(tiny_wasm)), fmt)
    assert first == second
    assert first.manifest == second.manifest
    assert [b.data for b in first.blobs] == [b.data for b in second.blobs]
    assert first.digest == sha256_digest(first.manifest) == PINNED[fmt]


def test_digests_do_not_depend_on_the_process(tiny_wasm: bytes, tmp_path: Path) -> None:
    seen = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = tmp_path / seed
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", _DIGESTS_SCRIPT, tiny_wasm.hex(), str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        seen.add(done.stdout)
    assert len(seen) == 1
    digests = json.loads(seen.pop())
    image = build_image(tiny_wasm, "oci", annotations={"a": "1", "b": "2"})
    assert digests["oci"][0] == image.digest
    assert digests["docker"][0] == PINNED["docker"]


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_compat_image_is_what_the_dockerfile_describes(fmt: Format, tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm, fmt)
    manifest = _doc(image.manifest)
    want = {
        "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP),
        "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP),
    }[fmt]
    assert (manifest["mediaType"], manifest["config"]["mediaType"]) == want[:2]
    assert image.media_type == want[0]
    assert manifest["schemaVersion"] == 2
    assert [layer["mediaType"] for layer in manifest["layers"]] == [want[2]]
    if fmt == "oci":
        assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    else:
        assert "annotations" not in manifest
    assert manifest["config"] == image.config.descriptor()

    layer = image.layers[0].data
    assert layer[:10] == b"\x1f\x8b\x08\x00\0\0\0\0\x02\xff"  # no FNAME, mtime 0
    [(member, data)] = _tar_members(layer)
    assert (member.name, member.mode, member.uid, member.gid, member.mtime) == (
        "plugin.wasm",
        0o644,
        0,
        0,
        0,
    )
    assert member.isreg() and data == tiny_wasm

    config = _doc(image.config.data)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": [sha256_digest(gzip.decompress(layer))],
    }
    assert image.config.data == canonical_json(config)


def test_wasm_artifact_has_two_layers_and_the_raw_module(tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm, "wasm-artifact")
    manifest = _doc(image.manifest)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == WASM_CONFIG
    kinds = [layer["mediaType"] for layer in manifest["layers"]]
    assert kinds == [WASM_CONTENT_LAYER, WASM_CONFIG]
    assert image.layers[0].data == tiny_wasm
    assert _doc(image.layers[1].data)["type"] == "envoy_proxy"


def test_platform_and_annotations_are_inputs(tiny_wasm: bytes) -> None:
    arm = build_image(tiny_wasm, "oci", platform=("linux", "arm64"))
    assert _doc(arm.config.data)["architecture"] == "arm64"
    assert arm.digest != PINNED["oci"]
    noted = build_image(tiny_wasm, "oci", annotations={"org.opencontainers.image.version": "1"})
    assert _doc(noted.manifest)["annotations"] == {
        "module.wasm.image/variant": "compat",
        "org.opencontainers.image.version": "1",
    }
    with pytest.raises(WasmgenError, match="no annotations"):
        build_image(tiny_wasm, "docker", annotations={"a": "b"})
    with pytest.raises(WasmgenError, match="must be 'compat'"):
        build_image(tiny_wasm, "oci", annotations={"module.wasm.image/variant": "oci"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "does not start with"),
        (b"PK\x03\x04 a zip file", "does not start with"),
        (b"\0asm\x0d\0\x01\0", "not a core WebAssembly module"),
        (b"\0asm", "not a core WebAssembly module"),
    ],
)
def test_build_refuses_what_is_not_a_core_module(data: bytes, message: str) -> None:
    with pytest.raises(WasmgenError, match=message):
        build_image(data)


def test_unknown_format_is_a_user_error(tiny_wasm: bytes) -> None:
    with pytest.raises(WasmgenError, match="unknown image format 'tar'") as info:
        build_image(tiny_wasm, "tar")  # type: ignore[arg-type]
    assert info.value.hint and "wasm-artifact" in info.value.hint


@pytest.mark.parametrize("fmt", FORMATS)
def test_istio_extraction_gets_the_module_back(fmt: Format, tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm, fmt)
    assert extract_plugin(image.manifest, _getter(image)) == tiny_wasm


def test_istio_reads_the_last_layer_and_the_first_plugin_wasm(tiny_wasm: bytes) -> None:
    other = make_tar([("plugin.wasm", b"\0asm not this one")])
    first = make_tar([("etc/", None), ("etc/plugin.wasm", tiny_wasm), ("plugin.wasm", b"x")])
    manifest, get = _manifest(
        [(OCI_LAYER_GZIP, deterministic_gzip(other)), (OCI_LAYER_GZIP, deterministic_gzip(first))]
    )
    assert extract_plugin(manifest, get) == tiny_wasm


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([("application/vnd.oci.image.layer.v1.tar", "tar")], "invalid media type"),
        ([("application/vnd.oci.image.layer.v1.tar+zstd", "tar")], "invalid media type"),
        ([(OCI_LAYER_GZIP, "tar")], "failed to parse layer as tar.gz"),
        ([(OCI_LAYER_GZIP, "tgz-no-plugin")], "plugin.wasm not found"),
        ([("application/wasm", "wasm")], "number of layers must be 2"),
        ([(WASM_CONTENT_LAYER, "wasm")] * 3, "number of layers must be 2 but got 3"),
        ([], "number of layers must be greater than zero"),
    ],
)
def test_istio_extraction_rejects_what_istio_rejects(
    layers: list[tuple[str, str]], message: str, tiny_wasm: bytes
) -> None:
    contents = {
        "tar": make_tar([("plugin.wasm", tiny_wasm)]),
        "tgz-no-plugin": deterministic_gzip(make_tar([("main.wasm", tiny_wasm)])),
        "wasm": tiny_wasm,
    }
    manifest, get = _manifest([(mt, contents[kind]) for mt, kind in layers])
    with pytest.raises(WasmgenError, match=message):
        extract_plugin(manifest, get)


def test_istio_extraction_checks_wasm_magic_digests_and_manifest_kind(tiny_wasm: bytes) -> None:
    not_wasm = deterministic_gzip(make_tar([("plugin.wasm", b"#!/bin/sh")]))
    manifest, get = _manifest([(DOCKER_LAYER_GZIP, not_wasm)], DOCKER_MANIFEST)
    with pytest.raises(WasmgenError, match="not a Wasm binary"):
        extract_plugin(manifest, get)
    # A Docker manifest's layer must be the Docker type, not the OCI one.
    manifest, get = _manifest([(OCI_LAYER_GZIP, not_wasm)], DOCKER_MANIFEST)
    with pytest.raises(WasmgenError, match="invalid media type"):
        extract_plugin(manifest, get)
    image = build_image(tiny_wasm, "oci")
    with pytest.raises(WasmgenError, match="does not match its descriptor"):
        extract_plugin(image.manifest, lambda digest: b"tampered")
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    with pytest.raises(WasmgenError, match="image index"):
        extract_plugin(index, _getter(image))
    with pytest.raises(WasmgenError, match="not JSON"):
        extract_plugin(b"\x00", _getter(image))


@pytest.mark.parametrize("fmt", FORMATS)
def test_layout_holds_the_image(fmt: Format, tiny_wasm: bytes, tmp_path: Path) -> None:
    image = build_image(tiny_wasm, fmt)
    root = write_layout(image, tmp_path / "layout", ref_name="v1")
    assert _doc((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = _doc((root / "index.json").read_bytes())
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == [
        {
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }
    ]
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    wanted = {image.digest, *(b.digest for b in image.blobs)}
    assert blobs == sorted(d.removeprefix("sha256:") for d in wanted)
    for name in blobs:
        data = (root / "blobs" / "sha256" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == name
    assert (root / "blobs" / "sha256" / image.sha256).read_bytes() == image.manifest


def test_layout_tar_is_reproducible(tiny_wasm: bytes, tmp_path: Path) -> None:
    image = build_image(tiny_wasm)
    one = write_layout_tar(image, tmp_path / "a" / "image.tar").read_bytes()
    two = write_layout_tar(image, tmp_path / "b.tar").read_bytes()
    assert one == two
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["blobs", "blobs/sha256"] and names[-2:] == ["index.json", "oci-layout"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert not list((tmp_path / "a").glob(".image.tar.*"))  # no temp file left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_skopeo_reads_the_layout_and_archive(fmt: Format, tiny_wasm: bytes, tmp_path: Path) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is not installed; .ci/run installs it (apt-get install -y skopeo)")
    image = build_image(tiny_wasm, fmt)
    layout = write_layout(image, tmp_path / "layout")
    archive = write_layout_tar(image, tmp_path / "image.tar")
    for target in (f"oci:{layout}", f"oci-archive:{archive}"):
        raw = subprocess.run([skopeo, "inspect", "--raw", target], capture_output=True, check=True)
        assert raw.stdout == image.manifest
    if fmt != "wasm-artifact":  # skopeo reads image configs, not artifact configs
        done = subprocess.run([skopeo, "inspect", f"oci:{layout}"], capture_output=True, check=True)
        info = json.loads(done.stdout)
        assert (info["Digest"], info["Os"], info["Architecture"]) == (
            image.digest,
            "linux",
            "amd64",
        )
