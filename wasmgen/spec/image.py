"""Image references as the OCI distribution grammar defines them, and $VAR expansion in them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from wasmgen.errors import WasmgenError
from wasmgen.records import record

DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}$]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def expand_variables(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace $NAME, ${NAME} and ${NAME:-default} from the environment, as the lab's shell did;
    ValueError naming the variable when one is unset (or empty) and has no default."""
    env = os.environ if environ is None else environ

    def value(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        found = env.get(name) or m.group("default")
        if not found:
            raise ValueError(
                f"${name} is not set in the environment: export {name}=registry.example.com/team "
                f"(as the wasm lab does), write the registry into the spec, or use "
                f"${{{name}:-registry.example.com/team}} for a default"
            )
        return found

    expanded = _VAR.sub(value, text)
    if "$" in expanded:
        raise ValueError(f"{text!r}: '$' must start $NAME, ${{NAME}} or ${{NAME:-default}}")
    return expanded


_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_EXAMPLE = "e.g. ghcr.io/acme/header-plugin:v1 or localhost:5000/header-plugin:v1"


@record
class Reference:
    """A parsed image reference: registry host[:port], repository path, tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def api_host(self) -> str:
        """The host:port the registry API answers on (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry in DOCKER_HUB_HOSTS else self.registry

    @property
    def hostname(self) -> str:
        """The registry host without its port."""
        if self.registry.startswith("["):
            return self.registry[: self.registry.index("]") + 1]
        return self.registry.split(":", 1)[0]


def parse_reference(text: str, require_registry: bool = True) -> Reference:
    """Parse and validate `host[:port]/repo/name[:tag][@sha256:...]` (the OCI distribution
    reference grammar); an `oci://` prefix is fine. Without require_registry a name with no
    registry host means Docker Hub, as Docker and Istio read it."""
    raw = text.strip()
    rest = raw.removeprefix("oci://")
    if "://" in rest:
        raise _bad_ref(raw, "only oci:// (or no scheme) is allowed")
    rest, _, digest = rest.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        raise _bad_ref(raw, f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits")
    head, slash, path = rest.partition("/")
    has_host = bool(slash) and (
        head == "localhost" or "." in head or ":" in head or head.startswith("[")
    )
    if not require_registry and not has_host:
        head, path = "docker.io", rest
    elif not slash or not path:
        raise _bad_ref(raw, "it needs a registry host and a repository")
    elif not has_host:
        raise _bad_ref(raw, f"it must start with a registry host, not {head!r}")
    if not path:
        raise _bad_ref(raw, "the repository name is empty")
    if not _HOST_RE.fullmatch(head):
        raise _bad_ref(raw, f"{head!r} is not a valid registry host[:port]")
    port = head.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in head.rsplit("]", 1)[-1] else ""
    if port and not 1 <= int(port) <= 65535:
        raise _bad_ref(raw, f"port {port} is outside 1-65535")
    tag: str | None = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG_RE.fullmatch(tag):
            raise _bad_ref(raw, f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    for part in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(part):
            why = (
                "must be lowercase" if _PATH_COMPONENT_RE.fullmatch(part.lower()) else "is invalid"
            )
            raise _bad_ref(raw, f"repository path component {part!r} {why}")
    if head in DOCKER_HUB_HOSTS and "/" not in path:
        path = f"library/{path}"
    if len(head) + 1 + len(path) > 255:
        raise _bad_ref(raw, "the name is longer than 255 characters")
    return Reference(head, path, tag or (None if digest else DEFAULT_TAG), digest or None)


def _bad_ref(text: str, why: str) -> WasmgenError:
    """The error for a reference that does not parse."""
    return WasmgenError(f"invalid image reference {text!r}: {why}", hint=_EXAMPLE)
