"""Rule sets a spec can switch on: OWASP secure response headers, and hiding the server."""

from __future__ import annotations

from typing import Any

# OWASP Secure Headers Project recommendations (2024). addIfAbsent keeps an app's own stricter value.
SECURE_HEADERS: dict[str, str] = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "deny",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "x-permitted-cross-domain-policies": "none",
    "content-security-policy": (
        "default-src 'self'; form-action 'self'; object-src 'none'; frame-ancestors 'none'; "
        "upgrade-insecure-requests"
    ),
    "permissions-policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    ),
}

# Headers that name the server software or framework behind the proxy.
SERVER_HEADERS: list[str] = ["server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"]


def preset_rules(secure_headers: bool, strip_server_headers: bool) -> list[dict[str, Any]]:
    """Response rules for the switched-on presets, applied before the spec's own rules."""
    rules: list[dict[str, Any]] = []
    if strip_server_headers:
        rules.append({"remove": list(SERVER_HEADERS)})
    if secure_headers:
        rules.append({"addIfAbsent": dict(SECURE_HEADERS)})
    return rules
