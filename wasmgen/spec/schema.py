"""The spec's JSON Schema, as `wasmgen schema` prints it and schemas/ keeps it."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from wasmgen.spec.models import DEFAULT_VARIANT, Spec

SCHEMA_ID = "https://wasmgen.dev/schemas/wasmgen-spec.schema.json"


def spec_schema(
    variant: str | None = None, options: type[BaseModel] | None = None
) -> dict[str, object]:
    """The JSON Schema of a YAML spec (camelCase keys); with a variant and its options model,
    the schema of that variant's specs: variant: fixed to it, options: typed by the model."""
    model: type[BaseModel] = Spec
    schema_id = SCHEMA_ID
    if variant is not None and options is not None:
        model = _variant_spec(variant, options)
        schema_id = SCHEMA_ID.replace(".schema.json", f".{variant}.schema.json")
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        **schema,
    }


def _variant_spec(variant: str, options: type[BaseModel]) -> type[BaseModel]:
    """Spec with variant fixed to one name and options typed by that variant's model."""
    required = any(f.is_required() for f in options.model_fields.values())
    fixed: Any = Literal[variant]
    chosen: Any = Field(
        default=variant if variant == DEFAULT_VARIANT else ...,
        description=f"The {variant} variant",
    )
    given: Any = Field(
        default=... if required else None,
        description=f"The {variant} variant's options",
    )
    given_type: Any = options if required else options | None
    return create_model(
        "Spec",
        __base__=Spec,
        __doc__=Spec.__doc__,
        variant=(fixed, chosen),
        options=(given_type, given),
    )


def spec_schema_text(variant: str | None = None, options: type[BaseModel] | None = None) -> str:
    """The schema as stable, indented JSON text."""
    return json.dumps(spec_schema(variant, options), indent=2, sort_keys=True) + "\n"
