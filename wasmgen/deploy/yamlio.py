"""Deterministic YAML and JSON output that every YAML reader loads back the same."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from wasmgen.deploy.deployment import json_copy
from wasmgen.spec.yamldoc import core_scalar

_Dumper: Final[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_RESOLVER: Final = yaml.resolver.Resolver()  # YAML 1.1's implicit types, as PyYAML reads them
# YAML 1.1's booleans that PyYAML leaves out but go-yaml v2 and other 1.1 readers take.
_SHORT_BOOL: Final = frozenset({"y", "Y", "n", "N"})
# go-yaml v2 (sigs.k8s.io/yaml, kubectl) reads anything float-shaped as a number, e.g. "08".
_NUMBERISH: Final = re.compile(r"^[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")


def _ambiguous(text: str) -> bool:
    """True when a plain scalar would not load back as this string in YAML 1.1, 1.2 or go-yaml."""
    if text in _SHORT_BOOL or _NUMBERISH.match(text):
        return True
    if _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str":
        return True
    try:
        return not isinstance(core_scalar(text), str)
    except ValueError:
        return True


class _Dumper12(_Dumper):  # type: ignore[misc]
    """Block style, insertion order, explicit null, and strings quoted only when needed."""


def _represent_str(dumper: Any, data: str) -> yaml.ScalarNode:
    if any(c in data for c in "\r\x85\u2028\u2029"):
        style: str | None = '"'  # readers normalize these breaks inside other styles
    elif "\n" in data:
        style = "|"
    else:
        style = "'" if _ambiguous(data) else None
    node: yaml.ScalarNode = dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)
    return node


def _represent_none(dumper: Any, data: None) -> yaml.ScalarNode:
    node: yaml.ScalarNode = dumper.represent_scalar("tag:yaml.org,2002:null", "null")
    return node


_Dumper12.add_representer(str, _represent_str)
_Dumper12.add_representer(type(None), _represent_none)


def dump_yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    """Deterministic multi-document YAML that loads back to the same data in any YAML reader."""
    text: str = yaml.dump_all(
        [json_copy(doc) for doc in docs],
        Dumper=_Dumper12,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**31 - 1,
        indent=2,
    )
    return text


def dump_json(obj: Any) -> str:
    """Deterministic, indented JSON with a trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
