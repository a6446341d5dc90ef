"""Compile a generated Go project to a reproducible, cached .wasm; run its Go tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from wasmgen.artifacts.lock import locked
from wasmgen.build.toolchain import GoToolchain, TinyGoToolchain, find_go, find_tinygo
from wasmgen.errors import BuildError
from wasmgen.fsutil import write_atomic
from wasmgen.proc import group_kwargs, kill_group
from wasmgen.records import record

if TYPE_CHECKING:  # rich loads with the first build's output, not with every command
    from rich.console import Console

ToolchainKind = Literal["go", "tinygo"]

GO_BUILD_FLAGS: tuple[str, ...] = (
    "-buildmode=c-shared",  # a reactor exporting _initialize; without it Envoy rejects _start
    "-trimpath",  # no absolute source paths in the binary: same bytes from any directory
    "-buildvcs=false",  # no git revision/dirty stamp in the build info
    "-ldflags=-s -w",  # drop the symbol table and DWARF (~60 KB smaller)
)
"""Flags after `go build`; checked byte-for-byte reproducible across directories and caches."""

WASM_MAGIC = b"\0asm"
BUILDINFO_SUFFIX = ".buildinfo.json"
CACHE_SCHEMA = 1
OUTPUT_PLACEHOLDER = "<output>"
_DROPPED_ENV = ("GOEXPERIMENT", "GOWASM")  # would change the bytes behind the cache key's back


@record
class BuildResult:
    """A compiled plugin on disk."""

    path: Path
    size: int
    sha256: str
    cached: bool
    command: list[str]
    toolchain: str = ""  # e.g. go1.26.8 or tinygo0.33.0


@record
class GoTestResult:
    """The outcome of `go test` in a project."""

    ok: bool
    returncode: int
    output: str
    command: list[str]
    seconds: float


class GoTestFailed(BuildError):
    """`go test` failed; the output is in the message and in `.output`."""

    def __init__(self, message: str, output: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.output = output


def go_command(out: Path, go: str | Path = "go") -> list[str]:
    """The argv that builds the package in the current directory into `out` (GOOS=wasip1)."""
    return [str(go), "build", *GO_BUILD_FLAGS, "-o", str(out), "."]


TINYGO_BUILD_FLAGS: tuple[str, ...] = (
    "-scheduler=none",  # no goroutines: no asyncify, no scheduler in the module
    "-target=wasi",  # a WASI command: Envoy runs its _start, which returns (0.33 never exits)
    "-no-debug",  # no DWARF: seed-lab 112 KB -> 20 KB
    # No libc malloc export. Envoy calls an exported `malloc` in preference to
    # proxy_on_memory_allocate, and TinyGo's keeps every block in a map until `free`, which no
    # host calls: each request's header copies would stay on the heap for good.
    "-tags=custommalloc",
)
"""Flags after `tinygo build` (TinyGo 0.32-0.34)."""


def tinygo_command(project_dir: Path, out: Path, tinygo: str | Path = "tinygo") -> list[str]:
    """The argv that builds `project_dir` (run with it as cwd) with TinyGo into `out`."""
    del project_dir  # the command builds "." and runs with cwd=project_dir
    return [str(tinygo), "build", "-o", str(out), *TINYGO_BUILD_FLAGS, "."]


def buildinfo_path(output: Path) -> Path:
    """Where the cache record for `output` lives: next to it."""
    return output.with_name(output.name + BUILDINFO_SUFFIX)


def escape(text: str) -> str:
    """Text shown as it is in rich markup (rich loads with the first build's output)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _default_console(console: Console | None) -> Console:
    """The console to stream to: the caller's, else stderr."""
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=True)


def _uses_vendor(project_dir: Path) -> bool:
    """True when the project vendors its dependencies."""
    return (project_dir / "vendor" / "modules.txt").is_file()


def _base_go_env(vendor: bool) -> dict[str, str]:
    """Settings every go invocation of ours shares."""
    return {
        "GOWORK": "off",  # a go.work in a parent directory must not change the build
        "GOTOOLCHAIN": "local",  # the version in the cache key is the one that compiles
        # Override the user's GOFLAGS (it could add -tags or -ldflags); -mod=mod lets a
        # project without a complete go.sum build (go adds the missing sums).
        "GOFLAGS": "-mod=vendor" if vendor else "-mod=mod",
    }


def go_build_env(go: GoToolchain, project_dir: Path) -> dict[str, str]:
    """Environment overrides for `go build` to wasip1 (also part of the cache key)."""
    env = _base_go_env(_uses_vendor(project_dir))
    return {**env, "GOOS": "wasip1", "GOARCH": "wasm", "CGO_ENABLED": "0", **go.env()}


def _tinygo_env(project_dir: Path) -> dict[str, str]:
    """Environment overrides for `tinygo build`."""
    return _base_go_env(_uses_vendor(project_dir))


def _process_env(overlay: Mapping[str, str], drop: Sequence[str] = ()) -> dict[str, str]:
    """os.environ minus `drop`, plus `overlay`."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(overlay)
    return env


def _stream(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], console: Console
) -> tuple[int, str]:
    """Run argv, echo each output line to the console as it arrives, return (rc, output)."""
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            **group_kwargs(),
        )
    except OSError as exc:
        raise BuildError(f"could not run {argv[0]}: {exc}") from exc
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            console.out(line.rstrip("\n"), highlight=False)
        rc = proc.wait()
    except BaseException:  # Ctrl-C or SIGTERM: go build's compilers must not keep running
        kill_group(proc)
        raise
    finally:
        proc.stdout.close()
    return rc, "".join(lines)


def _source_files(project_dir: Path, skip: set[Path]) -> Iterator[Path]:
    """Files that decide the build: *.go, go.mod, go.sum, vendor/, and go:embed targets.

    *_test.go files do not: go build and tinygo build never compile them, so a spec whose
    test cases changed (or, on the dynamic backend, whose rules changed: they live in
    pluginConfig) reuses the module it built before."""
    go_files: list[Path] = []
    others: list[Path] = []
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in files:
            path = Path(root) / name
            if path in skip or name.startswith("."):
                continue
            rel = path.relative_to(project_dir)
            if name.endswith("_test.go"):
                continue
            if name.endswith(".go"):
                go_files.append(path)
            elif name in ("go.mod", "go.sum") or rel.parts[0] == "vendor":
                yield path
            else:
                others.append(path)
    yield from go_files
    if any(b"//go:embed" in p.read_bytes() for p in go_files):
        yield from others  # embedded files are inputs too; hash everything to be safe


def _sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(
    project_dir: Path,
    toolchain_id: str,
    command: Sequence[str],
    env: Mapping[str, str],
    skip: Sequence[Path] = (),
) -> str:
    """sha256 over toolchain, command, build env and every input file with its relative path."""
    head = {
        "schema": CACHE_SCHEMA,
        "toolchain": toolchain_id,
        "command": list(command[1:]),  # the version identifies the compiler, not its path
        "env": {k: env[k] for k in sorted(env) if k != "GOROOT"},
    }
    digest = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    files = sorted(_source_files(project_dir, {p.resolve() for p in skip}))
    for path in files:
        rel = path.relative_to(project_dir).as_posix()
        digest.update(f"\0{rel}\0{_sha256_file(path)}".encode())
    return digest.hexdigest()


def _cached(output: Path, key: str) -> tuple[int, str] | None:
    """(size, sha256) when `output` exists and its record matches `key`, else None."""
    record_path = buildinfo_path(output)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or not output.is_file():
        return None
    sha = _sha256_file(output)
    if sha != record.get("sha256"):
        return None  # the output was replaced or damaged since it was recorded
    return output.stat().st_size, sha


def _download_modules(
    go: GoToolchain, project_dir: Path, env: Mapping[str, str], console: Console
) -> None:
    """Fetch missing modules with `go mod download -x` (silent when all are cached)."""
    if _uses_vendor(project_dir):
        return
    argv = [str(go.path), "mod", "download", "-x"]
    rc, out = _stream(argv, project_dir, env, console)
    if rc != 0:
        raise BuildError(
            f"could not download the Go modules of {project_dir} (go mod download, exit {rc}):\n"
            + out.strip(),
            hint="check network access to the Go module proxy (GOPROXY, `go env GOPROXY`) "
            "and that go.mod names versions that exist",
        )


def _resolve(toolchain: ToolchainKind) -> tuple[GoToolchain | TinyGoToolchain, str, str]:
    """The toolchain object, its id for the cache key, and its short version string."""
    if toolchain == "go":
        go = find_go()
        return go, f"go {go.version_string}", go.version_string
    if toolchain == "tinygo":
        tiny = find_tinygo()
        return tiny, f"tinygo {tiny.raw}", tiny.version_string
    raise BuildError(f"unknown toolchain {toolchain!r}", hint="use 'go' or 'tinygo'")


def compile_project(
    project_dir: Path,
    output: Path,
    toolchain: ToolchainKind = "go",
    console: Console | None = None,
    *,
    force: bool = False,
) -> BuildResult:
    """Build `project_dir` into `output`, or reuse it when nothing that matters changed; both
    directories stay locked meanwhile, so no other wasmgen writes them during the build."""
    project_dir = Path(project_dir).resolve()
    output = Path(output).resolve()
    with ExitStack() as hold:
        if os.access(project_dir, os.W_OK):  # a read-only tree has no other writer to keep out
            hold.enter_context(locked(project_dir))
        hold.enter_context(locked(output.parent))
        return _compile_locked(project_dir, output, toolchain, console, force)


def _compile_locked(
    project_dir: Path, output: Path, toolchain: ToolchainKind, console: Console | None, force: bool
) -> BuildResult:
    console = _default_console(console)
    if not (project_dir / "go.mod").is_file():
        raise BuildError(f"{project_dir} is not a Go module (no go.mod)")
    if buildinfo_path(output).is_dir():
        raise BuildError(
            f"{buildinfo_path(output)} is a directory; wasmgen keeps its build record there",
            hint="remove that directory",
        )
    if output.is_dir():
        raise BuildError(
            f"output {output} is a directory", hint="give a file name like plugin.wasm"
        )
    tool, toolchain_id, version = _resolve(toolchain)
    if isinstance(tool, GoToolchain):
        for note in tool.notes:
            console.print(f"[yellow]note:[/] {escape(note)}")
        overlay = go_build_env(tool, project_dir)
        command = go_command(output, tool.path)
    else:
        overlay = _tinygo_env(project_dir)
        command = tinygo_command(project_dir, output, tool.path)
    key_command = [OUTPUT_PLACEHOLDER if a == str(output) else a for a in command]
    skip = [output, buildinfo_path(output)]
    key = cache_key(project_dir, toolchain_id, key_command, overlay, skip)
    if not force and (hit := _cached(output, key)) is not None:
        console.print(f"[green]cached[/] {escape(str(output))} ({version}, inputs unchanged)")
        return BuildResult(output, hit[0], hit[1], True, command, version)

    output.parent.mkdir(parents=True, exist_ok=True)
    env = _process_env(overlay, drop=_DROPPED_ENV)
    if isinstance(tool, GoToolchain):
        _download_modules(tool, project_dir, env, console)
    no_sum = [*skip, project_dir / "go.sum"]  # go may complete go.sum: checksums, not code
    sources = cache_key(project_dir, toolchain_id, key_command, overlay, no_sum)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        tmp_out = tmp_dir / output.name
        argv = [str(tmp_out) if a == str(output) else a for a in command]
        console.print(f"[bold]building[/] {escape(str(project_dir))} with {version}")
        started = time.monotonic()
        rc, out = _stream(argv, project_dir, env, console)
        if rc != 0:
            raise BuildError(
                f"{toolchain} build failed in {project_dir} (exit {rc}):\n{out.strip()}",
                hint=f"file:line above is relative to {project_dir}",
            )
        data = tmp_out.read_bytes() if tmp_out.is_file() else b""
        if not data.startswith(WASM_MAGIC):
            raise BuildError(f"{toolchain} build of {project_dir} did not produce a wasm module")
        if cache_key(project_dir, toolchain_id, key_command, overlay, no_sum) != sources:
            raise BuildError(  # the module may mix two versions; its key would name neither
                f"the sources in {project_dir} changed while {toolchain} build ran; the module "
                "was not kept",
                hint="something else writes that directory (an editor, another tool); build again",
            )
        os.replace(tmp_out, output)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    sha = hashlib.sha256(data).hexdigest()
    # The key from before the build: if -mod=mod just completed go.sum, the next call
    # sees a new key and rebuilds once, which is correct rather than falsely cached.
    record = {
        "key": key,
        "sha256": sha,
        "size": len(data),
        "toolchain": version,
        "command": key_command,
    }
    write_atomic(buildinfo_path(output), (json.dumps(record, indent=2) + "\n").encode())
    console.print(
        f"[green]built[/] {escape(str(output))} ({len(data)} bytes, "
        f"{time.monotonic() - started:.1f}s)"
    )
    return BuildResult(output, len(data), sha, False, command, version)


def go_test(
    project_dir: Path,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    *,
    args: Sequence[str] = ("./...",),
    check: bool = True,
    go: GoToolchain | None = None,
) -> GoTestResult:
    """Run `go test ./...` natively in `project_dir`; GoTestFailed if it fails and `check`."""
    console = _default_console(console)
    project_dir = Path(project_dir).resolve()
    go = go if go is not None else find_go()
    overlay = {**_base_go_env(_uses_vendor(project_dir)), **go.env(), **(env or {})}
    drop = [*_DROPPED_ENV, *(k for k in ("GOOS", "GOARCH") if k not in (env or {}))]
    command = [str(go.path), "test", *args]
    console.print(f"[bold]go test[/] {escape(' '.join(args))} in {escape(str(project_dir))}")
    started = time.monotonic()
    rc, out = _stream(command, project_dir, _process_env(overlay, drop=drop), console)
    result = GoTestResult(rc == 0, rc, out, command, time.monotonic() - started)
    if check and not result.ok:
        raise GoTestFailed(
            f"go test failed in {project_dir} (exit {rc}):\n{out.strip()}",
            output=out,
            hint=f"file:line above is relative to {project_dir}",
        )
    return result
