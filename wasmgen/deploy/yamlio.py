"""Deterministic YAML and JSON output that every YAML reader loads back the same."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver

from wasmgen.deploy.deployment import json_copy


def _ambiguous(text: str) -> bool:
    """True when a plain scalar would not load back as this string in YAML 1.1, 1.2 or go-yaml."""
    if _NUMBERISH.match(text):
        return True
    for resolver in _RESOLVERS:
        tag = resolver.resolve(ScalarNode, text, (True, False))
        if tag != "tag:yaml.org,2002:str":
            return True
    return False


_RESOLVERS: Final = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
# go-yaml v2 (sigs.k8s.io/yaml, kubectl) reads anything float-shaped as a number, e.g. "08".
_NUMBERISH: Final = re.compile(r"^[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")


class _Representer(RoundTripRepresenter):
    """Block style, insertion order, explicit null, and strings quoted only when needed."""

    def represent_str(self, data: str) -> ScalarNode:
        if any(c in data for c in "\r\x85\u2028\u2029"):
            style: str | None = '"'  # readers normalize these breaks inside other styles
        elif "\n" in data:
            style = "|"
        else:
            style = "'" if _ambiguous(data) else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    def represent_none(self, data: Any) -> ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(type(None), _Representer.represent_none)


def dump_yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    """Deterministic multi-document YAML that loads back to the same data in any YAML reader."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Representer = _Representer
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 2**31 - 1
    yaml.allow_unicode = True
    stream = io.StringIO()
    yaml.dump_all([json_copy(doc) for doc in docs], stream)
    return stream.getvalue()


def dump_json(obj: Any) -> str:
    """Deterministic, indented JSON with a trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
