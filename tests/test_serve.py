"""wasmgen serve end to end: curl -> plugin -> the httpbin app from PyPI on loopback, and back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.registry_fixture import free_port
from tests.test_proxy_http1 import Proxy, RawUpstream, get
from wasmgen.pipeline import Built

pytestmark = pytest.mark.slow


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early: {proc.communicate()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout}s")


@pytest.fixture(scope="module")
def httpbin() -> Iterator[str]:
    """The httpbin app (the service the lab deploys) served by gunicorn on loopback."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "httpbin:app"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serve(example: str, built: Built, upstream: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmgen", "serve", str(ROOT / "examples" / f"{example}.yaml"),
         "-o", str(built.out_dir), "--upstream", upstream, "--port", str(port), "--proxy", "embedded"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    _wait_port(port, proc)
    return proc, port


def _curl(*args: str) -> str:
    return subprocess.run(
        ["curl", "-s", "--max-time", "20", *args], capture_output=True, text=True, check=True
    ).stdout


def test_lab_curl_head_through_the_plugin(built_examples: dict[str, Built], httpbin: str) -> None:
    """`curl -s --head http://127.0.0.1:N/get` shows the lab's two headers, and Ctrl-C stops cleanly."""
    proc, port = _serve("seed-lab", built_examples["seed-lab"], httpbin)
    try:
        head = _curl("--head", f"http://127.0.0.1:{port}/get")
        lines = head.lower().splitlines()
        assert lines[0].startswith("http/1.1 200")
        assert "header_1: first_header" in lines and "header_2: second_header" in lines
        assert "content-type: application/json" in lines
        length = next(int(ln.split(":")[1]) for ln in lines if ln.startswith("content-length:"))
        assert length > 0, "HEAD keeps the upstream's content-length"
        body = json.loads(_curl(f"http://127.0.0.1:{port}/get"))
        assert body["url"].endswith("/get")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err  # Ctrl-C, as the README's exit codes say
    assert "stopped" in err and "Traceback" not in err
    assert "HEAD /get -> 200" in err
    # Envoy is installed here (CI fetches it): the banner says why the embedded host runs
    assert "embedded host (--proxy embedded; without it, serve runs Envoy)" in err


def test_sigterm_lets_the_exchange_under_way_finish(
    built_examples: dict[str, Built], httpbin: str
) -> None:
    """Stopping waits (a few seconds at most) for an exchange in flight: the client gets its
    whole response, the exchange is logged, then serve exits 143."""
    proc, port = _serve("seed-lab", built_examples["seed-lab"], httpbin)
    slow = subprocess.Popen(["curl", "-s", "-i", "--max-time", "20", f"http://127.0.0.1:{port}/delay/2"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.0)  # the upstream is holding the request now
        proc.send_signal(signal.SIGTERM)
        answer, _ = slow.communicate(timeout=30)
    finally:
        _, err = proc.communicate(timeout=30)
    assert answer.startswith("HTTP/1.1 200") and "header_1: first_header" in answer.lower()
    assert "GET /delay/2 -> 200" in err, err
    assert err.index("GET /delay/2 -> 200") < err.index("stopped")
    assert proc.returncode == 143


def test_request_rules_change_what_the_upstream_sees(
    built_examples: dict[str, Built], httpbin: str
) -> None:
    """httpbin echoes the request: removed, renamed and set headers arrive as the rules say."""
    proc, port = _serve("request-guard", built_examples["request-guard"], httpbin)
    try:
        echoed = json.loads(_curl("-X", "POST", "-H", "x-authenticated-user: mallory", "-H", "x-debug-level: 9",
                                  "-H", "x-api-version: 2", f"http://127.0.0.1:{port}/anything"))  # fmt: skip
        headers = {k.lower(): v for k, v in echoed["headers"].items()}
        assert "x-authenticated-user" not in headers and "x-debug-level" not in headers
        assert "x-api-version" not in headers and headers["api-version"] == "2"
        assert headers["x-forwarded-by"] == "request-guard"
        assert headers["x-trace-tags"] == "edge"
        local = subprocess.run(["curl", "-s", "-i", f"http://127.0.0.1:{port}/admin/users"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert local.startswith("HTTP/1.1 403") and local.endswith("forbidden\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "GET /admin/users -> 403 (local response from the plugin)" in err
    assert "POST /anything -> 200" in err


def test_upstream_down_is_a_502(built_examples: dict[str, Built]) -> None:
    """An unreachable upstream answers 502 with a reason instead of hanging or crashing."""
    proc, port = _serve("seed-lab", built_examples["seed-lab"], f"http://127.0.0.1:{free_port()}")
    try:
        out = subprocess.run(
            ["curl", "-s", "-i", f"http://127.0.0.1:{port}/get"], capture_output=True, text=True
        ).stdout
        assert out.startswith("HTTP/1.1 502") and "upstream 127.0.0.1:" in out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 130


def test_port_0_and_bad_traffic_one_line_each(built_examples: dict[str, Built]) -> None:
    """--port 0 reports the port it got; malformed requests, a bad upstream and clients that
    vanish get a reply (or nothing) and one log line each, never a traceback."""
    up = RawUpstream(b"HTTP/1.1 abc NOPE\r\ncontent-length: 2\r\n\r\nok")
    spec = ROOT / "examples" / "seed-lab.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmgen", "serve", str(spec), "-o", str(built_examples["seed-lab"].out_dir),
         "--upstream", up.url, "--port", "0", "--proxy", "embedded"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = 0
        while not port and (line := proc.stderr.readline()):
            if line.startswith("serving http://127.0.0.1:"):
                port = int(line.split(":")[2].split(" ")[0])
        assert port, "no serving line"
        client = Proxy(port)
        bad, _ = client.send(get("/x", b"Content-Length: abc\r\n", b"POST"))
        gateway, _ = client.send(get("/bad"))
        assert bad is not None and bad.status == 400
        assert gateway is not None and gateway.status == 502
        for raw in (
            b"GET /half HTTP/1.1\r\nHo",
            get("/gone", b"Content-Length: 9\r\n", b"POST") + b"x",
        ):
            wire = client.connect()
            wire.sock.sendall(raw)
            time.sleep(0.2)
            wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            wire.sock.close()  # a reset
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        up.close()
    assert proc.returncode == 143 and "Traceback" not in err, err  # SIGTERM
    lines = err.splitlines()
    assert lines[-1] == "stopped"
    assert lines[-5].startswith("POST /x -> 400 (invalid content-length")
    assert lines[-4].startswith("GET /bad -> 502 (invalid upstream response: malformed status line")
    assert lines[-3].startswith("incomplete request -> no reply")
    assert lines[-2].startswith("POST /gone -> no reply (client closed mid-body")


__all__ = ["Path"]
