"""Build, lay out and unpack the OCI image of a Wasm plugin, without Docker and byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, get_args

from wasmgen.errors import WasmgenError
from wasmgen.fsutil import write_atomic
from wasmgen.records import record

Format = Literal["oci", "docker", "wasm-artifact"]
FORMATS: tuple[Format, ...] = get_args(Format)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_CONTENT_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
# What a client asks a registry for: every manifest media type Istio's fetcher resolves.
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)

VARIANT_ANNOTATION = "module.wasm.image/variant"
TITLE_ANNOTATION = "org.opencontainers.image.title"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
PLUGIN_FILE = "plugin.wasm"
RUNTIME_CONFIG_FILE = "runtime-config.json"
WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"
MAX_PLUGIN_SIZE = 256 * 1024 * 1024  # Istio's default cap on a fetched module
GZIP_LEVEL = 9
FILE_MODE = 0o644
DIR_MODE = 0o755
EPOCH = "1970-01-01T00:00:00Z"  # SOURCE_DATE_EPOCH=0: the only timestamp an image carries
DEFAULT_PLATFORM = ("linux", "amd64")  # what `docker build` of FROM scratch gives on x86-64 CI
COPY_STEP = f"COPY {PLUGIN_FILE} ./{PLUGIN_FILE}"
_ABI_EXPORT = re.compile(rb"proxy_abi_version_\d+_\d+_\d+")


def sha256_digest(data: bytes) -> str:
    """The OCI digest string (`sha256:<hex>`) of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    """Serialize JSON the one way we always do: sorted keys, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@record
class Blob:
    """One content-addressed blob (a config or a layer) and how a manifest describes it."""

    media_type: str
    data: bytes = field(repr=False)
    digest: str
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, media_type: str, data: bytes, annotations: Mapping[str, str] | None = None) -> Blob:
        """Wrap bytes as a blob, computing its digest."""
        notes = tuple(sorted((annotations or {}).items()))
        return cls(media_type, bytes(data), sha256_digest(data), notes)

    @property
    def size(self) -> int:
        """Length of the blob in bytes."""
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor (mediaType, digest, size, annotations) for this blob."""
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


@record
class Image:
    """A single-manifest image: manifest bytes and digest, config blob, layer blobs."""

    format: Format
    media_type: str
    manifest: bytes = field(repr=False)
    digest: str
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def sha256(self) -> str:
        """The manifest digest as bare hex, the value of WasmPlugin's `sha256` field."""
        return self.digest.removeprefix("sha256:")

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Config and layers, each distinct digest once, in push order."""
        seen: dict[str, Blob] = {}
        for blob in (self.config, *self.layers):
            seen.setdefault(blob.digest, blob)
        return tuple(seen.values())


def build_image(
    wasm: bytes,
    fmt: Format = "oci",
    annotations: Mapping[str, str] | None = None,
    platform: tuple[str, str] = DEFAULT_PLATFORM,
) -> Image:
    """Build the image `FROM scratch` + `COPY plugin.wasm ./plugin.wasm` describes, reproducibly."""
    wasm = bytes(wasm)
    check_wasm(wasm)
    notes = dict(annotations or {})
    for key, value in notes.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise WasmgenError(f"annotation {key!r}: keys and values must be non-empty strings")
    if fmt == "oci":
        if notes.get(VARIANT_ANNOTATION, "compat") != "compat":
            raise WasmgenError(f"annotation {VARIANT_ANNOTATION} of an oci image must be 'compat'")
        notes[VARIANT_ANNOTATION] = "compat"
        return _tar_image(wasm, fmt, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, notes, platform)
    if fmt == "docker":
        if notes:
            raise WasmgenError(
                "a Docker v2 schema 2 manifest has no annotations",
                hint="use the 'oci' format to annotate the image",
            )
        return _tar_image(
            wasm, fmt, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP, {}, platform
        )
    if fmt == "wasm-artifact":
        return _artifact_image(wasm, notes)
    raise WasmgenError(f"unknown image format {fmt!r}", hint=f"choose one of: {', '.join(FORMATS)}")


def check_wasm(wasm: bytes) -> None:
    """Refuse bytes that are not a core WebAssembly module Envoy could load."""
    if not wasm.startswith(WASM_MAGIC):
        raise WasmgenError(
            "not a WebAssembly module: the file does not start with \\0asm",
            hint="pass the .wasm file the Go build wrote",
        )
    if wasm[4:8] != WASM_VERSION_1:
        raise WasmgenError(
            f"not a core WebAssembly module (version bytes {wasm[4:8].hex() or 'missing'})",
            hint="Envoy loads core modules (version 1), not components",
        )
    if len(wasm) > MAX_PLUGIN_SIZE:
        raise WasmgenError(
            f"module is {len(wasm)} bytes; Istio refuses more than {MAX_PLUGIN_SIZE}"
        )


def _tar_image(
    wasm: bytes,
    fmt: Format,
    manifest_type: str,
    config_type: str,
    layer_type: str,
    annotations: Mapping[str, str],
    platform: tuple[str, str],
) -> Image:
    """The one-layer image a Dockerfile with a single COPY produces."""
    tar = make_tar([(PLUGIN_FILE, wasm)])
    layer = Blob.of(layer_type, deterministic_gzip(tar))
    config_doc = {
        "architecture": platform[1],
        "os": platform[0],
        "created": EPOCH,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
        "history": [{"created": EPOCH, "created_by": COPY_STEP}],
    }
    config = Blob.of(config_type, canonical_json(config_doc))
    return _assemble(fmt, manifest_type, config, (layer,), annotations)


def _artifact_image(wasm: bytes, annotations: Mapping[str, str]) -> Image:
    """solo.io's "oci" variant: raw module layer plus runtime-config layer, nothing else."""
    abis = sorted({m.decode() for m in _ABI_EXPORT.findall(wasm)})
    runtime = canonical_json({"abiVersions": abis, "config": {}, "type": "envoy_proxy"})
    content = Blob.of(WASM_CONTENT_LAYER, wasm, {TITLE_ANNOTATION: PLUGIN_FILE})
    runtime_layer = Blob.of(WASM_CONFIG, runtime, {TITLE_ANNOTATION: RUNTIME_CONFIG_FILE})
    config = Blob.of(WASM_CONFIG, runtime)
    return _assemble("wasm-artifact", OCI_MANIFEST, config, (content, runtime_layer), annotations)


def _assemble(
    fmt: Format,
    media_type: str,
    config: Blob,
    layers: tuple[Blob, ...],
    annotations: Mapping[str, str],
) -> Image:
    """Write the manifest JSON for a config and layers and wrap everything as an Image."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    manifest = canonical_json(doc)
    return Image(fmt, media_type, manifest, sha256_digest(manifest), config, layers)


def make_tar(entries: Iterable[tuple[str, bytes | None]]) -> bytes:
    """A ustar archive with fixed metadata; an entry whose data is None is a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
                tar.addfile(info)
            else:
                info.type, info.mode, info.size = tarfile.REGTYPE, FILE_MODE, len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def deterministic_gzip(data: bytes) -> bytes:
    """Gzip with a fixed header (no name, mtime 0, OS unknown) and a fixed deflate level."""
    deflate = zlib.compressobj(
        GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY
    )
    body = deflate.compress(data) + deflate.flush()
    header = (
        b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x02\xff"
    )  # magic, deflate, FLG=0, MTIME=0, XFL, OS
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


def layout_files(image: Image, ref_name: str | None = None) -> list[tuple[str, bytes]]:
    """The files of an OCI image layout holding just this image, sorted by path."""
    desc: dict[str, Any] = {
        "mediaType": image.media_type,
        "digest": image.digest,
        "size": len(image.manifest),
    }
    if ref_name:
        desc["annotations"] = {REF_NAME_ANNOTATION: ref_name}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}
    files = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical_json(index),
        _blob_path(image.digest): image.manifest,
    }
    for blob in image.blobs:
        files[_blob_path(blob.digest)] = blob.data
    return sorted(files.items())


def _blob_path(digest: str) -> str:
    """Where a blob lives inside an image layout."""
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def write_layout(image: Image, directory: Path, ref_name: str | None = None) -> Path:
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/...) into a directory."""
    directory = Path(directory)
    for name, data in layout_files(image, ref_name):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def write_layout_tar(image: Image, path: Path, ref_name: str | None = None) -> Path:
    """Write the image layout as one reproducible tar file (what `oci-archive:` reads)."""
    path = Path(path)
    files = layout_files(image, ref_name)
    dirs = sorted({posixpath.dirname(name) + "/" for name, _ in files if "/" in name})
    parents = sorted({d.split("/")[0] + "/" for d in dirs} | set(dirs))
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in parents]
    entries += files
    data = make_tar(sorted(entries, key=lambda entry: entry[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path
