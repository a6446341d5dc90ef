"""Resolve a spec's variant: validate its options where the spec wrote them, turn them into
rules for the engine, and point the spec at the variant's templates."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

from wasmgen.errors import Problem, SpecError, WasmgenError
from wasmgen.records import record
from wasmgen.spec.loader import check_rules, locate, locate_errors, source_of, spec_error
from wasmgen.spec.models import Spec
from wasmgen.variants.base import Rules
from wasmgen.variants.registry import Loaded, UnknownVariant, VariantError, VariantInfo, find


@record
class Resolved:
    """A spec with its variant applied."""

    info: VariantInfo
    options: BaseModel  # the validated options
    spec: Spec  # the spec; its templates: the variant's own folder when it names none
    expanded: Spec  # spec with the variant's rules before its own: what the plugin runs


def resolve(spec: Spec) -> Resolved:
    """The spec's variant applied; SpecError at file:line:col for a wrong variant name or
    options, VariantError (naming the variant and its package) when the variant fails."""
    try:
        loaded = find(spec.variant)
    except UnknownVariant as exc:
        raise spec_error([locate(spec, ("variant",), f"{exc.message}; {exc.hint}")]) from None
    options = _options(spec, loaded)
    rules = _call(loaded, "turning its options into rules", loaded.variant.rules, options)
    if not isinstance(rules, Rules):
        raise VariantError(
            f"{loaded.info.label}: rules() returned a {type(rules).__name__}, not "
            "wasmgen.variants.Rules",
            hint="fix the variant, or report it to its authors",
        )
    try:
        request, response = check_rules(*rules.data(), loaded.info.label)
    except SpecError as exc:
        raise VariantError(
            f"{loaded.info.label} turned its options into invalid rules:\n"
            + "\n".join(p.render() for p in exc.problems),
            hint="fix the variant, or report it to its authors",
        ) from None
    expanded = spec.model_copy(
        update={"request": [*request, *spec.request], "response": [*response, *spec.response]}
    )
    if spec.templates is None and loaded.info.templates is not None:
        spec = spec.model_copy(update={"templates": loaded.info.templates})
    return Resolved(loaded.info, options, spec, expanded)


def _options(spec: Spec, loaded: Loaded) -> BaseModel:
    model = loaded.variant.options_model
    try:
        options: BaseModel = _call(
            loaded, "validating its options", model.model_validate, spec.options
        )
        return options
    except ValidationError as exc:
        problems = locate_errors(spec, exc, ("options",), model)
    document = source_of(spec).document
    if not (hasattr(document, "get") and document.get("options") is not None):
        # No options: key to point into; point at variant: instead.
        at = locate(spec, ("variant",), "")
        problems = [_moved(p, at, spec.variant) for p in problems]
    raise spec_error(problems)


def _moved(problem: Problem, at: Problem, variant: str) -> Problem:
    message = problem.message
    if message == "missing required key":
        message = f"the {variant} variant needs this option, under options:"
    return dataclasses.replace(problem, line=at.line, col=at.col, message=message)


def _call(loaded: Loaded, doing: str, function: Any, *args: Any) -> Any:
    """function(*args); a failure other than a validation error is the variant's bug."""
    try:
        return function(*args)
    except ValidationError:
        raise
    except Exception as exc:
        raise VariantError(
            f"{loaded.info.label} failed {doing}: {type(exc).__name__}: {exc}",
            hint="fix the variant, or report it to its authors",
        ) from None


@contextmanager
def blame(info: VariantInfo | None, spec: Spec) -> Iterator[None]:
    """Name the variant and its package in errors raised while its templates render."""
    if info is None or info.builtin or info.templates is None or spec.templates != info.templates:
        yield
        return
    try:
        yield
    except SpecError:
        raise
    except WasmgenError as exc:
        raise VariantError(
            f"{info.label}: {exc.message}",
            hint=exc.hint or "fix the variant's template, or report it to its authors",
        ) from None
