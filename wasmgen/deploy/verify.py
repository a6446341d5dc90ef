"""deploy/verify.sh: curl the target from a client pod and check the plugin's headers.

Rendered from the variant's deploy/verify.sh.jinja, so a template variant can change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wasmgen.backends.templating import generators_root, render_templates
from wasmgen.deploy.deployment import Deployment
from wasmgen.errors import WasmgenError
from wasmgen.semantics.verification import SAMPLE_URL, Verification
from wasmgen.spec.names import TOKEN

TEMPLATE = "deploy/verify.sh.jinja"
_OWS = " \t"  # optional whitespace around an HTTP field value


def verify_script(
    d: Deployment,
    expected_headers: Sequence[tuple[str, str]],
    *,
    client_label: str = "app=sleep",
    check: Verification | None = None,
    variant_dir: Path | None = None,
) -> str:
    """A POSIX sh script that curls the target from the client pod and checks each header."""
    for name, value in expected_headers:
        if not TOKEN.match(name):
            raise WasmgenError(f"{name!r} is not an HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise WasmgenError(f"header {name!r}: the value has a line break or NUL")
    check = check or Verification(
        "the httpbin sample", SAMPLE_URL, None, SAMPLE_URL, tuple(expected_headers)
    )
    folder = variant_dir if variant_dir and (variant_dir / TEMPLATE).is_file() else None
    folder = folder or generators_root() / "headers"
    context = {
        "name": d.name,
        "namespace": d.namespace,
        "where": check.where,
        "url": check.url,
        "gateway": check.gateway,
        "example_url": check.example_url,
        "client_label": client_label,
        "expected": [(name, value.strip(_OWS)) for name, value in expected_headers],
    }
    return render_templates(folder, {"verify.sh": TEMPLATE}, context, extras=False)[
        "verify.sh"
    ].decode()
