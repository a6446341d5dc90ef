"""Pushing to a real registry (distribution 2.8), reading back, auth, and clear failures."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from wasmgen.errors import RegistryError, WasmgenError
from wasmgen.ship.credentials import PASSWORD_ENV, USERNAME_ENV, Credentials, resolve_credentials
from wasmgen.ship.extract import extract_plugin
from wasmgen.ship.oci import FORMATS, MANIFEST_MEDIA_TYPES, Format, build_image
from wasmgen.ship.reference import Reference, parse_reference, uses_plain_http
from wasmgen.ship.registry import pull, push

HEX = "a" * 64


@pytest.fixture(autouse=True)
def _isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's own docker login and WASMGEN_REGISTRY_* out of every test."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in (USERNAME_ENV, PASSWORD_ENV, "ORAS_USER", "ORAS_PASS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every log record, at DEBUG, from every logger (oras-py's included)."""
    loggers = [logging.getLogger(name) for name in ("oras", "oras.logger", "wasmgen")]
    levels = [logger.level for logger in loggers]
    caplog.set_level(logging.DEBUG)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def _docker_config(directory: Path, auths: dict[str, Any]) -> Path:
    """Write a docker config.json with the given `auths` and return its directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": auths}), encoding="utf-8")
    return directory


def _basic(user: str, password: str) -> str:
    """The base64 `auth` value docker login writes."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:5000/wasm/plugin:v1", Reference("127.0.0.1:5000", "wasm/plugin", "v1")),
        ("oci://ghcr.io/acme/hdr:1.2.3-rc_1", Reference("ghcr.io", "acme/hdr", "1.2.3-rc_1")),
        ("localhost/plugin", Reference("localhost", "plugin", "latest")),
        (f"[::1]:5000/a/b@sha256:{HEX}", Reference("[::1]:5000", "a/b", None, f"sha256:{HEX}")),
        (f"r.io/a__b/c-d.e:t@sha256:{HEX}", Reference("r.io", "a__b/c-d.e", "t", f"sha256:{HEX}")),
        ("docker.io/nginx:1", Reference("docker.io", "library/nginx", "1")),
    ],
)
def test_parse_reference_accepts(text: str, want: Reference) -> None:
    assert parse_reference(text) == want


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plugin:v1", "needs a registry host"),
        ("acme/plugin:v1", "must start with a registry host"),
        ("ghcr.io/Acme/plugin:v1", "'Acme' must be lowercase"),
        ("ghcr.io/acme/plugin:-bad", "tag '-bad'"),
        ("ghcr.io/acme/plugin:" + "t" * 129, "tag"),
        ("ghcr.io/acme/plug!n:v1", "'plug!n' is invalid"),
        ("ghcr.io/acme//plugin", "'' is invalid"),
        ("ghcr.io/acme/plugin@sha256:abc", "is not sha256"),
        ("https://ghcr.io/acme/plugin", "only oci://"),
        ("bad_host.io:x/p:v1", "not a valid registry host"),
    ],
)
def test_parse_reference_rejects(text: str, message: str) -> None:
    with pytest.raises(WasmgenError, match=message) as info:
        parse_reference(text)
    assert not isinstance(info.value, RegistryError)
    assert info.value.hint


@pytest.mark.parametrize(
    ("registry", "insecure", "plain"),
    [
        ("localhost:5000", False, True),
        ("127.0.0.1:41234", False, True),
        ("[::1]:5000", False, True),
        ("localhost", False, True),
        ("ghcr.io", False, False),
        ("registry.internal:5000", False, False),
        ("registry.internal:5000", True, True),
    ],
)
def test_plain_http_only_for_loopback_or_insecure(
    registry: str, insecure: bool, plain: bool
) -> None:
    assert uses_plain_http(registry, insecure) is plain


@pytest.mark.parametrize("fmt", FORMATS)
def test_push_reads_back_and_istio_can_extract(
    fmt: Format, oci_registry: Any, tiny_wasm: bytes
) -> None:
    image = build_image(tiny_wasm, fmt)
    ref = oci_registry.ref(f"wasmgen/{fmt}")
    result = push(image, ref)
    assert result.digest == image.digest
    assert result.pinned == f"{oci_registry.host}/wasmgen/{fmt}@{image.digest}"
    assert result.url == f"oci://{ref}" and result.sha256 == image.sha256

    # Straight over the registry API, with the Accept header a client must send.
    resp = requests.get(
        f"{oci_registry.url}/v2/wasmgen/{fmt}/manifests/v1",
        headers={"Accept": image.media_type},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.content == image.manifest
    assert resp.headers["Docker-Content-Digest"] == image.digest
    assert resp.headers["Content-Type"] == image.media_type

    pulled = pull(ref)
    assert (pulled.manifest, pulled.media_type, pulled.digest) == (
        image.manifest,
        image.media_type,
        image.digest,
    )
    assert extract_plugin(pulled.manifest, pulled.get_blob) == tiny_wasm
    by_digest = pull(result.pinned)
    assert by_digest.digest == image.digest


@pytest.mark.parametrize("fmt", FORMATS)
def test_skopeo_sees_our_digest(fmt: Format, oci_registry: Any, tiny_wasm: bytes) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is not installed; .ci/run installs it (apt-get install -y skopeo)")
    image = build_image(
        tiny_wasm, fmt, annotations={"tool": "wasmgen"} if fmt != "docker" else None
    )
    push(image, oci_registry.ref(f"skopeo/{fmt}", "t1"))
    target = f"docker://{oci_registry.host}/skopeo/{fmt}:t1"
    done = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", target], capture_output=True, check=True
    )
    assert "sha256:" + hashlib.sha256(done.stdout).hexdigest() == image.digest


def test_oci_manifest_needs_the_oci_accept_header(oci_registry: Any, tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm, "oci")
    push(image, oci_registry.ref("accept/oci"))
    url = f"{oci_registry.url}/v2/accept/oci/manifests/v1"
    docker_only = requests.get(url, headers={"Accept": MANIFEST_MEDIA_TYPES[1]}, timeout=10)
    assert docker_only.status_code == 404  # distribution 2.8 hides OCI manifests from it
    assert requests.get(url, headers={"Accept": image.media_type}, timeout=10).ok


def test_repush_is_idempotent_and_retags(oci_registry: Any, tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm)
    first = push(image, oci_registry.ref("again/plugin", "a"))
    second = push(image, oci_registry.ref("again/plugin", "a"))
    third = push(image, oci_registry.ref("again/plugin", "b"))
    assert first.digest == second.digest == third.digest == image.digest
    by_digest = push(image, f"{oci_registry.host}/again/plugin@{image.digest}")
    assert by_digest.reference.tag is None and by_digest.digest == image.digest


def test_reference_pinned_to_another_digest_is_refused(oci_registry: Any, tiny_wasm: bytes) -> None:
    with pytest.raises(WasmgenError, match="pins sha256:aaaa"):
        push(build_image(tiny_wasm), f"{oci_registry.host}/pin/x@sha256:{HEX}")


def test_auth_from_environment(
    oci_auth_registry: Any, tiny_wasm: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USERNAME_ENV, oci_auth_registry.username)
    monkeypatch.setenv(PASSWORD_ENV, oci_auth_registry.password)
    image = build_image(tiny_wasm, "docker")
    result = push(image, oci_auth_registry.ref("env/plugin"))
    assert result.digest == image.digest
    pulled = pull(oci_auth_registry.ref("env/plugin"))
    assert extract_plugin(pulled.manifest, pulled.get_blob) == tiny_wasm


def test_auth_from_docker_config(
    oci_auth_registry: Any, tiny_wasm: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    auth = _basic(oci_auth_registry.username, oci_auth_registry.password)
    config_dir = _docker_config(
        tmp_path / "docker",
        {
            "ghcr.io": {"auth": _basic("x", "y")},
            f"http://{oci_auth_registry.host}/v2/": {"auth": auth},
        },
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    image = build_image(tiny_wasm, "wasm-artifact")
    assert push(image, oci_auth_registry.ref("cfg/plugin")).digest == image.digest
    assert pull(oci_auth_registry.ref("cfg/plugin")).digest == image.digest
    written = {p.name for p in config_dir.iterdir()}
    assert written == {"config.json"}  # we read the login, we never write one


def test_auth_from_arguments_wins(oci_auth_registry: Any, tiny_wasm: bytes) -> None:
    creds = resolve_credentials(
        oci_auth_registry.host,
        oci_auth_registry.username,
        oci_auth_registry.password,
        environ={USERNAME_ENV: "someone", PASSWORD_ENV: "else"},
    )
    assert creds is not None and creds.username == oci_auth_registry.username
    assert oci_auth_registry.password not in repr(creds)
    result = push(
        build_image(tiny_wasm),
        oci_auth_registry.ref("args/plugin"),
        username=oci_auth_registry.username,
        password=oci_auth_registry.password,
    )
    assert oci_auth_registry.password not in repr(result)


def test_wrong_password_is_clear_and_never_leaked(
    oci_auth_registry: Any,
    tiny_wasm: bytes,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    wrong = "wrong-" + oci_auth_registry.password[::-1]
    secrets = [wrong, _basic(oci_auth_registry.username, wrong)]
    failures: list[WasmgenError] = []
    for attempt in ("arguments", "environment", "docker config"):
        kwargs: dict[str, Any] = {}
        if attempt == "arguments":
            kwargs = {"username": oci_auth_registry.username, "password": wrong}
        elif attempt == "environment":
            monkeypatch.setenv(USERNAME_ENV, oci_auth_registry.username)
            monkeypatch.setenv(PASSWORD_ENV, wrong)
        else:
            monkeypatch.delenv(USERNAME_ENV)
            monkeypatch.delenv(PASSWORD_ENV)
            config = _docker_config(tmp_path / "d", {oci_auth_registry.host: {"auth": secrets[1]}})
            monkeypatch.setenv("DOCKER_CONFIG", str(config))
        for action in (push, pull):
            with pytest.raises(RegistryError) as info:
                if action is push:
                    push(build_image(tiny_wasm), oci_auth_registry.ref("denied/x"), **kwargs)
                else:
                    pull(oci_auth_registry.ref("denied/x"), **kwargs)
            failures.append(info.value)
    user, host = oci_auth_registry.username, oci_auth_registry.host
    for error in failures:
        assert error.message == f"authentication failed for {host} (user {user})"
        assert error.hint and "password" in error.hint
    out, err = capfd.readouterr()
    seen = "\n".join(
        [out, err, everything_logged.text]
        + [f"{e.render()} {e!r} {e.__cause__!r} {e.__context__!r}" for e in failures]
    )
    for secret in [*secrets, oci_auth_registry.password]:
        assert secret not in seen


def test_no_credentials_for_an_auth_registry(oci_auth_registry: Any, tiny_wasm: bytes) -> None:
    with pytest.raises(RegistryError, match="requires authentication and no credentials") as info:
        push(build_image(tiny_wasm), oci_auth_registry.ref("anon/x"))
    assert info.value.hint and USERNAME_ENV in info.value.hint


def test_half_given_credentials_are_a_user_error(oci_auth_registry: Any, tiny_wasm: bytes) -> None:
    with pytest.raises(WasmgenError, match=f"no password for user {oci_auth_registry.username}"):
        push(
            build_image(tiny_wasm),
            oci_auth_registry.ref("half/x"),
            username=oci_auth_registry.username,
        )


def test_unreadable_docker_config_is_reported_without_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.json").write_text('{"auths": {"r.io": {"auth": "not base64!"}}}')
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    with pytest.raises(WasmgenError, match="is not user:password") as info:
        resolve_credentials("r.io")
    assert "not base64" not in info.value.render()
    (config / "config.json").write_text("{secret-ish garbage")
    with pytest.raises(WasmgenError, match="not a JSON file") as info:
        resolve_credentials("r.io")
    assert "garbage" not in info.value.render()


def test_docker_config_keys_are_normalized(tmp_path: Path) -> None:
    path = (
        _docker_config(
            tmp_path,
            {
                "https://index.docker.io/v1/": {"auth": _basic("hub", "p1")},
                "https://ghcr.io": {"username": "gh", "password": "p2"},
            },
        )
        / "config.json"
    )
    assert resolve_credentials("docker.io", environ={}, docker_config=path) == Credentials(
        "hub", "p1", f"docker config {path}"
    )
    found = resolve_credentials("ghcr.io", environ={}, docker_config=path)
    assert found is not None and (found.username, found.password) == ("gh", "p2")
    assert resolve_credentials("quay.io", environ={}, docker_config=path) is None


def test_unreachable_registry_is_a_clear_fast_error(closed_port: int, tiny_wasm: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        push(build_image(tiny_wasm), f"127.0.0.1:{closed_port}/nobody/home:v1")
    assert time.monotonic() - started < 10  # no minutes of oras-py retry sleeps
    assert info.value.message == f"cannot reach registry 127.0.0.1:{closed_port} over http"
    assert info.value.hint and f"127.0.0.1:{closed_port}" in info.value.hint
    with pytest.raises(RegistryError, match=f"127.0.0.1:{closed_port}"):
        pull(f"127.0.0.1:{closed_port}/nobody/home:v1")


def test_something_that_is_not_a_registry(tmp_path: Path, tiny_wasm: bytes) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...)"
        port = int(line.split(" port ")[1].split()[0])
        with pytest.raises(RegistryError, match="HTTP 404: not an OCI registry API"):
            push(build_image(tiny_wasm), f"127.0.0.1:{port}/x/y:z")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


def test_token_auth_push_with_login_and_anonymous_pull(
    oci_token_registry: Any, tiny_wasm: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = build_image(tiny_wasm, "oci")
    ref = oci_token_registry.ref("token/plugin")
    with pytest.raises(RegistryError, match="requires authentication and no credentials"):
        push(image, ref)  # an anonymous token only grants pull
    monkeypatch.setenv(USERNAME_ENV, oci_token_registry.username)
    monkeypatch.setenv(PASSWORD_ENV, oci_token_registry.password)
    assert push(image, ref).digest == image.digest  # token for pull, then a new one for push
    monkeypatch.delenv(USERNAME_ENV)
    monkeypatch.delenv(PASSWORD_ENV)
    pulled = pull(ref)
    assert extract_plugin(pulled.manifest, pulled.get_blob) == tiny_wasm


def test_token_auth_wrong_password(
    oci_token_registry: Any, tiny_wasm: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = "nope-" + oci_token_registry.password
    with pytest.raises(RegistryError) as info:
        push(
            build_image(tiny_wasm),
            oci_token_registry.ref("token/denied"),
            username=oci_token_registry.username,
            password=wrong,
        )
    host, user = oci_token_registry.host, oci_token_registry.username
    assert info.value.message == f"authentication failed for {host} (user {user})"
    out, err = capfd.readouterr()
    assert wrong not in f"{out}{err}{info.value.render()}"


def test_registry_refusals_carry_its_error_codes(oci_registry: Any, tiny_wasm: bytes) -> None:
    image = build_image(tiny_wasm)
    missing_layer = dataclasses.replace(image, layers=())  # manifest still names the layer
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN") as info:
        push(missing_layer, oci_registry.ref("refused/x"))
    assert info.value.message.startswith(f"pushing manifest {image.digest} on {oci_registry.host}")
