"""Which Envoy and Istio releases can load a module: their WASI sets and the import check."""

from __future__ import annotations

import re
from dataclasses import field

from wasmgen.errors import WasmgenError
from wasmgen.records import record
from wasmgen.wasm.abi import ENV_MODULE, ENVOY_ENV_FUNCTIONS, WASI_MODULE, names_set
from wasmgen.wasm.module import ModuleInfo, module_problems, module_warnings

GO_POLL_ONEOFF_ISSUE = "golang/go#78513"

# proxy-wasm-cpp-host's FOR_ALL_WASI_FUNCTIONS, by the commit that changed it (see WASI.md).
S15 = names_set(
    "fd_write fd_read fd_seek fd_close fd_fdstat_get environ_get environ_sizes_get args_get "
    "args_sizes_get clock_time_get random_get proc_exit path_open fd_prestat_get "
    "fd_prestat_dir_name"
)
S18 = S15 | names_set("fd_fdstat_set_flags sched_yield poll_oneoff")
S45 = S18 | names_set(
    "fd_fdstat_set_rights clock_res_get fd_advise fd_allocate fd_datasync fd_filestat_set_size "
    "fd_filestat_set_times fd_pread fd_pwrite fd_readdir fd_renumber fd_sync fd_tell "
    "path_create_directory path_filestat_set_times path_link path_readlink "
    "path_remove_directory path_rename path_symlink path_unlink_file sock_accept sock_recv "
    "sock_send sock_shutdown path_filestat_get fd_filestat_get"
)
WASI_SETS: dict[str, frozenset[str]] = {"S15": S15, "S18": S18, "S45": S45}

# Istio 1.N ships Envoy 1.(N+8). Newest Istio whose Envoy pin is confirmed to have S18;
# wasmgen's default target when the user names none.
DEFAULT_ISTIO = "1.28"
ISTIO_TO_ENVOY_OFFSET = 8
LAST_S15_ENVOY = 32  # confirmed: Envoy 1.32 / Istio 1.24
LAST_S18_ENVOY = 38  # confirmed: Envoy 1.38 / Istio 1.30; 1.40-dev has S45
INFERRED_ENVOY_MINORS = frozenset({34, 35, 36, 37, 39})  # WASI.md: pins not read off Envoy

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")


@record
class Target:
    """An Envoy release (optionally via the Istio that ships it) and its WASI host set."""

    name: str  # "Istio 1.28 (Envoy 1.36)"
    envoy: tuple[int, int]
    istio: tuple[int, int] | None
    wasi_set: str  # "S15" | "S18" | "S45"
    wasi_functions: frozenset[str] = field(repr=False)
    inferred: bool  # the WASI set of this Envoy is inferred, not read off its lock file


@record
class CompatReport:
    """Whether one module loads on one target, with every missing import and the risks."""

    target: Target
    missing: tuple[tuple[str, str], ...]  # imports the target does not provide: load fails
    problems: tuple[str, ...]  # module defects that make every Envoy refuse it
    warnings: tuple[str, ...]  # loads, but may fail at run time

    @property
    def loadable(self) -> bool:
        """True when the target can load the module."""
        return not self.missing and not self.problems

    def missing_names(self) -> str:
        """The missing imports as "module.name, ..." for one-line messages."""
        return ", ".join(f"{mod}.{name}" for mod, name in self.missing)


@record
class VersionRange:
    """A range of Envoy (and Istio) releases sharing one WASI set."""

    wasi_set: str
    envoy_min: int | None  # minor versions of 1.x; None = open end
    envoy_max: int | None
    loadable: bool
    missing: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]  # runtime risks specific to this range

    def describe(self) -> str:
        """E.g. "Istio 1.25-1.30 (Envoy 1.33-1.38)"."""
        return f"Istio {_span(self.envoy_min, self.envoy_max, -ISTIO_TO_ENVOY_OFFSET)} " + (
            f"(Envoy {_span(self.envoy_min, self.envoy_max, 0)})"
        )


def _span(lo: int | None, hi: int | None, shift: int) -> str:
    if lo is None and hi is not None:
        return f"<= 1.{hi + shift}"
    if hi is None and lo is not None:
        return f">= 1.{lo + shift}"
    return f"1.{(lo or 0) + shift}-1.{(hi or 0) + shift}"


def wasi_set_for_envoy(minor: int) -> str:
    """The WASI set name Envoy 1.<minor> provides."""
    if minor <= LAST_S15_ENVOY:
        return "S15"
    return "S18" if minor <= LAST_S18_ENVOY else "S45"


def _parse_version(text: str, product: str) -> tuple[int, int]:
    match = _VERSION_RE.match(text.strip())
    if not match or int(match.group(1)) != 1:
        example = DEFAULT_ISTIO if product == "Istio" else f"1.{_envoy_minor(DEFAULT_ISTIO)}"
        raise WasmgenError(
            f"invalid {product} version {text!r}",
            hint=f"give MAJOR.MINOR (patch optional), e.g. {example}",
        )
    return int(match.group(1)), int(match.group(2))


def _envoy_minor(istio: str) -> int:
    return int(istio.split(".")[1]) + ISTIO_TO_ENVOY_OFFSET


def parse_target(istio: str | None, envoy: str | None) -> Target:
    """Resolve --istio/--envoy version strings into a Target (default: Istio DEFAULT_ISTIO)."""
    if istio is None and envoy is None:
        istio = DEFAULT_ISTIO
    istio_v = _parse_version(istio, "Istio") if istio is not None else None
    envoy_v = _parse_version(envoy, "Envoy") if envoy is not None else None
    if istio_v is not None:
        shipped = (1, istio_v[1] + ISTIO_TO_ENVOY_OFFSET)
        if envoy_v is not None and envoy_v != shipped:
            raise WasmgenError(
                f"Istio {istio_v[0]}.{istio_v[1]} ships Envoy 1.{shipped[1]}, "
                f"not {envoy_v[0]}.{envoy_v[1]}",
                hint="give only one of the two versions",
            )
        envoy_v = shipped
        name = f"Istio 1.{istio_v[1]} (Envoy 1.{shipped[1]})"
    else:
        assert envoy_v is not None
        name = f"Envoy 1.{envoy_v[1]}"
    wasi_set = wasi_set_for_envoy(envoy_v[1])
    return Target(
        name=name,
        envoy=envoy_v,
        istio=istio_v,
        wasi_set=wasi_set,
        wasi_functions=WASI_SETS[wasi_set],
        inferred=envoy_v[1] in INFERRED_ENVOY_MINORS,
    )


def _missing(info: ModuleInfo, wasi: frozenset[str]) -> tuple[tuple[str, str], ...]:
    provided = {WASI_MODULE: wasi, ENV_MODULE: ENVOY_ENV_FUNCTIONS}
    return tuple(imp for imp in info.imports if imp[1] not in provided.get(imp[0], ()))


def target_warnings(info: ModuleInfo, wasi_set: str) -> list[str]:
    """Runtime risks of this module on hosts with the given WASI set."""
    if wasi_set == "S18" and (WASI_MODULE, "poll_oneoff") in info.imports:
        return [
            "imports poll_oneoff, which these Envoy releases stub with ENOSYS: the Go runtime "
            "aborts where it must sleep (time.Sleep with goroutines) and on any panic, whose "
            "message is then lost (fatal error: ... poll_oneoff / panic during panic, "
            f"{GO_POLL_ONEOFF_ISSUE}); generated plugins do neither, and under sustained load "
            "with many GC cycles none aborted (see the README); Envoy >= 1.39 (Istio >= 1.31) "
            "implements it"
        ]
    return []


def check_compat(info: ModuleInfo, target: Target) -> CompatReport:
    """List every import the target lacks (not just the first) and the known runtime risks."""
    warnings = module_warnings(info) + target_warnings(info, target.wasi_set)
    return CompatReport(
        target=target,
        missing=_missing(info, target.wasi_functions),
        problems=tuple(module_problems(info)),
        warnings=tuple(warnings),
    )


def loadable_on(info: ModuleInfo) -> list[VersionRange]:
    """Each Envoy/Istio version range with whether the module loads there, oldest first."""
    bounds: list[tuple[str, int | None, int | None]] = [
        ("S15", None, LAST_S15_ENVOY),
        ("S18", LAST_S15_ENVOY + 1, LAST_S18_ENVOY),
        ("S45", LAST_S18_ENVOY + 1, None),
    ]
    blocked = bool(module_problems(info))
    ranges = []
    for name, lo, hi in bounds:
        missing = _missing(info, WASI_SETS[name])
        loadable = not missing and not blocked
        ranges.append(
            VersionRange(name, lo, hi, loadable, missing, tuple(target_warnings(info, name)))
        )
    return ranges
