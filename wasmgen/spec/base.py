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


def plain_dump(value: Any) -> Any:
    """A model as model_dump(by_alias=True, exclude_none=True) gives it (None-valued fields
    left out, camelCase keys, containers kept as they are), without building a serializer:
    with defer_build each model class would build its own on its first dump, which costs a
    cold generate more than dumping every rule by hand (tests/test_spec_dump.py compares)."""
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None:
                out[field.serialization_alias or field.alias or name] = plain_dump(item)
        return out
    if isinstance(value, dict):
        return {key: plain_dump(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_dump(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_dump(item) for item in value)
    return value


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
