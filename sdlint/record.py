"""`@record`: sdlint's plain value types, as dataclasses without their import-time cost.

Every stage of sdlint hands the next plain values (a tensor, a header, a diagnostic, a verdict):
about a hundred small classes, most of them on the path of every `sdlint check`. As dataclasses
they cost that path most of its imports: on Python 3.11, `@dataclass(frozen=True)` compiles each
generated method separately (about 1.3 ms a class), and `import dataclasses` brings inspect, ast,
dis, tokenize and linecache with it (about 18 ms). A check of a single header spent more time
creating classes than reading and checking the file.

`record` mirrors the subset of `dataclasses` sdlint uses, with the same semantics:

- `@record` is `@dataclass(frozen=True)`; `@record(frozen=False)`, `@record(eq=False)` and
  `@record(order=True)` are the dataclass options of the same names.
- Fields are the class's own annotations (after those of record base classes, in order; a
  `ClassVar` is not a field), with a default, a `field(default=...)`, or a
  `field(default_factory=...)`; `field(compare=False)` and `field(repr=False)` leave a field out
  of equality and hashing, or of the repr. A mutable default (list, dict, set) is refused, a field
  without a default after one with a default too, as dataclasses do.
- `__init__` takes the fields positionally or by name and calls `__post_init__` if the class has
  one; `__repr__` is `Name(a=1, b='x')`; `__eq__` compares the compared fields in order, between
  instances of the same class only; a frozen record hashes them, a mutable one is unhashable, an
  `eq=False` one keeps identity (as with `eq=False` dataclasses); `order=True` adds `<`, `<=`,
  `>`, `>=` on the same tuple. A method the class body defines itself is kept.
- Assigning or deleting an attribute of a frozen record raises `FrozenInstanceError` (an
  `AttributeError`, as `dataclasses.FrozenInstanceError`).
- `replace(obj, **changes)`, `fields(cls_or_obj)` (the `Field`s in order: `name`, `type` as
  written, `default`, `default_factory`, `compare`, `repr`) and `is_record(obj)` are
  `dataclasses.replace`, `.fields` and `.is_dataclass`.

Not supported, because sdlint does not use them: `slots`, `kw_only`, `init=False` fields,
`InitVar`, `unsafe_hash`, `asdict`. The generated `__init__` carries no annotations.

What it costs instead: creating a class makes a few closures and an `__init__` renamed from a
template of its shape (sdlint/_record_init.py, loaded from bytecode: nothing is compiled at run
time), a few hundredths of a millisecond against 1.3 ms; constructing an instance is faster than a
dataclass's (a frozen record writes its fields into the instance's `__dict__` rather than through
`object.__setattr__`). It imports nothing but what Python has loaded at start; for type checkers,
`record` is a `dataclass_transform` (PEP 681) and `field` its field specifier.
"""

from __future__ import annotations

from _thread import get_ident
from operator import attrgetter  # loaded at Python's start (by collections)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, overload

    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")
else:

    def overload(function):
        return function

    def dataclass_transform(**_):
        return overload


__all__ = [
    "MISSING",
    "Field",
    "FrozenInstanceError",
    "field",
    "fields",
    "is_record",
    "record",
    "replace",
]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


MISSING: Any = _Sentinel("MISSING")  # "no default", as dataclasses.MISSING
_FACTORY: Any = _Sentinel("<factory>")  # the `__init__` default of a field with a default_factory


class FrozenInstanceError(AttributeError):
    """An attribute of a frozen record was assigned or deleted."""


class Field:
    """One field of a record: what `field()` returns and `fields()` lists."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr", "type")

    def __init__(self, default: Any, default_factory: Any, compare: bool, repr: bool) -> None:
        self.name: str = ""
        self.type: Any = None  # the annotation as written (a string under `annotations`)
        self.default: Any = default
        self.default_factory: Callable[[], Any] = default_factory
        self.compare = compare
        self.repr = repr

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r}, "
            f"default_factory={self.default_factory!r}, compare={self.compare}, repr={self.repr})"
        )


@overload
def field(*, default: _T, compare: bool = True, repr: bool = True) -> _T: ...
@overload
def field(  # noqa: F811
    *,
    default_factory: Callable[[], _T],
    compare: bool = True,
    repr: bool = True,
) -> _T: ...
@overload
def field(*, compare: bool = True, repr: bool = True) -> Any: ...  # noqa: F811
def field(  # noqa: F811
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    compare: bool = True,
    repr: bool = True,
) -> Any:
    """A field with a default, a default factory, or left out of comparison or repr."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, compare, repr)


def fields(class_or_instance: Any) -> tuple[Field, ...]:
    """The record's fields, in order (those of record base classes first)."""
    try:
        found: tuple[Field, ...] = class_or_instance.__record_fields__
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None
    return found


def is_record(obj: Any) -> bool:
    """Whether `obj` is a record class or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return hasattr(cls, "__record_fields__")


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record `obj` with `changes` to its fields (through its `__init__`)."""
    for f in fields(obj):
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    new: _T = obj.__class__(**changes)
    return new


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(  # noqa: F811
    *, frozen: bool = True, eq: bool = True, order: bool = False
) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(  # noqa: F811
    cls: type[_T] | None = None, /, *, frozen: bool = True, eq: bool = True, order: bool = False
) -> Any:
    """Make `cls` a record: `@record`, or `@record(frozen=..., eq=..., order=...)`."""
    if cls is None:
        return lambda cls: _make(cls, frozen, eq, order)
    return _make(cls, frozen, eq, order)


# How a string annotation names a ClassVar (annotations are strings in sdlint's modules).
_CLASSVAR = ("ClassVar", "typing.ClassVar", "t.ClassVar")


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(_CLASSVAR) and annotation.partition("[")[0] in _CLASSVAR
    return repr(annotation).startswith("typing.ClassVar")


def _make(cls: type[_T], frozen: bool, eq: bool, order: bool) -> type[_T]:
    own = cls.__dict__
    found: dict[str, Field] = {}
    base_frozen: bool | None = None
    for base in cls.__mro__[-1:0:-1]:
        inherited = base.__dict__.get("__record_fields__")
        if inherited is not None:
            base_frozen = base.__dict__["__record_frozen__"]
            for f in inherited:
                found[f.name] = f
    if base_frozen is not None and base_frozen != frozen:
        raise TypeError(
            "cannot inherit frozen record from a non-frozen one"
            if frozen
            else "cannot inherit non-frozen record from a frozen one"
        )
    annotations = own.get("__annotations__")
    if annotations is None:  # Python 3.14 evaluates annotations lazily
        annotations = getattr(cls, "__annotations__", {})
    for name, annotation in annotations.items():
        if _is_classvar(annotation):
            continue
        value = own.get(name, MISSING)
        if isinstance(value, Field):
            f = value
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        else:
            f = Field(value, MISSING, True, True)
        f.name, f.type = name, annotation
        if f.default is not MISSING and type(f.default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(f.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        found[name] = f
    for name, value in own.items():
        if isinstance(value, Field) and name not in found:
            raise TypeError(f"{name!r} is a field but has no type annotation")

    all_fields = tuple(found.values())
    compared = tuple(f.name for f in all_fields if f.compare)
    cls.__record_fields__ = all_fields  # type: ignore[attr-defined]
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    cls.__record_repr__ = tuple(f.name for f in all_fields if f.repr)  # type: ignore[attr-defined]
    cls.__record_key__ = _key(compared)  # type: ignore[attr-defined]

    def add(name: str, value: Any) -> None:
        if name not in own:
            setattr(cls, name, value)

    add("__init__", _init(cls, all_fields, frozen))
    add("__repr__", _repr)
    if eq:
        add("__eq__", _eq)
    if order:
        for name, method in _ORDER.items():
            if name in own:
                raise TypeError(
                    f"Cannot overwrite attribute {name} in class {cls.__name__}. "
                    "Consider using functools.total_ordering"
                )
            add(name, method)
    if frozen:
        setattr_, delattr_ = _frozen(cls, frozenset(f.name for f in all_fields))
        for name, method in (("__setattr__", setattr_), ("__delattr__", delattr_)):
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            add(name, method)
    explicit_hash = own.get("__hash__", MISSING)
    if eq and (explicit_hash is MISSING or (explicit_hash is None and "__eq__" in own)):
        cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    add("__match_args__", tuple(f.name for f in all_fields))
    add("__replace__", replace)
    return cls


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """What `__eq__`, `__hash__` and the ordering compare: the compared fields as a tuple."""
    if len(names) >= 2:
        return staticmethod(attrgetter(*names))
    if len(names) == 1:
        (name,) = names
        return staticmethod(lambda obj: (getattr(obj, name),))
    return staticmethod(lambda obj: ())


def _init(cls: type, all_fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """`__init__`: `def __init__(self, a, b=1, c=<factory>)`, setting the fields in order.

    Not compiled per class: the first `compile()` in a process costs milliseconds (CPython builds
    its AST types then) and each one after it more than the rest of making a record. The code is
    a template for the shape (frozen or not, number of fields, whether any has a factory) from
    sdlint/_record_init.py, which Python loads from its bytecode cache, renamed to the fields
    (`code.replace`); plain defaults are the function's `__defaults__`, as in any `def`. Only a
    record of more fields than the templates cover compiles its own.
    """
    count = len(all_fields)
    factories = any(f.default_factory is not MISSING for f in all_fields)
    shape = (frozen, count, factories)
    template = _templates.get(shape)
    if template is None:
        name = _template_name(*shape)
        if count <= TEMPLATED_FIELDS:
            from sdlint import _record_init

            template = getattr(_record_init, name).__code__
        else:
            namespace: dict[str, Any] = {}
            exec(_template_source(*shape), namespace)
            template = namespace[name].__code__
        _templates[shape] = template
    names = {f"_F{i}_": f.name for i, f in enumerate(all_fields)}
    code = template.replace(
        co_name="__init__",
        co_varnames=tuple(names.get(n, n) for n in template.co_varnames),
        co_names=tuple(names.get(n, n) for n in template.co_names),
        co_consts=tuple(names.get(c, c) if type(c) is str else c for c in template.co_consts),
    )
    globals_: dict[str, Any] = {
        "_FACTORY": _FACTORY,
        "_record_post_init_": hasattr(cls, "__post_init__"),
    }
    defaults: list[Any] = []
    for i, f in enumerate(all_fields):
        if f.default_factory is not MISSING:
            globals_[f"_record_factory_{i}_"] = f.default_factory
            defaults.append(_FACTORY)
        elif f.default is not MISSING:
            defaults.append(f.default)
        elif defaults:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    init: Callable[..., None] = _Function(code, globals_, "__init__", tuple(defaults) or None)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


_Function: Any = type(_init)
_templates: dict[tuple[bool, int, bool], Any] = {}
TEMPLATED_FIELDS = 16  # sdlint/_record_init.py has templates for records of 0 to 16 fields


def _template_name(frozen: bool, count: int, factories: bool) -> str:
    return f"{'frozen' if frozen else 'mutable'}_{count}{'_factories' if factories else ''}"


def _template_source(frozen: bool, count: int, factories: bool) -> str:
    """One `__init__` template, on one line: the fields are `_F0_`, `_F1_`, ..., renamed per
    class."""
    parameters = ", ".join(["self", *(f"_F{i}_" for i in range(count))])
    body = ["_record_dict_ = self.__dict__"] if frozen and count else []
    for i in range(count):
        value = f"_F{i}_"
        if factories:
            value = f"_record_factory_{i}_() if _F{i}_ is _FACTORY else _F{i}_"
        target = f'_record_dict_["_F{i}_"]' if frozen else f"self._F{i}_"
        body.append(f"{target} = {value}")
    body.append("_record_post_init_ and self.__post_init__()")
    return f"def {_template_name(frozen, count, factories)}({parameters}): {'; '.join(body)}\n"


def _templates_module() -> str:
    """The text of sdlint/_record_init.py (`python -m sdlint.record` writes it)."""
    head = [
        "# mypy: ignore-errors",
        "# ruff: noqa",
        "# fmt: off",
        '"""`__init__` templates for sdlint/record.py: generated by `python -m sdlint.record`."""',
    ]
    shapes = [
        _template_source(frozen, count, factories)
        for frozen in (True, False)
        for factories in (False, True)
        for count in range(TEMPLATED_FIELDS + 1)
    ]
    return "\n".join(head) + "\n\n" + "".join(shapes)


_running: set[tuple[int, int]] = set()  # the reprs being made: a record holding itself is "..."


def _repr(self: Any) -> str:
    key = (id(self), get_ident())
    if key in _running:
        return "..."
    _running.add(key)
    try:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_repr__)
    finally:
        _running.discard(key)
    return f"{self.__class__.__qualname__}({parts})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__record_key__(self))


def _lt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) < key(other)
    return NotImplemented


def _le(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) <= key(other)
    return NotImplemented


def _gt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) > key(other)
    return NotImplemented


def _ge(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__record_key__
        return key(self) >= key(other)
    return NotImplemented


_ORDER = {"__lt__": _lt, "__le__": _le, "__gt__": _gt, "__ge__": _ge}


def _frozen(cls: Any, names: frozenset[str]) -> tuple[Callable[..., None], Callable[..., None]]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).with_name("_record_init.py").write_text(_templates_module())
