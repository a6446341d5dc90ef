"""Push an image to an OCI registry through oras-py, read it back, and explain failures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

import oras.auth
import oras.provider
import oras.utils
import requests
from requests.adapters import HTTPAdapter

from wasmgen.errors import RegistryError, WasmgenError
from wasmgen.records import record
from wasmgen.ship.credentials import CREDENTIALS_HINT, Credentials, resolve_credentials
from wasmgen.ship.oci import MANIFEST_MEDIA_TYPES, Blob, Image, sha256_digest
from wasmgen.ship.reference import LOOPBACK_HOSTS, Reference, parse_reference, uses_plain_http

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0

# oras-py's request helper (auth challenges, token and basic flows) without its retry
# decorator, which sleeps for minutes on a connection error before giving up.
_do_request = oras.provider.Registry.do_request
_oras_request: Callable[..., requests.Response] = getattr(_do_request, "__wrapped__", _do_request)


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
                hint=CREDENTIALS_HINT,
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


@record
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
