"""Find variants through the `wasmgen.variants` entry points; one broken package breaks only
itself: loading is by name, and every failure names the variant, its package and the reason."""

from __future__ import annotations

import difflib
import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from wasmgen._version import __version__
from wasmgen.errors import WasmgenError
from wasmgen.records import record
from wasmgen.variants.base import Variant

if TYPE_CHECKING:  # importlib.metadata (and email with it) loads only to list installed ones
    from importlib.metadata import EntryPoint

GROUP = "wasmgen.variants"
PACKAGE = "wasmgen"
# The variants wasmgen ships, also registered in its pyproject.toml; used as they are when
# wasmgen runs from a source tree whose package metadata is missing or stale.
BUILTINS = {
    "cors": "wasmgen.variants.cors:Cors",
    "headers": "wasmgen.variants.headers:Headers",
}


@record
class VariantInfo:
    """An installed variant as `wasmgen variants` lists it."""

    name: str
    version: str  # the providing distribution's version
    description: str
    package: str  # the distribution that provides it
    target: str  # module:attribute of the entry point
    error: str | None = None  # why it cannot be used; None when it loads
    templates: str | None = None  # its template overrides folder, once loaded

    @property
    def builtin(self) -> bool:
        """Shipped with wasmgen itself."""
        return self.package == PACKAGE

    @property
    def label(self) -> str:
        """variant 'cors' (package wasmgen 0.1.0), as messages name it."""
        return f"variant {self.name!r} (package {self.package} {self.version})"


@record
class Loaded:
    """A variant that loaded and passed the checks."""

    info: VariantInfo
    variant: Variant[Any]


class VariantError(WasmgenError):
    """A variant cannot be used: not installed, broken, or it failed at its job (exit 2)."""


class UnknownVariant(VariantError):
    """No installed variant has this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        super().__init__(
            f"no variant named {name!r} is installed (installed: {', '.join(known)})",
            hint=f"{hint}install the package that provides it; `wasmgen variants` lists them",
        )
        self.name = name


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "?", "?"
    return str(dist.metadata["Name"] or dist.name), dist.version


@functools.cache
def _registered() -> tuple[VariantInfo, ...]:
    """Every registered variant, unloaded: name, package, version, target (sorted by name)."""
    from importlib.metadata import entry_points

    found: dict[str, VariantInfo] = {}
    duplicates: dict[str, list[str]] = {}
    for ep in entry_points(group=GROUP):
        package, version = _distribution(ep)
        info = VariantInfo(ep.name, version, "", package, ep.value)
        if ep.name in found and found[ep.name].package != package:
            duplicates.setdefault(ep.name, [found[ep.name].package]).append(package)
            if found[ep.name].builtin:  # wasmgen's own keep their names
                continue
        found[ep.name] = info
    for name, target in BUILTINS.items():
        found.setdefault(name, VariantInfo(name, __version__, "", PACKAGE, target))
    for name, packages in duplicates.items():
        if not found[name].builtin:
            found[name] = _broken(
                found[name],
                f"the packages {', '.join(sorted(packages))} all register it; uninstall all but one",
            )
    return tuple(found[name] for name in sorted(found))


def _broken(info: VariantInfo, reason: str) -> VariantInfo:
    return VariantInfo(info.name, info.version, info.description, info.package, info.target, reason)


def names() -> list[str]:
    """The names of every registered variant (nothing is imported)."""
    return [info.name for info in _registered()]


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _load_builtin(name: str) -> Loaded:
    """One of wasmgen's own variants (checked by the tests, not at every run)."""
    variant: Variant[Any] = _import(BUILTINS[name])()
    templates = str(Path(variant.templates).resolve()) if variant.templates else None
    info = VariantInfo(
        name, __version__, variant.summary(), PACKAGE, BUILTINS[name], templates=templates
    )
    return Loaded(info, variant)


@functools.cache
def _load(info: VariantInfo) -> Loaded | VariantInfo:
    """The loaded variant, or info with the reason it cannot load."""
    if info.error:
        return info
    try:
        obj = _import(info.target)
        variant = obj() if isinstance(obj, type) and issubclass(obj, Variant) else obj
    except Exception as exc:
        return _broken(info, f"cannot be imported ({info.target}): {type(exc).__name__}: {exc}")
    problem = _check(variant)
    if problem:
        return _broken(info, problem)
    summary = variant.summary() or info.description
    templates = str(Path(variant.templates).resolve()) if variant.templates else None
    loaded = VariantInfo(
        info.name, info.version, summary, info.package, info.target, templates=templates
    )
    return Loaded(loaded, variant)


def _check(variant: Any) -> str | None:
    """Why an entry point's object is not a usable variant, or None."""
    if not isinstance(variant, Variant):
        return (
            f"its entry point names a {type(variant).__name__}, not a wasmgen.variants.Variant "
            "subclass or instance"
        )
    model = getattr(variant, "options_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"its options model is not a pydantic model (options_model = {model!r})"
    try:
        model.model_json_schema(by_alias=True, mode="validation")
    except Exception as exc:
        return f"its options model {model.__name__} is broken: {type(exc).__name__}: {exc}"
    if variant.templates is not None and not Path(variant.templates).is_dir():
        return f"its templates folder {variant.templates} does not exist"
    return None


def find(name: str) -> Loaded:
    """The variant registered as name; UnknownVariant or VariantError (naming its package and
    the reason) when it is missing or broken. Only this variant's package is imported. A
    built-in name is wasmgen's own whatever else registers it, so it needs no metadata scan."""
    if name in BUILTINS:
        return _load_builtin(name)
    info = next((i for i in _registered() if i.name == name), None)
    if info is None:
        raise UnknownVariant(name, names())
    loaded = _load(info)
    if isinstance(loaded, VariantInfo):
        raise VariantError(
            f"{loaded.label} is broken: {loaded.error}",
            hint=f"fix or reinstall {loaded.package}, or uninstall it (`pip uninstall "
            f"{loaded.package}`); other variants are not affected",
        )
    return loaded


def installed() -> list[Loaded | VariantInfo]:
    """Every registered variant, loaded, or as info with the reason it is broken."""
    return [_load(info) for info in _registered()]


def clear_cache() -> None:
    """Forget the registered variants (after installing a package in this process)."""
    _registered.cache_clear()
    _load.cache_clear()
    _load_builtin.cache_clear()
