"""What a variant is: an options model, and how its options become rules and templates.

A variant is a Python object registered under the entry-point group `wasmgen.variants`; the
entry point's name is the name specs use (`variant: NAME`). The built-in ones (headers, cors)
register the same way a third-party package does:

    [project.entry-points."wasmgen.variants"]
    stamp = "wasmgen_stamp:Stamp"

class Stamp(Variant[StampOptions]):
    '''Add configured response headers.'''            # the one-line description
    options_model = StampOptions                        # validates the spec's options:
    templates = Path(__file__).parent / "templates"     # overrides, file by file (optional)
    examples = Path(__file__).parent / "examples"       # example specs (optional)

    def rules(self, options: StampOptions) -> Rules:
        return Rules(response=[set_headers(dict(options.headers))])

Everything else (validation, planning, rendering, formatting, writing, building, testing,
packaging, pushing) is the shared pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from wasmgen.records import record
from wasmgen.spec.base import Model
from wasmgen.spec.dsl import RuleBuilder
from wasmgen.spec.models import Rule


class VariantOptions(Model):
    """Base for a variant's options: camelCase keys in YAML, unknown keys refused, frozen."""


class NoOptions(VariantOptions):
    """A variant without options."""


OptionsT = TypeVar("OptionsT", bound=BaseModel)
RuleLike = Rule | RuleBuilder | Mapping[str, Any]


@record
class Rules:
    """Header rules for the engine every plugin runs, applied before the spec's own rules:
    Rule models, DSL builders (set_headers(...).when(...)) or dicts in the YAML spelling."""

    request: Sequence[RuleLike] = ()
    response: Sequence[RuleLike] = ()

    def data(self) -> tuple[list[Any], list[Any]]:
        """Both phases in the YAML spelling (anything else is left for validation to refuse)."""
        return [_data(r) for r in self.request], [_data(r) for r in self.response]


def _data(rule: RuleLike) -> Any:
    if isinstance(rule, Rule):
        return rule.as_config()
    if isinstance(rule, RuleBuilder):
        return rule.data()
    return rule


class Variant(Generic[OptionsT]):
    """A kind of plugin. Subclass it, set options_model (and templates, examples), override
    rules(); the class docstring's first line (or description) is what `wasmgen variants`
    shows."""

    description: str = ""
    options_model: type[OptionsT]
    templates: Path | None = None  # a folder like generators/headers/, holding only overrides
    examples: Path | None = None  # a folder of example specs (*.yaml)

    def rules(self, options: OptionsT) -> Rules:
        """The header rules these options stand for (default: none)."""
        return Rules()

    def summary(self) -> str:
        """The one-line description."""
        text = self.description or (type(self).__doc__ or "").strip()
        return text.splitlines()[0].strip() if text else ""
