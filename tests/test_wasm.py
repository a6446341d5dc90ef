"""Static inspection of .wasm files and the Envoy/Istio WASI compatibility table."""

from __future__ import annotations

import pytest
import wasmtime

from tests.conftest_host import build_plugin
from wasmgen.errors import HostError, WasmgenError
from wasmgen.wasm.compat import (
    DEFAULT_ISTIO,
    S15,
    S18,
    S45,
    check_compat,
    loadable_on,
    parse_target,
)
from wasmgen.wasm.module import ModuleInfo, inspect_module
from wasmgen.wasm.report import format_inspect

# What a Go >= 1.24 wasip1 c-shared build on proxy-wasm-go-sdk imports (WASI.md).
GO_SDK_WASI = [
    *("sched_yield", "proc_exit", "args_get", "args_sizes_get", "clock_time_get", "environ_get"),
    *("environ_sizes_get", "fd_write", "random_get", "poll_oneoff", "fd_close", "fd_fdstat_get"),
    *("fd_fdstat_set_flags", "fd_prestat_get", "fd_prestat_dir_name"),
]


def module(
    wasi: list[str] = GO_SDK_WASI,
    env: tuple[str, ...] = ("proxy_log",),
    exports: tuple[str, ...] = ("_initialize", "proxy_abi_version_0_2_1", "proxy_on_configure"),
    memory: bool = True,
) -> bytes:
    """A minimal module with the given imports (every one () -> ()) and exported functions."""
    imports = [f'(import "wasi_snapshot_preview1" "{n}" (func))' for n in wasi]
    imports += [f'(import "env" "{n}" (func))' for n in env]
    funcs = [f'(func (export "{n}"))' for n in exports]
    mem = '(memory (export "memory") 1)' if memory else ""
    return bytes(wasmtime.wat2wasm(f"(module {' '.join(imports)} {mem} {' '.join(funcs)})"))


def one_line_host_error(data: bytes) -> str:
    with pytest.raises(HostError) as err:
        inspect_module(data)
    assert "\n" not in err.value.message
    return err.value.message


def test_inspect_reads_abi_callbacks_and_imports() -> None:
    data = module(wasi=["fd_write", "proc_exit", "fd_write"], exports=(
        "_initialize", "proxy_abi_version_0_2_1", "proxy_on_request_headers",
        "proxy_on_configure", "proxy_on_memory_allocate", "helper",
    ))  # fmt: skip
    info = inspect_module(data)
    assert info.abi_version == "0.2.1"
    assert info.callbacks == (
        "proxy_on_configure",
        "proxy_on_memory_allocate",
        "proxy_on_request_headers",
    )
    assert info.imports == (  # sorted and deduplicated: Go repeats import entries
        ("env", "proxy_log"),
        ("wasi_snapshot_preview1", "fd_write"),
        ("wasi_snapshot_preview1", "proc_exit"),
    )
    assert info.is_reactor and not info.has_start and info.exports_memory
    assert info.size == len(data) and len(info.sha256) == 64
    assert info.imports_from("wasi_snapshot_preview1") == ("fd_write", "proc_exit")


def test_inspect_command_module_and_missing_abi() -> None:
    info = inspect_module(module(exports=("_start",)))
    assert info.has_start and not info.is_reactor and info.abi_version is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not a WebAssembly module"),
        (b"PK\x03\x04 a zip file", "not a WebAssembly module"),
        (b"\0asm\x02\0\0\0", "unsupported WebAssembly binary version 0x2"),
        (b"\0asm\x0d\0\x01\0", "a component, not a core module"),
        (b"\0asm\x01\0\0\0\x02\xff", "truncated"),
        (b"\0asm\x01\0\0\0\x02\x05\x01\x02env\x10", "truncated"),
    ],
)
def test_malformed_input_is_a_one_line_host_error(data: bytes, expected: str) -> None:
    assert expected in one_line_host_error(data)


def test_truncated_real_module() -> None:
    data = module()
    assert "truncated WebAssembly module" in one_line_host_error(data[: len(data) // 2])


def test_parse_target_default_is_documented_istio() -> None:
    target = parse_target(None, None)
    assert target.istio == (1, int(DEFAULT_ISTIO.split(".")[1]))
    assert target.name == "Istio 1.28 (Envoy 1.36)" and target.envoy == (1, 36)
    assert target.wasi_set == "S18" and target.wasi_functions == S18


@pytest.mark.parametrize(
    ("istio", "envoy", "wasi_set", "name"),
    [
        ("1.24", None, "S15", "Istio 1.24 (Envoy 1.32)"),
        ("1.25.2", None, "S18", "Istio 1.25 (Envoy 1.33)"),
        ("v1.30", None, "S18", "Istio 1.30 (Envoy 1.38)"),
        ("1.31", "1.39", "S45", "Istio 1.31 (Envoy 1.39)"),
        (None, "1.32.1", "S15", "Envoy 1.32"),
        (None, "1.33", "S18", "Envoy 1.33"),
        (None, "1.38", "S18", "Envoy 1.38"),
        (None, "1.40.0-dev", "S45", "Envoy 1.40"),
    ],
)
def test_version_table(istio: str | None, envoy: str | None, wasi_set: str, name: str) -> None:
    target = parse_target(istio, envoy)
    assert (target.wasi_set, target.name) == (wasi_set, name)
    assert target.wasi_functions == {"S15": S15, "S18": S18, "S45": S45}[wasi_set]


def test_wasi_sets_match_the_documented_counts() -> None:
    assert (len(S15), len(S18), len(S45)) == (15, 18, 45)
    assert S15 < S18 < S45


@pytest.mark.parametrize(("istio", "envoy"), [("latest", None), ("1", None), (None, "2.1")])
def test_bad_version_strings_give_a_hint(istio: str | None, envoy: str | None) -> None:
    with pytest.raises(WasmgenError) as err:
        parse_target(istio, envoy)
    assert "invalid" in err.value.message and err.value.hint and "1." in err.value.hint


def test_inconsistent_istio_and_envoy() -> None:
    with pytest.raises(WasmgenError, match=r"ships Envoy 1\.36"):
        parse_target("1.28", "1.35")


def test_check_compat_lists_every_missing_import() -> None:
    info = inspect_module(module(env=("proxy_log", "proxy_not_in_envoy")))
    report = check_compat(info, parse_target("1.24", None))
    assert not report.loadable
    assert report.missing == (
        ("env", "proxy_not_in_envoy"),
        ("wasi_snapshot_preview1", "fd_fdstat_set_flags"),
        ("wasi_snapshot_preview1", "poll_oneoff"),
        ("wasi_snapshot_preview1", "sched_yield"),
    )
    assert "wasi_snapshot_preview1.poll_oneoff" in report.missing_names()


def test_check_compat_s18_and_s45_only_imports() -> None:
    info = inspect_module(module(wasi=[*GO_SDK_WASI, "fd_readdir", "path_filestat_get"]))
    s18 = check_compat(info, parse_target("1.28", None))
    assert s18.missing == (
        ("wasi_snapshot_preview1", "fd_readdir"),
        ("wasi_snapshot_preview1", "path_filestat_get"),
    )
    assert check_compat(info, parse_target("1.31", None)).loadable


def test_poll_oneoff_warning_only_on_s18() -> None:
    info = inspect_module(module())
    s18 = check_compat(info, parse_target("1.28", None))
    assert s18.loadable
    assert any("golang/go#78513" in w and "poll_oneoff" in w for w in s18.warnings)
    assert not check_compat(info, parse_target(None, "1.40")).warnings


def test_command_module_and_missing_abi_are_reported() -> None:
    command = check_compat(inspect_module(module(exports=("_start",))), parse_target("1.31", None))
    assert any("_start" in w and "-buildmode=c-shared" in w for w in command.warnings)
    assert any("proxy_abi_version" in p for p in command.problems) and not command.loadable


def test_loadable_on_ranges() -> None:
    ranges = loadable_on(inspect_module(module()))
    assert [(r.wasi_set, r.loadable) for r in ranges] == [
        ("S15", False),
        ("S18", True),
        ("S45", True),
    ]
    assert ranges[0].describe() == "Istio <= 1.24 (Envoy <= 1.32)"
    assert ranges[1].describe() == "Istio 1.25-1.30 (Envoy 1.33-1.38)"
    assert ranges[2].describe() == "Istio >= 1.31 (Envoy >= 1.39)"
    assert len(ranges[0].missing) == 3 and ranges[1].warnings and not ranges[2].warnings


def _check_report(info: ModuleInfo, text: str) -> None:
    assert f"ABI:        proxy-wasm {info.abi_version}" in text
    assert info.sha256 in text and f"{info.size} bytes" in text
    for callback in info.callbacks:
        assert f"  {callback}\n" in text
    for mod, name in info.imports:
        assert f"  {mod}.{name}\n" in text
    assert f"imports ({len(info.imports)}):" in text
    assert "Istio <= 1.24 (Envoy <= 1.32), WASI set S15: no, missing 3 import(s)" in text
    assert "Istio 1.25-1.30 (Envoy 1.33-1.38), WASI set S18: yes" in text
    assert "Istio >= 1.31 (Envoy >= 1.39), WASI set S45: yes" in text


def test_format_inspect_synthetic() -> None:
    info = inspect_module(module())
    _check_report(info, format_inspect(info))


@pytest.mark.slow
def test_format_inspect_real_sdk_plugin() -> None:
    info = inspect_module(build_plugin("sdkheaders").read_bytes())
    assert info.abi_version == "0.2.0" and info.is_reactor and not info.has_start
    assert set(info.imports_from("wasi_snapshot_preview1")) == set(GO_SDK_WASI)
    assert {"proxy_on_request_headers", "proxy_on_response_headers"} <= set(info.callbacks)
    text = format_inspect(info)
    _check_report(info, text)
    assert "warning: imports poll_oneoff" in text


@pytest.mark.slow
def test_format_inspect_command_module() -> None:
    text = format_inspect(inspect_module(build_plugin("rawabi", c_shared=False).read_bytes()))
    assert "module:     WASI command (_start)" in text and "-buildmode=c-shared" in text
