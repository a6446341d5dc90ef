"""Read a plugin back out of an image the way Istio's (and Envoy Gateway's) image fetcher does."""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from wasmgen.errors import WasmgenError
from wasmgen.ship.oci import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_PLUGIN_SIZE,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    PLUGIN_FILE,
    WASM_CONTENT_LAYER,
    WASM_MAGIC,
    sha256_digest,
)


class _Reject(Exception):
    """One variant of Istio's fetcher could not read the image."""


def extract_plugin(
    manifest: bytes, get_blob: Callable[[str], bytes], max_size: int = MAX_PLUGIN_SIZE
) -> bytes:
    """Get the module out of an image the way Istio's image fetcher does, or say why it can't."""
    try:
        doc = json.loads(manifest)
    except ValueError as exc:
        raise WasmgenError(f"image manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WasmgenError("image manifest is not a JSON object")
    media_type = doc.get("mediaType", "")
    if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) or "manifests" in doc:
        raise WasmgenError(
            "got an image index, not a single image manifest",
            hint="push the plugin as one manifest; wasmgen never pushes an index",
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise WasmgenError("image manifest has no valid 'layers' list")
    try:
        if media_type == DOCKER_MANIFEST:
            plugin = _from_tar_layer(layers, DOCKER_LAYER_GZIP, get_blob, max_size)
        else:
            plugin = _from_oci(layers, get_blob, max_size)
    except _Reject as exc:
        raise WasmgenError(
            f"Istio could not extract a Wasm module from this image: {exc}",
            hint="push with wasmgen's oci, docker or wasm-artifact format",
        ) from None
    if not plugin.startswith(WASM_MAGIC):
        raise WasmgenError(
            f"the {PLUGIN_FILE} in the image is not a Wasm binary (no \\0asm header)"
        )
    return plugin


def _from_oci(layers: list[dict[str, Any]], get_blob: Callable[[str], bytes], limit: int) -> bytes:
    """Try the OCI compat variant, then the artifact variant, as Istio does."""
    try:
        return _from_tar_layer(layers, OCI_LAYER_GZIP, get_blob, limit)
    except _Reject as compat:
        try:
            return _from_artifact(layers, get_blob, limit)
        except _Reject as artifact:
            raise _Reject(
                f"could not parse as compat variant: {compat}; "
                f"could not parse as oci variant: {artifact}"
            ) from None


def _from_tar_layer(
    layers: list[dict[str, Any]], want: str, get_blob: Callable[[str], bytes], limit: int
) -> bytes:
    """Read plugin.wasm from the last layer, which must be a gzipped tar of type `want`."""
    if not layers:
        raise _Reject("number of layers must be greater than zero")
    last = layers[-1]
    if last.get("mediaType") != want:
        raise _Reject(f"invalid media type {last.get('mediaType')} (expect {want})")
    blob = _fetch(last, get_blob, limit * 2)
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb") as gz,
            tarfile.open(fileobj=gz, mode="r|") as tar,
        ):
            for member in tar:
                if posixpath.basename(member.name.rstrip("/")) != PLUGIN_FILE:
                    continue
                if member.size > limit:
                    raise _Reject(f"{PLUGIN_FILE} is {member.size} bytes, over the {limit} cap")
                reader = tar.extractfile(member) if member.isreg() else None
                return reader.read() if reader else b""
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise _Reject(f"failed to parse layer as tar.gz: {exc}") from None
    raise _Reject(f"{PLUGIN_FILE} not found in the archive")


def _from_artifact(
    layers: list[dict[str, Any]], get_blob: Callable[[str], bytes], limit: int
) -> bytes:
    """Read the raw module layer of a two-layer Wasm artifact."""
    if len(layers) != 2:
        raise _Reject(f"number of layers must be 2 but got {len(layers)}")
    for layer in layers:
        if layer.get("mediaType") == WASM_CONTENT_LAYER:
            return _fetch(layer, get_blob, limit)
    raise _Reject(f"could not find the layer of type {WASM_CONTENT_LAYER}")


def _fetch(desc: Mapping[str, Any], get_blob: Callable[[str], bytes], limit: int) -> bytes:
    """Fetch a layer blob and check it against its descriptor's digest and size."""
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise _Reject(f"layer digest {digest!r} is not a sha256 digest")
    if isinstance(size, int) and size > limit:
        raise _Reject(f"layer is {size} bytes, over the {limit} cap")
    data = get_blob(digest)
    if sha256_digest(data) != digest or (isinstance(size, int) and len(data) != size):
        raise _Reject(f"layer {digest} does not match its descriptor")
    return data
