"""wasmgen.records.record behaves as @dataclass(frozen=True) does, class by class."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from tests.helpers import ROOT
from wasmgen.records import record

Deco = Callable[[type], type]
BOTH: list[Deco] = [dataclasses.dataclass(frozen=True), record]
IDS = ["dataclass", "record"]


def _point(deco: Deco) -> Any:
    class Point:
        kind: ClassVar[str] = "point"
        x: int
        y: str
        tags: tuple[str, ...] = ()
        seen: list[int] = dataclasses.field(default_factory=list)
        secret: str = dataclasses.field(default="s", repr=False, compare=False)

        def total(self) -> int:
            return self.x * 2

    return deco(Point)


# Module level, so that pickle finds them.
PickledData: Any = dataclasses.dataclass(frozen=True)(
    type("PickledData", (), {"__annotations__": {"a": "int"}})
)
PickledRecord: Any = record(type("PickledRecord", (), {"__annotations__": {"a": "int"}}))
PickledData.__module__ = PickledRecord.__module__ = __name__


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_construction_defaults_repr_and_methods(deco: Deco) -> None:
    Point = _point(deco)
    p = Point(1, "a")
    assert (p.x, p.y, p.tags, p.seen, p.secret) == (1, "a", (), [], "s")
    assert Point(x=1, y="a", tags=("t",)).tags == ("t",)
    assert repr(Point(1, "a", ("t",))) == "_point.<locals>.Point(x=1, y='a', tags=('t',), seen=[])"
    assert p.total() == 2 and Point.kind == "point"
    assert Point(1, "a").seen is not Point(1, "a").seen  # a fresh list for each
    assert Point.__match_args__ == ("x", "y", "tags", "seen", "secret")
    match Point(3, "b"):
        case Point(3, y):
            assert y == "b"
        case _:
            pytest.fail("no match")


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_equality_and_hash(deco: Deco) -> None:
    Point = _point(deco)
    assert Point(1, "a") == Point(1, "a", secret="other")  # compare=False leaves it out
    assert Point(1, "a") != Point(2, "a")
    assert Point(1, "a") != (1, "a", (), [], "s")
    Hashable = deco(type("Hashable", (), {"__annotations__": {"a": "int", "b": "str"}}))
    assert hash(Hashable(1, "b")) == hash(Hashable(1, "b")) == hash((1, "b"))
    assert len({Hashable(1, "b"), Hashable(1, "b"), Hashable(2, "b")}) == 2
    nan = float("nan")
    Float = deco(type("Float", (), {"__annotations__": {"f": "float"}}))
    assert Float(nan) == Float(nan)  # the same object: equal, as in a tuple


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_frozen(deco: Deco) -> None:
    p = _point(deco)(1, "a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x
    assert p.x == 1


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_bad_arguments_raise_type_error(deco: Deco) -> None:
    Point = _point(deco)
    cases: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        ((), {}, "missing"),
        ((1,), {}, "missing"),
        ((1, "a", (), [], "s", "extra"), {}, "positional"),
        ((1, "a"), {"z": 1}, "unexpected keyword argument 'z'"),
        ((1, "a"), {"x": 1}, "multiple values for argument 'x'"),
    ]
    for args, kwargs, says in cases:
        with pytest.raises(TypeError, match=says):
            Point(*args, **kwargs)


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_dataclasses_functions_work(deco: Deco) -> None:
    Point = _point(deco)
    p = Point(1, "a", ("t",))
    assert dataclasses.is_dataclass(p) and not isinstance(p, type)
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "seen", "secret"]
    assert dataclasses.replace(p, x=5) == Point(5, "a", ("t",))
    assert dataclasses.asdict(p) == {"x": 1, "y": "a", "tags": ("t",), "seen": [], "secret": "s"}
    assert copy.copy(p) == p and copy.deepcopy(p) == p


def test_pickles() -> None:
    for cls in (PickledData, PickledRecord):
        assert pickle.loads(pickle.dumps(cls(7))) == cls(7)


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_post_init_and_own_methods_are_kept(deco: Deco) -> None:
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")
            object.__setattr__(self, "a", self.a * 10)

        def __repr__(self) -> str:
            return "mine"

    made: Any = deco(Checked)
    assert made(2).a == 20 and repr(made(2)) == "mine"
    with pytest.raises(ValueError, match="negative"):
        made(-1)


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_own_eq_and_hash_are_kept(deco: Deco) -> None:
    class Any_:
        a: int

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Any_)

        def __hash__(self) -> int:
            return 0

    same: Any = deco(Any_)
    assert same(1) == same(2) and hash(same(5)) == 0

    class EqOnly:
        a: int

        def __eq__(self, other: object) -> bool:
            return True

    eq_only: Any = deco(EqOnly)  # Python set __hash__ = None; frozen, the fields are hashed
    assert eq_only(1) == eq_only(2) and hash(eq_only(3)) == hash((3,))


@pytest.mark.parametrize("deco", BOTH, ids=IDS)
def test_class_definition_errors(deco: Deco) -> None:
    with pytest.raises(ValueError, match="mutable default"):
        deco(type("Bad", (), {"__annotations__": {"a": "list[int]"}, "a": []}))
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        deco(type("Order", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))


def test_what_a_record_refuses() -> None:
    """What only the stdlib does is refused, not silently done another way."""
    with pytest.raises(TypeError, match="init=False needs @dataclass"):
        record(
            type("Late", (), {"__annotations__": {"a": "int"}, "a": dataclasses.field(init=False)})
        )
    Base: Any = dataclasses.dataclass(frozen=True)(
        type("Base", (), {"__annotations__": {"a": "int"}})
    )
    with pytest.raises(TypeError, match="cannot extend"):
        record(type("Sub", (Base,), {"__annotations__": {"b": "int"}}))


def test_a_record_costs_less_to_create_than_a_dataclass() -> None:
    """The point of records: creating the class compiles nothing (counted, not timed)."""
    probe = (
        "import builtins, dataclasses, sys\n"
        "from wasmgen.records import record\n"
        "calls = []\n"
        "real = builtins.exec\n"
        "builtins.exec = lambda *a, **k: (calls.append(1), real(*a, **k))[1]\n"
        "deco = record if sys.argv[1] == 'record' else dataclasses.dataclass(frozen=True)\n"
        "for i in range(5):\n"
        "    deco(type(f'C{i}', (), {'__annotations__': {'a': 'int', 'b': 'str'}, 'b': ''}))\n"
        "print(len(calls))\n"
    )
    counts = {
        kind: int(
            subprocess.run(
                [sys.executable, "-c", probe, kind],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for kind in ("dataclass", "record")
    }
    assert counts["record"] == 0 and counts["dataclass"] >= 5 * 5, counts


MUTABLE: list[Deco] = [dataclasses.dataclass, record(frozen=False)]
KW_ONLY: list[Deco] = [dataclasses.dataclass(frozen=True, kw_only=True), record(kw_only=True)]


@pytest.mark.parametrize("deco", MUTABLE, ids=IDS)
def test_a_mutable_record_is_assignable_equal_by_value_and_unhashable(deco: Deco) -> None:
    Point = _point(deco)
    p = Point(1, "a")
    p.x = 5
    p.seen.append(1)
    assert (p.x, p.seen) == (5, [1]) and p == Point(5, "a", seen=[1])
    with pytest.raises(TypeError, match="unhashable"):
        hash(p)
    assert dataclasses.replace(p, y="b") == Point(5, "b", seen=[1])


@pytest.mark.parametrize("deco", KW_ONLY, ids=IDS)
def test_a_keyword_only_record_takes_keywords_only(deco: Deco) -> None:
    Late: Any = deco(type("Late", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    assert Late(b=2) == Late(a=1, b=2) and Late(b=2, a=3).a == 3
    assert Late.__match_args__ == ()
    with pytest.raises(TypeError, match="positional argument"):
        Late(1, 2)
    with pytest.raises(TypeError, match="missing"):
        Late(a=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Late(b=2).b = 3


def test_a_dataclass_may_extend_a_record() -> None:
    """A user's own dataclass on top of a public record (wasmgen.HttpRequest is one)."""
    Base: Any = record(type("Base", (), {"__annotations__": {"a": "int"}}))
    Sub: Any = dataclasses.dataclass(frozen=True)(
        type("Sub", (Base,), {"__annotations__": {"b": "str"}, "b": "x"})
    )
    assert Sub(1) == Sub(1, "x") and (Sub(1).a, Sub(1).b) == (1, "x")
    assert [f.name for f in dataclasses.fields(Sub)] == ["a", "b"]
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
        dataclasses.dataclass(type("Thaw", (Base,), {"__annotations__": {"c": "int"}}))
