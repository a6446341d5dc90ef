"""Frozen records: what `@dataclass(frozen=True)` gives, without its cost at every start.

The stdlib writes six methods per class as source text and compiles them when the class is
created: about 3.7 M instructions a class, paid by every process before it does anything
(wasmgen's generate creates some 30 records). `record` gives the same class behaviour with
methods shared by every record, created without compiling anything (0.13 M a class):

- `__init__` with positional or keyword arguments, defaults, `field(default_factory=...)`,
  and `__post_init__`;
- `__repr__`, `__eq__` (same class, equal fields, `is` first as tuples compare) and a
  matching `__hash__`; `repr=False` and `compare=False` fields are left out of them;
- assignment and deletion raise `dataclasses.FrozenInstanceError`;
- `__match_args__`, and `__dataclass_fields__` and `__dataclass_params__`, so
  `dataclasses.fields()`, `replace()`, `asdict()` and `is_dataclass()` work on records as on
  dataclasses, and a stdlib dataclass may extend a record (a user's, of a public type).

`@record(frozen=False)` makes a mutable one (unhashable, as a dataclass), `@record(kw_only=True)`
one built from keyword arguments only. A method the class body defines itself is kept, as the
stdlib keeps it. For `init=False` fields, `order=True`, `eq=False` or a class that extends
another, use the stdlib: `record` refuses them rather than doing them another way.
Creating an instance costs about 0.5 us more than a dataclass's generated `__init__`.
Type checkers see `record` as a frozen dataclass (PEP 681).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform, overload

T = TypeVar("T")

_MISSING: Any = dataclasses.MISSING
# dataclasses.fields() returns the fields marked as such; the marker is the stdlib's own.
_FIELD_MARK: Any = getattr(dataclasses, "_FIELD", None)
_MUTABLE_DEFAULTS = (list, dict, set)


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return str(annotation).startswith("typing.ClassVar")


def _fields(cls: type, kw_only: bool) -> list[dataclasses.Field[Any]]:
    """The record's fields from its annotations, in order; class attributes become defaults."""
    found: list[dataclasses.Field[Any]] = []
    for name, annotation in inspect.get_annotations(cls).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec: dataclasses.Field[Any] = (
            value if isinstance(value, dataclasses.Field) else dataclasses.field(default=value)
        )
        if not spec.init:
            raise TypeError(f"{cls.__qualname__}.{name}: init=False needs @dataclass")
        if isinstance(spec.default, _MUTABLE_DEFAULTS):
            raise ValueError(
                f"{cls.__qualname__}.{name}: mutable default {type(spec.default).__name__} "
                "is shared by every instance: use field(default_factory=...)"
            )
        spec.name = name
        spec.type = annotation
        spec.kw_only = kw_only  # as the stdlib resolves it, so a dataclass may extend a record
        spec._field_type = _FIELD_MARK  # type: ignore[attr-defined]
        if isinstance(value, dataclasses.Field):  # the class attribute becomes the plain default
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        found.append(spec)
    seen_default = False
    for spec in [] if kw_only else found:  # keyword-only fields may come in any order
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(
                f"{cls.__qualname__}: non-default argument {spec.name!r} follows default argument"
            )
        seen_default = seen_default or has_default
    return found


def _make_init(
    cls: type, fields: list[dataclasses.Field[Any]], kw_only: bool
) -> Callable[..., None]:
    qualname = cls.__qualname__
    names = tuple(f.name for f in fields)
    count = 0 if kw_only else len(names)
    defaults = {f.name: f.default for f in fields if f.default is not _MISSING}
    factories = {
        f.name: cast("Callable[[], Any]", f.default_factory)
        for f in fields
        if f.default_factory is not _MISSING
    }
    post_init: Callable[[Any], None] | None = getattr(cls, "__post_init__", None)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = len(args)
        if given > count:
            raise TypeError(
                f"{qualname}.__init__() takes {count + 1} positional argument"
                f"{'s' if count else ''} but {given + 1} were given"
            )
        values = self.__dict__
        values.update(zip(names, args, strict=False))
        for name in names[given:]:
            if name in kwargs:
                values[name] = kwargs.pop(name)
            elif name in defaults:
                values[name] = defaults[name]
            elif name in factories:
                values[name] = factories[name]()
            else:
                raise TypeError(f"{qualname}.__init__() missing required argument: {name!r}")
        if kwargs:
            name = next(iter(kwargs))
            if name in names:
                raise TypeError(f"{qualname}.__init__() got multiple values for argument {name!r}")
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {name!r}")
        if post_init is not None:
            post_init(self)

    return __init__


def _make_methods(cls: type, fields: list[dataclasses.Field[Any]]) -> dict[str, Any]:
    qualname = cls.__qualname__
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)

    def __repr__(self: Any) -> str:
        values = self.__dict__
        return f"{qualname}({', '.join(f'{n}={values[n]!r}' for n in shown)})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        for name in compared:
            a, b = mine[name], theirs[name]
            if a is not b and not a == b:
                return False
        return True

    def __hash__(self: Any) -> int:
        values = self.__dict__
        return hash(tuple([values[n] for n in compared]))

    return {"__repr__": __repr__, "__eq__": __eq__, "__hash__": __hash__}


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = True, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(
    cls: type[T] | None = None, /, *, frozen: bool = True, kw_only: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make cls a record (see the module's docstring): `@record`, or `@record(frozen=False)`
    for one whose fields may be assigned (and which is then unhashable, as a dataclass is),
    or `@record(kw_only=True)` for one built from keyword arguments only."""

    def make(cls: type[T]) -> type[T]:
        return _make_record(cls, frozen, kw_only)

    return make if cls is None else make(cls)


def _make_record(cls: type[T], frozen: bool, kw_only: bool) -> type[T]:
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a record cannot extend a dataclass or a record")
    fields = _fields(cls, kw_only)
    own = cls.__dict__
    methods: dict[str, Any] = {
        "__init__": _make_init(cls, fields, kw_only),
        **_make_methods(cls, fields),
        "__match_args__": () if kw_only else tuple(f.name for f in fields),
    }
    if frozen:
        methods |= {"__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr}
    else:
        methods["__hash__"] = None  # equal by value yet mutable: unhashable, as a dataclass
    # A class that defines __eq__ alone gets __hash__ = None from Python: not its own choice.
    own_hash = own.get("__hash__", _MISSING)
    explicit_hash = not (own_hash is _MISSING or (own_hash is None and "__eq__" in own))
    for name, method in methods.items():
        if (name == "__hash__" and not explicit_hash) or (name != "__hash__" and name not in own):
            setattr(cls, name, method)
    setattr(cls, "__dataclass_fields__", {f.name: f for f in fields})  # noqa: B010 (type[T])
    setattr(cls, "__dataclass_params__", _Params(frozen, kw_only))  # noqa: B010 (type[T])
    return cls


class _Params:
    """What `__dataclass_params__` tells: a stdlib dataclass that extends a record reads it."""

    def __init__(self, frozen: bool, kw_only: bool) -> None:
        self.init = self.repr = self.eq = self.match_args = True
        self.order = self.unsafe_hash = self.slots = self.weakref_slot = False
        self.frozen = frozen
        self.kw_only = kw_only

    def __repr__(self) -> str:
        return f"_Params(frozen={self.frozen}, kw_only={self.kw_only})"
