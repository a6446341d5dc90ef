"""The spec's JSON Schema, as `wasmgen schema` prints it and schemas/ keeps it."""

from __future__ import annotations

import json

from wasmgen.spec.models import Spec

SCHEMA_ID = "https://wasmgen.dev/schemas/wasmgen-spec.schema.json"


def spec_schema() -> dict[str, object]:
    """The JSON Schema of a YAML spec (camelCase keys)."""
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def spec_schema_text() -> str:
    """The schema as stable, indented JSON text."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
