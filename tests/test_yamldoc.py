"""The spec reader: YAML 1.2 core types, positions, duplicate keys, aliases and tags."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import run_cli
from wasmgen.spec.yamldoc import YamlError, YamlList, YamlMap, parse_documents


def one(text: str) -> object:
    docs = parse_documents(text, 32)
    assert len(docs) == 1
    return docs[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),  # YAML 1.1 booleans are strings in 1.2
        ("on", "on"),
        ("n", "n"),
        ("true", True),
        ("FALSE", False),
        ("0777", 777),  # no 1.1 octal
        ("0o17", 15),
        ("0x1f", 31),
        ("-12", -12),
        ("1.5e3", 1500.0),
        ("1_000", "1_000"),
        ("2001-12-14", "2001-12-14"),  # no timestamps
        ("~", None),
        ("null", None),
        ("'true'", "true"),
        ('"12"', "12"),
        ("!!str 12", "12"),
        ("!!float 3", 3.0),
        ("! 12", "12"),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    got = one(f"k: {text}\n")
    assert isinstance(got, YamlMap)
    assert got["k"] == value and type(got["k"]) is type(value)


def test_infinity_and_nan() -> None:
    got = one("a: -.inf\nb: .NaN\n")
    assert isinstance(got, dict)
    assert got["a"] == -math.inf and math.isnan(got["b"])


def test_every_key_value_and_item_keeps_its_position() -> None:
    doc = one("name: demo\nresponse:\n  - set: {x-a: '1'}\n  -   remove: [x-b]\n")
    assert isinstance(doc, YamlMap)
    assert doc.keys_at["name"] == (0, 0) and doc.values_at["name"] == (0, 6)
    rules = doc["response"]
    assert isinstance(rules, YamlList)
    assert rules.items_at == [(2, 4), (3, 6)]
    first = rules[0]
    assert isinstance(first, YamlMap) and first["set"].keys_at["x-a"] == (2, 10)


def test_an_alias_is_its_anchor_not_a_copy() -> None:
    doc = one("a: &x {k: v}\nb: *x\n")
    assert isinstance(doc, dict) and doc["a"] is doc["b"]


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'", (2, 0)),
        ("a: !custom 1\n", "unsupported tag '!custom'", (0, 3)),
        ("a: !!int x\n", "'x' is not a valid !!int", (0, 3)),
        ("a: *nope\n", "unknown alias *nope", (0, 3)),
        ("? [1]\n: v\n", "a mapping key must be a plain value", (0, 2)),
    ],
)
def test_malformed_documents_say_what_and_where(
    text: str, message: str, position: tuple[int, int] | None
) -> None:
    with pytest.raises(YamlError) as caught:
        parse_documents(text, 32)
    assert message in caught.value.message
    if position is not None:
        assert caught.value.position == position


def test_merge_keys_merge_and_keys_written_here_win() -> None:
    """`<<` (which most YAML tools read, though YAML 1.2 dropped it) merges mappings; a key
    written in the mapping wins, then the earlier source; a merged key points where its source
    wrote it; a quoted '<<' or one that is not a key is the plain string."""
    doc = one(
        "b: &b {x: 1, y: 2}\no: &o {y: 9, z: 3}\nm:\n  <<: [*b, *o]\n  x: 5\nl: [<<]\nq: {'<<': 1}\n"
    )
    assert isinstance(doc, dict)
    merged = doc["m"]
    assert merged == {"x": 5, "y": 2, "z": 3}
    assert merged.keys_at == {"x": (4, 2), "y": (0, 13), "z": (1, 13)}
    assert doc["l"] == ["<<"] and doc["q"] == {"<<": 1}
    assert one("<<\n") == "<<"
    with pytest.raises(YamlError, match="a merge key"):
        parse_documents("m: {<<: 1}\n", 32)


def test_a_spec_may_share_rule_parts_through_merge_keys(tmp_path: Path) -> None:
    """A merged condition is validated like a written one, and a problem in it is reported
    where the anchor wrote it."""
    spec = tmp_path / "spec.yaml"
    head = "name: merged\nselector: {app: x}\nimage: r.example.com/w:v1\nresponse:\n"
    spec.write_text(
        head + "  - set: {x-a: '1'}\n    when: &api {path: {prefix: /api/}}\n"
        "  - set: {x-b: '2'}\n    when: {<<: *api, method: [GET]}\n"
    )
    result = run_cli("export", str(spec), "--python")
    assert result.code == 0, result.stderr
    assert result.stdout.count('path={"prefix": "/api/"}') == 2
    assert 'path={"prefix": "/api/"}, method=["GET"]' in result.stdout
    spec.write_text(
        head + "  - set: {x-a: '1'}\n    when: &api {path: {prefix: /api/}, methd: [GET]}\n"
        "  - set: {x-b: '2'}\n    when: {<<: *api}\n"
    )
    result = run_cli("export", str(spec), "--python")
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert all(f"{spec}:6:40: " in line and "methd" in line for line in lines), lines
    assert len(lines) == 2  # once for each rule, both at the anchor


def test_yaml_1_1_words_stay_header_values(tmp_path: Path) -> None:
    """`yes`, `off` and `0777` in a spec are the strings a user wrote, as YAML 1.2 reads them."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: words\nselector: {app: x}\nimage: r.example.com/w:v1\n"
        "response:\n  - set: {x-a: yes, x-b: off, x-c: '0777'}\n"
    )
    result = run_cli("export", str(spec), "--python")
    assert result.code == 0, result.stderr
    assert '"x-a": "yes"' in result.stdout and '"x-b": "off"' in result.stdout
