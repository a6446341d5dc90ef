"""What a test case expects of one header: exactly a text, a pattern, or absence."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Tag

from wasmgen.spec.base import Model
from wasmgen.spec.names import Regex, compile_regex


class ValueMatch(Model):
    """An expected header value that varies (a time, a generated request id): an RE2 regex
    the value must contain a match of (unanchored search, as matches in conditions)."""

    matches: Regex


def _kind(value: Any) -> str:
    # Tags hold "[" so that spec messages leave them out of the key path, as pydantic's own.
    return "expected[pattern]" if isinstance(value, dict | ValueMatch) else "expected[text]"


# An expected header value: exactly this text, a pattern, or None for absent. A mapping is
# only ever a pattern, so its mistakes are reported as that and not as "not a string".
Expected = (
    Annotated[
        Annotated[str, Tag("expected[text]")] | Annotated[ValueMatch, Tag("expected[pattern]")],
        Discriminator(_kind),
    ]
    | None
)


def shown(value: Expected) -> str:
    """How an expectation reads in a failure message: 'text', /regex/ or absent."""
    if value is None:
        return "absent"
    return f"/{value.matches}/" if isinstance(value, ValueMatch) else repr(value)


def holds(value: Expected, actual: str | None) -> bool:
    """Whether a header's first value (None: absent) meets an expectation."""
    if value is None or actual is None:
        return value is None and actual is None
    if isinstance(value, ValueMatch):
        return compile_regex(value.matches).search(actual) is not None
    return actual == value


def go_check(value: Expected) -> tuple[str, bool, bool]:
    """An expectation as the generated Go tests' check holds it: (value or regex, absent,
    pattern)."""
    if isinstance(value, ValueMatch):
        return value.matches, False, True
    return value or "", value is None, False
