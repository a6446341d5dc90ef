"""Pytest fixtures: a real `docker-registry` (distribution 2.8) on 127.0.0.1: open, basic, token."""

from __future__ import annotations

import base64
import datetime
import importlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

REGISTRY_BINARY = "docker-registry"
INSTALL_HINT = (
    "`docker-registry` (Debian package docker-registry, distribution 2.8) is not on PATH; "
    ".ci/run installs it (apt-get install -y docker-registry)"
)
TEST_USER = "wasmgen-ci"
STARTUP_SECONDS = 20.0


def make_wasm(payload: bytes = b"wasmgen test module") -> bytes:
    """A tiny valid core Wasm module: the header plus one custom section holding `payload`."""
    name = b"wasmgen"
    body = bytes([len(name)]) + name + payload
    return b"\0asm\x01\0\0\0" + b"\x00" + _leb128(len(body)) + body


def _leb128(value: int) -> bytes:
    """Unsigned LEB128, the integer encoding Wasm section sizes use."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for an htpasswd line (distribution 2.8 accepts bcrypt only)."""
    try:
        bcrypt = importlib.import_module("bcrypt")  # optional: `pip install bcrypt`
        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode())
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # stdlib until Python 3.13; libxcrypt does bcrypt ($2b$)

            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
        except (ImportError, AttributeError):
            hashed = None
    if not hashed or not hashed.startswith("$2"):
        pytest.fail("need a bcrypt implementation for the htpasswd file: pip install bcrypt")
    return hashed


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: its host:port, storage, log, and the login it requires (if any)."""

    host: str
    storage: Path
    log: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the registry API."""
        return f"http://{self.host}"

    def ref(self, repository: str, tag: str = "v1") -> str:
        """An image reference on this registry."""
        return f"{self.host}/{repository}:{tag}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(workdir: Path, port: int, auth: dict[str, object] | None) -> Path:
    """A distribution config (JSON is YAML): loopback address, temp storage, optional auth."""
    config: dict[str, object] = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth is not None:
        config["auth"] = auth
    path = workdir / "config.yml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _answering(url: str) -> bool:
    """Whether GET /v2/ gets an HTTP answer (200, or 401 with auth on)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return int(resp.status) == 200
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


@contextmanager
def running_registry(
    workdir: Path,
    auth: dict[str, object] | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[LocalRegistry]:
    """Start `docker-registry serve` on a free loopback port; stop it on exit."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        pytest.fail(INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    for attempt in range(3):
        port = free_port()
        config = _write_config(workdir, port, auth)
        log = workdir / f"registry-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while proc.poll() is None and time.monotonic() < deadline:
                if _answering(f"http://127.0.0.1:{port}/v2/"):
                    user, password = login if login else (None, None)
                    yield LocalRegistry(
                        f"127.0.0.1:{port}", workdir / "storage", log, user, password
                    )
                    return
                time.sleep(0.05)
            output = log.read_text(encoding="utf-8", errors="replace")
            if "address already in use" in output:
                continue
            pytest.fail(f"docker-registry did not answer on 127.0.0.1:{port}:\n{output[-2000:]}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    pytest.fail("docker-registry could not get a free port in 3 attempts")


class TokenIssuer:
    """A minimal Docker token server: ES256 JWTs, anonymous pull, push only for the login."""

    def __init__(self, workdir: Path, login: tuple[str, str]) -> None:
        try:
            self._crypto = _load_crypto()
        except ImportError:
            pytest.fail("the token-auth registry fixture needs `pip install cryptography`")
        ec, hashes, serialization, x509 = self._crypto
        self.login, self.requests = login, 0
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "wasmgen-test")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert = workdir / "token-cert.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = issuer.answer(self.path, self.headers.get("Authorization", ""))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def auth_config(self) -> dict[str, object]:
        """The registry's `auth` block pointing at this issuer."""
        token = {"realm": self.realm, "service": "wasmgen-test", "issuer": "wasmgen-test"}
        return {"token": {**token, "rootcertbundle": str(self.cert)}}

    def answer(self, path: str, authorization: str) -> tuple[int, bytes]:
        """Issue a token for the requested scopes (anonymous: pull only), or refuse the login."""
        self.requests += 1
        basic = base64.b64encode(":".join(self.login).encode()).decode()
        if authorization and authorization != f"Basic {basic}":
            return 401, b'{"details":"bad login"}'
        access: list[dict[str, object]] = []
        for scope in parse_qs(urlparse(path).query).get("scope", []):
            kind, name, actions = scope.split(":", 2)
            allowed = [a for a in actions.split(",") if authorization or a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        return 200, json.dumps({"token": self._jwt(access)}).encode()

    def _jwt(self, access: list[dict[str, object]]) -> str:
        """An ES256-signed registry token granting `access`."""
        ec, hashes, _, _ = self._crypto
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": "wasmgen-test",
            "sub": self.login[0],
            "aud": "wasmgen-test",
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = _decode_dss(der)
        return f"{signing}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _load_crypto() -> tuple[Any, Any, Any, Any]:
    """The parts of `cryptography` the token issuer uses (imported only when needed)."""
    ec = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ec")
    hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
    serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
    x509 = importlib.import_module("cryptography.x509")
    importlib.import_module("cryptography.x509.oid")
    return ec, hashes, serialization, x509


def _decode_dss(der: bytes) -> tuple[int, int]:
    """(r, s) of a DER ECDSA signature."""
    utils = importlib.import_module("cryptography.hazmat.primitives.asymmetric.utils")
    r, s = utils.decode_dss_signature(der)
    return int(r), int(s)


def _b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_login() -> tuple[str, str]:
    """A test login with a password unique enough to search logs and errors for."""
    return TEST_USER, "pw-" + secrets.token_urlsafe(18)


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An open (no auth) registry on 127.0.0.1 for the whole test session."""
    with running_registry(tmp_path_factory.mktemp("registry-open")) as registry:
        yield registry


@pytest.fixture(scope="session")
def oci_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with htpasswd basic auth; the login is on the returned object."""
    workdir, login = tmp_path_factory.mktemp("registry-auth"), _new_login()
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{login[0]}:{bcrypt_hash(login[1])}\n", encoding="utf-8")
    auth: dict[str, object] = {"htpasswd": {"realm": "wasmgen-test", "path": str(htpasswd)}}
    with running_registry(workdir, auth, login) as registry:
        yield registry


@pytest.fixture(scope="session")
def oci_token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with Docker token (Bearer) auth, as ghcr.io or Docker Hub use."""
    workdir, login = tmp_path_factory.mktemp("registry-token"), _new_login()
    issuer = TokenIssuer(workdir, login)
    thread = threading.Thread(target=issuer.server.serve_forever, daemon=True)
    thread.start()
    try:
        with running_registry(workdir, issuer.auth_config(), login) as registry:
            yield registry
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener, for unreachable-registry tests."""
    return free_port()


@pytest.fixture(scope="session")
def tiny_wasm() -> bytes:
    """A small valid Wasm module to package (no Go toolchain needed)."""
    return make_wasm()
