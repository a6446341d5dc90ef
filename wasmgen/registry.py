"""Push an image to an OCI registry through oras-py, read it back, and explain failures."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

import oras.auth
import oras.provider
import oras.utils
import requests
from requests.adapters import HTTPAdapter

from wasmgen.errors import RegistryError, WasmgenError
from wasmgen.oci import MANIFEST_MEDIA_TYPES, Blob, Image, sha256_digest

_log = logging.getLogger(__name__)

USERNAME_ENV = "WASMGEN_REGISTRY_USERNAME"
PASSWORD_ENV = "WASMGEN_REGISTRY_PASSWORD"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
DEFAULT_TIMEOUT = 30.0
_CRED_HINT = (
    f"set {USERNAME_ENV} and {PASSWORD_ENV}, pass --username with --password-stdin, "
    "or log in with `docker login` / `oras login` (the docker config file, or DOCKER_CONFIG)"
)

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_EXAMPLE = "e.g. ghcr.io/acme/header-plugin:v1 or localhost:5000/header-plugin:v1"

# oras-py's request helper (auth challenges, token and basic flows) without its retry
# decorator, which sleeps for minutes on a connection error before giving up.
_do_request = oras.provider.Registry.do_request
_oras_request: Callable[..., requests.Response] = getattr(_do_request, "__wrapped__", _do_request)


@dataclass(frozen=True)
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


def parse_reference(text: str) -> Reference:
    """Parse and validate `host[:port]/repo/name[:tag][@sha256:...]`; an `oci://` prefix is fine."""
    raw = text.strip()
    rest = raw.removeprefix("oci://")
    if "://" in rest:
        raise _bad_ref(raw, "only oci:// (or no scheme) is allowed")
    rest, _, digest = rest.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        raise _bad_ref(raw, f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits")
    head, slash, path = rest.partition("/")
    if not slash or not path:
        raise _bad_ref(raw, "it needs a registry host and a repository")
    if not (head == "localhost" or "." in head or ":" in head or head.startswith("[")):
        raise _bad_ref(raw, f"it must start with a registry host, not {head!r}")
    if not _HOST_RE.fullmatch(head):
        raise _bad_ref(raw, f"{head!r} is not a valid registry host[:port]")
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


def uses_plain_http(registry: str, insecure: bool = False) -> bool:
    """Whether to talk plain HTTP: loopback registries (any port) and insecure=True."""
    host = Reference(registry, "x").hostname
    return insecure or host in LOOPBACK_HOSTS


@dataclass(frozen=True)
class Credentials:
    """A username and password, and where they came from (never the password itself)."""

    username: str
    password: str = field(repr=False)
    source: str = "arguments"


def resolve_credentials(
    registry: str,
    username: str | None = None,
    password: str | None = None,
    environ: Mapping[str, str] | None = None,
    docker_config: Path | None = None,
) -> Credentials | None:
    """Pick credentials: arguments, then WASMGEN_REGISTRY_* variables, then the docker config."""
    env = os.environ if environ is None else environ
    user = username or env.get(USERNAME_ENV) or None
    secret = password or env.get(PASSWORD_ENV) or None
    if user or secret:
        if not user:
            raise WasmgenError(f"a password was given for {registry} but no username")
        if not secret:
            raise WasmgenError(
                f"no password for user {user} on {registry}",
                hint=f"pipe it to --password-stdin or set {PASSWORD_ENV}",
            )
        explicit = username is not None or password is not None
        source = "command-line arguments" if explicit else f"{USERNAME_ENV}/{PASSWORD_ENV}"
        return Credentials(user, secret, source)
    return _from_docker_config(registry, docker_config_path(env, docker_config))


def docker_config_path(environ: Mapping[str, str], explicit: Path | None = None) -> Path:
    """The docker config file: explicit path, $DOCKER_CONFIG/config.json or ~/.docker/."""
    if explicit is not None:
        return Path(explicit)
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _config_key(key: str) -> str:
    """Normalize an `auths` key (`https://host/v1/`, `host:port`) to a registry name."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def _from_docker_config(registry: str, path: Path) -> Credentials | None:
    """Read credentials for one registry from a docker config file, if it has any."""
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise WasmgenError(f"cannot read docker config {path}: not a JSON file") from None
    if not isinstance(config, dict):
        raise WasmgenError(f"cannot read docker config {path}: not a JSON object")
    want = _config_key(registry)
    source = f"docker config {path}"
    helpers = config.get("credHelpers") or {}
    helper = next((v for k, v in helpers.items() if _config_key(k) == want), None)
    if isinstance(helper, str):
        return _from_helper(helper, registry, source)
    for key, entry in (config.get("auths") or {}).items():
        if _config_key(key) != want or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, sep, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                user, sep, secret = "", "", ""
            if not sep or not user:
                raise WasmgenError(f"{source}: the auth entry for {registry} is not user:password")
            return Credentials(user, secret, source)
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]), source)
        if entry.get("identitytoken"):
            raise WasmgenError(
                f"{source} holds an identity token for {registry}, which wasmgen cannot use",
                hint=_CRED_HINT,
            )
    store = config.get("credsStore")
    return _from_helper(store, registry, source) if isinstance(store, str) and store else None


def _from_helper(helper: str, registry: str, source: str) -> Credentials | None:
    """Ask a docker credential helper (`docker-credential-NAME get`) for a registry's login."""
    program = f"docker-credential-{helper}"
    server = "https://index.docker.io/v1/" if _config_key(registry) == "docker.io" else registry
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        _log.debug("credential helper %s could not run; continuing without credentials", program)
        return None
    if done.returncode != 0:
        _log.debug("credential helper %s has no login for %s", program, registry)
        return None
    try:
        payload = json.loads(done.stdout)
        return Credentials(
            str(payload["Username"]), str(payload["Secret"]), f"{source} ({program})"
        )
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper {program} gave an unreadable answer") from None


class _TimeoutAdapter(HTTPAdapter):
    """A transport adapter that puts a timeout on every request (oras-py sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with our timeout unless the caller chose one."""
        timeout = self._timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


class _Client:
    """One conversation with a registry: oras' session and auth backends, wasmgen's errors."""

    def __init__(
        self, ref: Reference, creds: Credentials | None, insecure: bool, timeout: float
    ) -> None:
        self.ref, self.creds = ref, creds
        self.plain = uses_plain_http(ref.registry, insecure)
        self.base = f"{'http' if self.plain else 'https'}://{ref.api_host}"
        self.reg = oras.provider.Registry(
            hostname=ref.api_host, insecure=self.plain, auth_backend="token"
        )
        self.basic = False
        adapter = _TimeoutAdapter(timeout)
        self.reg.session.mount("http://", adapter)
        self.reg.session.mount("https://", adapter)
        if ref.hostname in LOOPBACK_HOSTS:
            self.reg.session.trust_env = False  # no proxy can reach our loopback

    def close(self) -> None:
        """Release the HTTP connections."""
        self.reg.session.close()

    def ping(self) -> None:
        """Check that /v2/ answers and pick the auth flow (basic or token) it asks for."""
        resp = self._transport(lambda: self.reg.session.get(f"{self.base}/v2/"))
        if resp.status_code == 401:
            scheme = resp.headers.get("WWW-Authenticate", "").split(" ", 1)[0].lower()
            if scheme == "basic":
                if self.creds is None:
                    raise self._auth_error(resp)
                self.reg.auth = oras.auth.get_auth_backend(
                    "basic", self.reg.session, self.plain, tls_verify=True
                )
                self.basic = True
        elif resp.status_code != 200:
            raise RegistryError(
                f"{self.base}/v2/ answered HTTP {resp.status_code}: not an OCI registry API",
                hint="check the registry host and port in the reference",
            )
        if self.creds is not None:  # without them, oras asks bearer realms for anonymous tokens
            self.reg.auth.set_basic_auth(self.creds.username, self.creds.password)
        if self.basic:
            self.send("GET", "/v2/", what="checking credentials")

    def send(
        self,
        method: str,
        target: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Make one request through oras' auth flow; anything but `ok` is a RegistryError."""
        url = target if "://" in target else self.base + target
        hdrs = dict(headers or {})
        if self.basic:
            hdrs.update(self.reg.auth.get_auth_header())
        resp = self._call(url, method, data, hdrs)
        if resp.status_code == 401 and getattr(self.reg.auth, "token", None):
            self.reg.auth.token = None  # a token for another scope: let oras fetch a new one
            resp = self._call(url, method, data, dict(headers or {}))
        if resp.status_code in (401, 403):
            raise self._auth_error(resp)
        if resp.status_code not in ok:
            raise RegistryError(
                f"{what} on {self.ref.registry} failed: HTTP {resp.status_code}{_oci_errors(resp)}"
            )
        return resp

    def _call(
        self, url: str, method: str, data: bytes | None, headers: dict[str, str]
    ) -> requests.Response:
        """oras-py's auth-aware request, with transport errors turned into ours."""
        try:
            return self._transport(lambda: _oras_request(self.reg, url, method, data, headers))
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"request to {self.ref.api_host} failed: {exc}") from None
        except ValueError:  # oras: "Cannot respond to request for authentication."
            raise self._auth_error(None) from None

    def _transport(self, call: Callable[[], requests.Response]) -> requests.Response:
        """Run a request; connection and TLS failures become RegistryErrors naming the host."""
        where = self.ref.api_host
        try:
            return call()
        except requests.exceptions.SSLError:
            raise RegistryError(
                f"TLS handshake with registry {where} failed",
                hint="if it serves plain HTTP, push with --insecure",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            _log.debug("request to %s failed: %s", where, type(exc).__name__)
            scheme = "http" if self.plain else "https"
            raise RegistryError(
                f"cannot reach registry {where} over {scheme}",
                hint=f"is a registry listening on {where}? check the host and port"
                + ("" if self.plain else ", or use --insecure for a plain-HTTP registry"),
            ) from None

    def _auth_error(self, resp: requests.Response | None) -> RegistryError:
        """The message for a refused login or a refused operation."""
        registry = self.ref.registry
        if self.creds is None:
            return RegistryError(
                f"{registry} requires authentication and no credentials were found",
                hint=_CRED_HINT,
            )
        user = self.creds.username
        if resp is not None and resp.status_code == 403:
            return RegistryError(
                f"user {user} may not push to or read {registry}/{self.ref.repository}",
                hint="ask the registry owner for push access to this repository",
            )
        return RegistryError(
            f"authentication failed for {registry} (user {user})",
            hint=f"check the username and password (they came from {self.creds.source})",
        )

    def upload(self, blob: Blob) -> None:
        """Upload one blob (monolithic POST + PUT) unless the registry already has it."""
        repo = self.ref.repository
        what = f"uploading blob {blob.digest}"
        head = self.send("HEAD", f"/v2/{repo}/blobs/{blob.digest}", what=what, ok=(200, 404))
        if head.status_code == 200:
            _log.debug("blob %s already present", blob.digest)
            return
        start = self.send("POST", f"/v2/{repo}/blobs/uploads/", what=what, ok=(202,))
        location = start.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry gave no upload location")
        url = oras.utils.append_url_params(
            urljoin(self.base + "/", location), {"digest": blob.digest}
        )
        headers = {"Content-Type": "application/octet-stream"}
        done = self.send("PUT", url, what=what, ok=(201,), data=blob.data, headers=headers)
        _check_digest(done, blob.digest, what)
        _log.debug("uploaded %s (%d bytes)", blob.digest, blob.size)

    def put_manifest(self, image: Image, target: str) -> None:
        """PUT the exact manifest bytes under a tag or digest."""
        what = f"pushing manifest {image.digest}"
        resp = self.send(
            "PUT",
            f"/v2/{self.ref.repository}/manifests/{target}",
            what=what,
            ok=(201,),
            data=image.manifest,
            headers={"Content-Type": image.media_type},
        )
        _check_digest(resp, image.digest, what)

    def get_manifest(self, target: str, accept: tuple[str, ...]) -> tuple[bytes, str, str]:
        """GET a manifest's bytes, media type and digest, checked against the registry's."""
        what = f"reading manifest {self.ref.registry}/{self.ref.repository}:{target}"
        resp = self.send(
            "GET",
            f"/v2/{self.ref.repository}/manifests/{target}",
            what=what,
            headers={"Accept": ", ".join(accept)},
        )
        digest = sha256_digest(resp.content)
        _check_digest(resp, digest, what)
        media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return resp.content, media_type, digest

    def get_blob(self, digest: str) -> bytes:
        """GET a blob and check its content against the digest."""
        resp = self.send(
            "GET", f"/v2/{self.ref.repository}/blobs/{digest}", what=f"reading {digest}"
        )
        if sha256_digest(resp.content) != digest:
            raise RegistryError(f"blob {digest} from {self.ref.registry} does not match its digest")
        return resp.content


def _check_digest(resp: requests.Response, expected: str, what: str) -> None:
    """A Docker-Content-Digest header, when present, must be the digest we computed."""
    got = resp.headers.get("Docker-Content-Digest")
    if got and got != expected:
        raise RegistryError(f"{what}: the registry reports digest {got}, expected {expected}")


def _oci_errors(resp: requests.Response) -> str:
    """The codes and messages of an OCI error body, for an error message."""
    try:
        errors = resp.json().get("errors", [])
        text = "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors)
    except (ValueError, AttributeError, TypeError):
        return ""
    return f" ({text})" if text else ""


@dataclass(frozen=True)
class PushResult:
    """Where an image went and the manifest digest the registry confirmed."""

    reference: Reference
    digest: str
    media_type: str

    @property
    def pinned(self) -> str:
        """The reference pinned by digest: `host/repo@sha256:...`."""
        return f"{self.reference.registry}/{self.reference.repository}@{self.digest}"

    @property
    def sha256(self) -> str:
        """Bare hex manifest digest, the value for WasmPlugin `sha256`."""
        return self.digest.removeprefix("sha256:")

    @property
    def url(self) -> str:
        """The `oci://` URL for Istio's WasmPlugin `url` field."""
        return f"oci://{self.reference}"


class Pulled(NamedTuple):
    """A manifest read back from a registry and a function that fetches its blobs."""

    manifest: bytes
    media_type: str
    digest: str
    get_blob: Callable[[str], bytes]


def push(
    image: Image,
    reference: str | Reference,
    *,
    username: str | None = None,
    password: str | None = None,
    insecure: bool = False,
    docker_config: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PushResult:
    """Push blobs then the single manifest, read it back by tag and check the digest."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    if ref.digest and ref.digest != image.digest:
        raise WasmgenError(f"the reference pins {ref.digest} but the image is {image.digest}")
    creds = resolve_credentials(ref.registry, username, password, docker_config=docker_config)
    client = _Client(ref, creds, insecure, timeout)
    try:
        client.ping()
        for blob in image.blobs:
            client.upload(blob)
        target = ref.tag or image.digest
        client.put_manifest(image, target)
        data, media_type, digest = client.get_manifest(target, (image.media_type,))
    finally:
        client.close()
    if digest != image.digest or data != image.manifest:
        raise RegistryError(
            f"{ref.registry}/{ref.repository}:{target} now resolves to {digest}, "
            f"not the pushed {image.digest}",
            hint="did another push to the same tag race this one?",
        )
    if media_type and media_type != image.media_type:
        raise RegistryError(f"the registry serves the manifest as {media_type}")
    pushed = Reference(ref.registry, ref.repository, ref.tag)
    _log.info("pushed %s@%s", pushed, image.digest)
    return PushResult(pushed, image.digest, image.media_type)


def pull(
    reference: str | Reference,
    *,
    username: str | None = None,
    password: str | None = None,
    insecure: bool = False,
    docker_config: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    accept: tuple[str, ...] = MANIFEST_MEDIA_TYPES,
) -> Pulled:
    """Read a manifest (and, lazily, its blobs) back from a registry."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    creds = resolve_credentials(ref.registry, username, password, docker_config=docker_config)
    client = _Client(ref, creds, insecure, timeout)
    try:
        client.ping()
        data, media_type, digest = client.get_manifest(ref.digest or str(ref.tag), accept)
    except BaseException:
        client.close()
        raise
    if ref.digest and digest != ref.digest:
        client.close()
        raise RegistryError(f"{ref} answered with a manifest whose digest is {digest}")
    return Pulled(data, media_type, digest, client.get_blob)
