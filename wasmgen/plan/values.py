"""The deploy-time values of the compiled backend: every header value the rules declare.

The compiled plugin carries its rules as code and reads their values from pluginConfig, a flat
JSON object, as the wasm lab's plugin did ({"header_1": "first_header", ...}). A value's key is
its header name when that name gets a value in one place only; when a name gets values in
several places each is qualified with where it is, e.g. "response[1].x-frame-options" ('['
cannot appear in a header name, so the two forms never collide). Rules are indexed as in the
expanded rule list (presets first), like the comments in the generated code.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from wasmgen.records import record
from wasmgen.spec.expr import has_refs, parse

Phase = Literal["request", "response"]
VALUE_OPS = ("set", "append", "addIfAbsent")


@record
class ValueSlot:
    """One configurable header value."""

    key: str  # its key in pluginConfig
    phase: Phase
    index: int  # the rule's index in its phase
    op: str  # set, append, addIfAbsent, or respond (a local reply's header)
    header: str
    value: str  # the spec's value, what the generated manifests carry

    @property
    def expr(self) -> bool:
        """Whether the spec's value takes something from the traffic (${...})."""
        return "$" in self.value and has_refs(parse(self.value))

    @property
    def where(self) -> str:
        """The rule path, as error messages and comments name it: response[0].set["x-a"]."""
        op = "respond.headers" if self.op == "respond" else self.op
        return f'{self.phase}[{self.index}].{op}["{self.header}"]'


def value_slots(config: dict[str, Any]) -> tuple[ValueSlot, ...]:
    """Every header value of the expanded rules, in rule order, with its key."""
    raw: list[tuple[Phase, int, str, str, str]] = []
    phases: tuple[Phase, ...] = ("request", "response")
    for phase in phases:
        for index, rule in enumerate(config.get(phase, [])):
            for op in VALUE_OPS:
                for header, value in rule.get(op, {}).items():
                    raw.append((phase, index, op, header, value))
            for header, value in (rule.get("respond") or {}).get("headers", {}).items():
                raw.append((phase, index, "respond", header, value))
    uses = Counter(header for _, _, _, header, _ in raw)
    return tuple(
        ValueSlot(
            header if uses[header] == 1 else f"{phase}[{index}].{header}",
            phase,
            index,
            op,
            header,
            value,
        )
        for phase, index, op, header, value in raw
    )


def values_config(slots: tuple[ValueSlot, ...]) -> dict[str, str]:
    """The pluginConfig of the compiled backend: key -> the spec's value, in rule order."""
    return {slot.key: slot.value for slot in slots}
