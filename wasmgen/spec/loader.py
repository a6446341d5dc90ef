"""Read a spec from YAML with positions, and turn every problem into file:line:col messages."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from wasmgen.errors import Problem, SpecError, WasmgenError, printable
from wasmgen.fsutil import InputRefused, read_input
from wasmgen.spec.checks import cross_checks
from wasmgen.spec.models import Loc, Rule, Source, Spec
from wasmgen.spec.yamldoc import YamlError, YamlLimit, YamlList, YamlMap, parse_documents

MAX_SPEC_BYTES = 1 << 20
MAX_NODES = 100_000  # counted through aliases: stops "billion laughs" documents
MAX_EXPANDED_BYTES = 4 << 20  # text of every scalar, counted through aliases
_KINDS = {"YamlMap": "mapping", "YamlList": "list", "dict": "mapping", "NoneType": "null"}
MAX_DEPTH = 32  # a spec needs about 8 levels; deeper documents are refused before validation


def load_spec(path: str | Path, *, trust_templates: bool = False) -> Spec:
    """Read, parse and validate a YAML spec; raise SpecError listing every problem. Its
    templates: must be a folder under the spec's own unless trust_templates."""
    if not isinstance(path, str | os.PathLike):
        raise WasmgenError(
            f"load_spec() takes the path of a YAML spec, got {type(path).__name__}",
            hint="wasmgen.load_spec('spec.yaml'), or build a spec with wasmgen.Plugin(...)",
        )
    p = Path(path)
    name = str(path)
    try:
        raw = read_input(p, MAX_SPEC_BYTES)
    except InputRefused as exc:
        reason = exc.reason
        if reason.startswith("is a directory"):
            reason = "is a directory, expected a YAML file"
        raise SpecError([Problem("", reason, file=name)]) from None
    spec = parse_spec(raw, name)
    if spec.templates is not None:
        folder = template_folder(spec, p, trust_templates)
        spec = spec.model_copy(update={"templates": str(folder)})
    return spec


def template_folder(spec: Spec, path: Path, trust: bool) -> Path:
    """The spec's templates: folder, which must be a directory under the spec's own folder
    (relative, no "..", not leading out through a symlink) unless trust: its templates render
    in Jinja's sandbox, but a folder elsewhere could be anything (/proc, /etc, a device)."""
    raw = spec.templates or ""
    base = Path(os.path.realpath(path)).parent
    folder = Path(os.path.realpath(base / raw))
    hint = (
        "templates: names a folder under the spec's own, e.g. templates: my-templates "
        "(`wasmgen variant DIR` starts one); `wasmgen --trust-templates COMMAND ...` allows any folder"
    )
    why = None
    if not trust:
        if not raw.strip():
            why = "is empty"
        elif Path(raw).is_absolute():
            why = "is an absolute path"
        elif ".." in Path(raw).parts:
            why = "climbs out of the spec's folder with '..'"
        elif not folder.is_relative_to(base):
            why = f"resolves to {folder}, outside the spec's folder {base}"
    if why is None and not folder.is_dir():
        why = "does not exist" if not folder.exists() else "is not a directory"
        hint = "create one with `wasmgen variant DIR`, or drop templates: from the spec"
    if why is not None:
        problem = locate(spec, ("templates",), f"{printable(repr(raw))} {why}; {hint}")
        raise SpecError([problem])
    return folder


def parse_spec(raw: bytes, name: str = "<spec>") -> Spec:
    """Parse YAML bytes into a validated Spec."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([Problem("", f"file is larger than {MAX_SPEC_BYTES} bytes", file=name)])
    text = _decode(raw, name)
    doc = _parse_yaml(text, name)
    _count_nodes(doc, name)
    return validate(doc, name)


def validate(data: Any, name: str = "<spec>") -> Spec:
    """Validate already-parsed data (a YamlMap keeps positions) into a Spec."""
    problems = [_located(loc, msg, data, name) for loc, msg in cross_checks(data)]
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(err, data, name) for err in exc.errors()]
    if problems:
        raise spec_error(problems)
    spec._source = Source(name, data)
    return spec


def spec_error(problems: Iterable[Problem]) -> SpecError:
    """One SpecError for problems, each listed once, in file order."""
    unique = {(p.line, p.col, p.loc, p.message): p for p in problems}.values()
    return SpecError(sorted(unique, key=lambda p: (p.line or 0, p.col or 0)))


def source_of(spec: Spec) -> Source:
    """The file name and parsed document a spec was validated from."""
    return spec._source


def locate(spec: Spec, loc: Loc, message: str) -> Problem:
    """A problem at loc in spec's source document (file:line:col when it came from YAML)."""
    source = source_of(spec)
    return _located(loc, message, source.document, source.name)


def locate_errors(
    spec: Spec, exc: ValidationError, prefix: Loc = (), model: type[BaseModel] = Spec
) -> list[Problem]:
    """A validation error of model, run on the value at prefix in spec's document, as problems
    located the way the spec's own are (did-you-mean hints name model's keys)."""
    source = source_of(spec)
    return [_problem(err, source.document, source.name, prefix, model) for err in exc.errors()]


def check_rules(
    request: list[Any], response: list[Any], name: str
) -> tuple[list[Rule], list[Rule]]:
    """Validate rules (YAML spelling) made by code rather than written in a spec, with the checks
    a spec's own rules get; SpecError naming each problem's rule path under name."""
    data = {"request": request, "response": response}
    problems = [
        _located(loc, msg, None, name)
        for loc, msg in cross_checks(data)
        if loc and loc[0] in ("request", "response")
    ]
    rules: dict[str, list[Rule]] = {"request": [], "response": []}
    for phase, items in data.items():
        for i, item in enumerate(items):
            try:
                rules[phase].append(Rule.model_validate(item))
            except ValidationError as exc:
                problems += [_problem(err, None, name, (phase, i), Rule) for err in exc.errors()]
    if problems:
        raise spec_error(problems)
    return rules["request"], rules["response"]


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        msg = f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot start a character; save the file as UTF-8"
        raise SpecError([Problem("", msg, file=name, line=line, col=col)]) from None


def _parse_yaml(text: str, name: str) -> YamlMap:
    try:
        docs = parse_documents(text, MAX_DEPTH)
    except YamlError as exc:
        line, col = (exc.position[0] + 1, exc.position[1] + 1) if exc.position else (None, None)
        msg = exc.message if isinstance(exc, YamlLimit) else f"invalid YAML: {exc.message}"
        raise SpecError([Problem("", msg, file=name, line=line, col=col)]) from None
    if len(docs) > 1:
        raise SpecError(
            [Problem("", "expected one YAML document, found several", file=name, line=1)]
        )
    doc = docs[0] if docs else None
    if doc is None:
        raise SpecError(
            [
                Problem(
                    "",
                    "the spec is empty; run `wasmgen init` for a starter",
                    file=name,
                    line=1,
                    col=1,
                )
            ]
        )
    if not isinstance(doc, YamlMap):
        kind = _KINDS.get(type(doc).__name__, type(doc).__name__)
        raise SpecError(
            [
                Problem(
                    "",
                    f"the spec must be a mapping of keys, got a {kind}",
                    file=name,
                    line=1,
                    col=1,
                )
            ]
        )
    return doc


def _count_nodes(doc: Any, name: str) -> None:
    """Refuse documents whose aliases repeat more than MAX_NODES nodes or expand to more than
    MAX_EXPANDED_BYTES of text, or that nest deeper than MAX_DEPTH. Nodes written out in the
    file cost nothing (the file size is bounded already): a 10,000-rule spec loads."""
    repeats, size = MAX_NODES, MAX_EXPANDED_BYTES
    seen: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(doc, 0, False)]
    while stack:
        node, depth, repeated = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            repeated = repeated or id(node) in seen
            seen.add(id(node))
        if repeated:
            repeats -= 1
        if isinstance(node, str):
            size -= len(node)
        problem = None
        if repeats < 0:
            problem = f"the document expands to more than {MAX_NODES} nodes through aliases (a YAML alias bomb?)"
        elif size < 0:
            problem = f"the document expands to more than {MAX_EXPANDED_BYTES} bytes of text through aliases (a YAML alias bomb?)"
        elif depth > MAX_DEPTH:
            problem = f"the document nests deeper than a spec can (more than {MAX_DEPTH} levels)"
        if problem:
            raise SpecError([Problem("", problem, file=name, line=1, col=1)])
        if isinstance(node, Mapping):
            stack.extend((k, depth + 1, repeated) for k in node)
            stack.extend((v, depth + 1, repeated) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1, repeated) for v in node)


def _position(data: Any, loc: Loc, at_value: bool = False) -> tuple[int | None, int | None, Loc]:
    """Walk loc through the parsed containers; return 1-based line/col and the part that matched."""
    node = data
    line: int | None = None
    col: int | None = None
    walked: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(node, YamlMap) and isinstance(part, str) and part in node:
            last_scalar = i == len(loc) - 1 and not isinstance(node[part], YamlMap | YamlList)
            ln, cl = node.values_at[part] if at_value and last_scalar else node.keys_at[part]
            line, col = ln + 1, cl + 1
            node = node[part]
        elif isinstance(node, YamlList) and isinstance(part, int) and 0 <= part < len(node):
            ln, cl = node.items_at[part]
            line, col = ln + 1, cl + 1
            node = node[part]
        else:
            break
        walked.append(part)
    if line is None and isinstance(data, YamlMap | YamlList):
        line, col = 1, 1
    return line, col, tuple(walked)


def _located(loc: Loc, message: str, data: Any, name: str) -> Problem:
    line, col, _ = _position(data, loc)
    return Problem(_dotted(loc), message, file=name, line=line, col=col)


def _short(key: object, limit: int = 32) -> str:
    """A key as shown in a message: a file that is not a spec can make a whole line a key, and
    wasmgen shows where, never what the file holds beyond a key's first characters."""
    text = str(key)
    return text if len(text) <= limit else text[:limit] + "..."


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _clean_loc(err: ErrorDetails) -> Loc:
    """Drop pydantic's internal loc parts (validator names, union tags)."""
    out: list[str | int] = []
    for part in err["loc"]:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _problem(
    err: ErrorDetails, data: Any, name: str, prefix: Loc = (), model: type[BaseModel] = Spec
) -> Problem:
    """err of model, validating the value at prefix in data, located in data."""
    inner = _clean_loc(err)
    loc = prefix + inner
    is_key = any(isinstance(p, str) and p.endswith("[key]") for p in err["loc"])
    at_value = err["type"] not in ("extra_forbidden", "missing") and not is_key
    line, col, _ = _position(data, loc, at_value)
    message = _message(err, inner, model)
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        loc = (*loc[:-1], _short(loc[-1]))  # an unknown key may be a whole line of any file
    return Problem(_dotted(loc), message, file=name, line=line, col=col)


def _message(err: ErrorDetails, loc: Loc, model: type[BaseModel] = Spec) -> str:
    kind = err["type"]
    msg = err["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], model)
        key = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {_short(key)!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "missing required key"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ")
    if kind == "literal_error":
        return msg.replace("Input should be", "must be")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        got = type(err.get("input")).__name__
        got = _KINDS.get(got, got)
        return f"{msg.replace('Input should be', 'must be')} (got {got})"
    return (
        msg.replace("Input should", "must")
        .replace("List should", "list must")
        .replace("Dictionary should", "mapping must")
    )


def _allowed_keys(loc: Loc, root: type[BaseModel] = Spec) -> list[str]:
    """The YAML keys the model at loc (under root) accepts, for 'did you mean' hints."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part), None
        )
        if field is not None:  # else part is a key of a mapping of models (expect's headers)
            model = _model_of(field.annotation)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
