"""The spec models' base class and the one-of check they share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys refused, frozen values."""

    model_config = ConfigDict(
        defer_build=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    """Refuse a model that sets none or several of fields."""
    present = [f for f in fields if getattr(model, f) is not None]
    if len(present) != 1:
        names = ", ".join(to_camel(f) for f in fields)
        found = f" (found {', '.join(to_camel(f) for f in present)})" if present else ""
        raise ValueError(f"{what} needs exactly one of {names}{found}")


# Default factories written in Python: pydantic reads a factory's signature when it builds a
# validator, and for a builtin such as `list` that means tokenizing its text signature, whose
# first use compiles a large regex (about a tenth of a cold `wasmgen generate`).
def empty_list() -> list[Any]:
    """A new empty list (a default)."""
    return []


def empty_dict() -> dict[str, Any]:
    """A new empty dict (a default)."""
    return {}
