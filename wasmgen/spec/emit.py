"""Write a spec as a Python DSL script (black-formatted) that builds an equal spec.

One emitter serves `wasmgen init --python` and `wasmgen export SPEC --python`: the script
rebuilds the spec with wasmgen.Plugin(...) and, run as `python SCRIPT [DIR]`, writes the same
project `wasmgen generate SPEC -o DIR` writes.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any

from wasmgen.errors import WasmgenError
from wasmgen.spec.image import expand_variables
from wasmgen.spec.loader import source_of
from wasmgen.spec.models import Rule, Spec

LINE_LENGTH = 100
# Rule operations (YAML spelling) -> the DSL function that builds one.
BUILDERS = {
    "set": "set_headers",
    "append": "append",
    "addIfAbsent": "add_if_absent",
    "remove": "remove",
    "rename": "rename",
    "copyFromRequest": "copy_from_request",
    "respond": "respond",
}
# Spec fields the DSL sets with .options(...), by their YAML names.
OPTION_FIELDS = (
    "imagePullPolicy",
    "imagePullSecret",
    "phase",
    "priority",
    "failStrategy",
    "onInvalidConfig",
    "templates",
)


def _literal(value: Any) -> str:
    """A Python literal for JSON-like data (black normalises the quotes)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if value is None or isinstance(value, str | int | float | bool):
        return repr(value)
    raise WasmgenError(f"cannot write a {type(value).__name__} as a Python literal: {value!r}")


def _call(function: str, /, *args: Any, **kwargs: Any) -> str:
    """name(args, key=value, ...) with Python literals; keys that are not names go in **{...}."""
    parts = [_literal(a) for a in args]
    odd = {k: v for k, v in kwargs.items() if not k.isidentifier() or keyword.iskeyword(k)}
    parts += [f"{k}={_literal(v)}" for k, v in kwargs.items() if k not in odd]
    if odd:
        parts.append(f"**{_literal(odd)}")
    return f"{function}({', '.join(parts)})"


def _rule(rule: Rule, used: set[str]) -> str:
    data = rule.as_config()
    when = data.pop("when", None)
    op, arg = next(iter(data.items()))
    builder = BUILDERS[op]
    used.add(builder)
    if op == "remove":
        text = _call(builder, *arg)
    elif op == "respond":
        extra = {k: arg[k] for k in ("body", "headers") if arg.get(k)}
        if "copyFromRequest" in arg:
            extra["copy_from_request"] = arg["copyFromRequest"]
        text = _call(builder, arg["status"], **extra)
    else:
        text = _call(builder, arg)
    if when and "not" in when:  # a Python keyword: the builder takes not_=
        when = {("not_" if k == "not" else k): v for k, v in when.items()}
    return text + (f".{_call('when', **when)}" if when else "")


def _image_as_written(spec: Spec) -> str:
    """The image as the spec's source wrote it (with its $VARIABLES), when that still expands
    to the validated reference; else the validated reference."""
    raw = source_of(spec).document
    written = raw.get("image") if isinstance(raw, Mapping) else None
    if isinstance(written, str):
        try:
            if expand_variables(written.strip()).removeprefix("oci://") == spec.image:
                return written
        except ValueError:
            pass
    return spec.image


def _docstring(text: str) -> str:
    text = text.strip()
    if '"""' in text or "\\" in text or text.endswith('"') or not text.isprintable():
        return _literal(text)  # escaped: a CR in a file name must not end the script's lines
    return f'"""{text}"""'


def _labels(labels: Mapping[str, str]) -> str:
    names = all(k.isidentifier() and not keyword.iskeyword(k) for k in labels)
    return _call("select", **labels) if names else _call("select", dict(labels))


def spec_calls(spec: Spec, used: set[str]) -> list[str]:
    """The chained DSL calls after wasmgen.Plugin(...), in the order a reader expects."""
    data = spec.model_dump(by_alias=True, exclude_defaults=True)
    calls: list[str] = []
    if spec.selector:
        calls.append(_labels(spec.selector))
    for ref in data.get("targetRefs", []):
        calls.append(_call("target", ref.pop("name"), **ref))
    calls.append(_call("image", _image_as_written(spec)))
    fields = {k: data[k] for k in OPTION_FIELDS if k in data}
    if fields:
        calls.append(_call("options", **fields))
    if "variant" in data or spec.options:
        calls.append(
            _call("variant", spec.variant, spec.options)
            if spec.options
            else _call("variant", spec.variant)
        )
    switched = {
        k: v
        for k, v in (
            ("secure_headers", spec.presets.secure_headers),
            ("strip_server_headers", spec.presets.strip_server_headers),
        )
        if v
    }
    if switched:
        calls.append(_call("presets", **switched))
    for phase in ("request", "response"):
        rules = getattr(spec, phase)
        if rules:
            calls.append(f"{phase}({', '.join(_rule(r, used) for r in rules)})")
    for case in data.get("tests", []):
        extra = {k: case[k] for k in ("request", "response") if k in case}
        calls.append(_call("test", case["name"], **extra, expect=case.get("expect", {})))
    return calls


def python_script(spec: Spec, docstring: str) -> str:
    """A script that builds spec with the DSL and, run as `python SCRIPT [DIR]`, generates it
    into DIR (default build/<name>); formatted by black."""
    used: set[str] = set()
    calls = spec_calls(spec, used)
    head = _call("wasmgen.Plugin", spec.name, namespace=spec.namespace)
    chain = "\n".join(f"    .{c}" for c in calls)
    imports = f"from wasmgen import {', '.join(sorted(used))}\n" if used else ""
    default_out = f"build/{spec.name}"
    text = (
        f"{_docstring(docstring)}\n\n"
        "import sys\n\n"
        "import wasmgen\n"
        f"{imports}\n"
        f"spec = (\n    {head}\n{chain}\n    .build()\n)\n\n"
        'if __name__ == "__main__":\n'
        "    # python THIS_FILE [DIR]: write the plugin project into DIR\n"
        f"    wasmgen.generate(spec, sys.argv[1] if len(sys.argv) > 1 else {default_out!r})\n"
    )
    import black  # loaded only when Python is emitted: it costs 50 ms at start-up

    return black.format_str(text, mode=black.Mode(line_length=LINE_LENGTH))
