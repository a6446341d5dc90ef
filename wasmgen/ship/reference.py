"""Where an image reference points: the registry API host, plain HTTP for loopback registries."""

from __future__ import annotations

from wasmgen.spec.image import (
    DEFAULT_TAG,
    DOCKER_HUB_API,
    DOCKER_HUB_HOSTS,
    Reference,
    parse_reference,
)

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def uses_plain_http(registry: str, insecure: bool = False) -> bool:
    """Whether to talk plain HTTP: loopback registries (any port) and insecure=True."""
    host = Reference(registry, "x").hostname
    return insecure or host in LOOPBACK_HOSTS


__all__ = [
    "DEFAULT_TAG",
    "DOCKER_HUB_API",
    "DOCKER_HUB_HOSTS",
    "LOOPBACK_HOSTS",
    "Reference",
    "parse_reference",
    "uses_plain_http",
]
