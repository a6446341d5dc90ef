"""Registry credentials: arguments, environment variables, the docker config and its helpers."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from wasmgen.errors import RegistryError, WasmgenError
from wasmgen.records import record
from wasmgen.ship.reference import DOCKER_HUB_HOSTS

_log = logging.getLogger(__name__)

USERNAME_ENV = "WASMGEN_REGISTRY_USERNAME"
PASSWORD_ENV = "WASMGEN_REGISTRY_PASSWORD"
CREDENTIALS_HINT = (
    f"set {USERNAME_ENV} and {PASSWORD_ENV}, pass --username with --password-stdin, "
    "or log in with `docker login` / `oras login` (the docker config file, or DOCKER_CONFIG)"
)


@record
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
                hint=CREDENTIALS_HINT,
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
