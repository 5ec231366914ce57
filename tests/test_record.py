"""sdlint.record behaves as the dataclasses it replaces: each test builds a record and a dataclass
of the same shape and holds them to the same results."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sdlint.record import (
    MISSING,
    FrozenInstanceError,
    field,
    fields,
    is_record,
    record,
    replace,
)


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)
    kind: ClassVar[str] = "point"  # not a field


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    note: str = dataclasses.field(default="", compare=False, repr=False)
    kind: ClassVar[str] = "point"


@record
class Labelled(Point):  # a field of its own after the inherited ones
    label: str = "a"


@dataclasses.dataclass(frozen=True)
class DLabelled(DPoint):
    label: str = "a"


@record(frozen=False)
class Counter:
    name: str
    count: int = 0


@dataclasses.dataclass
class DCounter:
    name: str
    count: int = 0


@record(frozen=False, eq=False)
class Node:
    name: str


@dataclasses.dataclass(eq=False)
class DNode:
    name: str


@record(order=True)
class Version:
    major: int
    minor: int


@dataclasses.dataclass(frozen=True, order=True)
class DVersion:
    major: int
    minor: int


@record
class One:
    value: float


@dataclasses.dataclass(frozen=True)
class DOne:
    value: float


@record
class Empty:
    pass


@dataclasses.dataclass(frozen=True)
class DEmpty:
    pass


@record
class Checked:
    low: int
    high: int
    seen: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low > high")
        self.seen.append("post_init")


@dataclasses.dataclass(frozen=True)
class DChecked:
    low: int
    high: int
    seen: list[str] = dataclasses.field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low > high")
        self.seen.append("post_init")


def bare(text: str) -> str:
    """A repr without its class name's `D` (the dataclass twin's name)."""
    return text.replace("DPoint(", "Point(").replace("DLabelled(", "Labelled(")


def test_equality_compares_the_compared_fields_of_the_same_class() -> None:
    for cls in (Point, DPoint):
        a: Any = cls(1, 2, ["t"], note="a")
        assert a == cls(1, 2, ["t"], note="b")  # `note` is compare=False
        assert a != cls(1, 3, ["t"])
        assert a != cls(1, 2, [])
        assert (a == (1, 2, ["t"])) is False  # another type: NotImplemented, then identity
    assert Point(1) != Labelled(1)  # a subclass is another class, as DPoint(1) != DLabelled(1)
    assert DPoint(1) != DLabelled(1)
    assert Empty() == Empty() and DEmpty() == DEmpty()
    nan = float("nan")  # fields compare as a tuple: the same object is equal to itself
    assert (One(nan) == One(nan)) == (DOne(nan) == DOne(nan)) is True
    assert (One(nan) == One(float("nan"))) == (DOne(nan) == DOne(float("nan"))) is False


def test_hash_is_the_hash_of_the_compared_fields() -> None:
    assert hash(Checked(1, 2)) == hash(DChecked(1, 2)) == hash((1, 2))  # `seen` is not compared
    assert hash(Version(1, 2)) == hash(DVersion(1, 2)) == hash((1, 2))
    assert hash(One(1.5)) == hash(DOne(1.5))
    assert hash(Empty()) == hash(DEmpty())
    assert Counter.__hash__ is DCounter.__hash__ is None  # mutable and eq: unhashable
    with pytest.raises(TypeError):
        hash(Point(1, tags=["a"]))  # the list is compared, so hashed
    node = Node("n")  # eq=False keeps identity, as DNode
    assert node == node and node != Node("n") and hash(node) == object.__hash__(node)
    assert DNode("n") != DNode("n")


def test_repr_names_the_fields_with_repr() -> None:
    assert repr(Point(1, 2, ["t"], "hidden")) == bare(repr(DPoint(1, 2, ["t"], "hidden")))
    assert repr(Point(1)) == "Point(x=1, y=0, tags=[])"
    assert repr(Labelled(1)) == bare(repr(DLabelled(1)))
    assert repr(Empty()) == "Empty()"
    nested = Counter("a")
    nested.count = nested  # type: ignore[assignment]
    assert repr(nested) == "Counter(name='a', count=...)"


def test_a_frozen_record_refuses_assignment_and_deletion() -> None:
    point = Point(1)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        point.other = 2  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'x'"):
        del point.x
    assert point.x == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        DPoint(1).x = 2  # type: ignore[misc]
    counter = Counter("c")
    counter.count += 1
    assert counter == Counter("c", 1)


def test_defaults_and_factories() -> None:
    a, b = Point(1), Point(1)
    assert a.tags == [] and a.tags is not b.tags  # a new list each time
    assert Point.y == DPoint.y == 0  # a plain default stays a class attribute
    assert "tags" not in vars(Point) and "tags" not in vars(DPoint)
    assert Point.kind == "point" and "kind" not in [f.name for f in fields(Point)]
    assert Point(1, tags=["x"]).tags == ["x"]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=3)  # type: ignore[call-arg]
    ours, theirs = (inspect.signature(cls).parameters.values() for cls in (Point, DPoint))
    assert [(p.name, repr(p.default)) for p in ours] == [(p.name, repr(p.default)) for p in theirs]


def test_the_dataclass_rules_on_fields_hold() -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @record
        class Mutable:
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @record
        class Order:
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=int)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="non-frozen"):

        @record(frozen=False)
        class Thawed(Point):  # type: ignore[misc]
            pass


def test_replace_and_fields() -> None:
    point = Labelled(1, 2, ["t"], "n", "b")
    moved = replace(point, y=5)
    assert moved == Labelled(1, 5, ["t"], "n", "b") and moved.tags is point.tags
    assert repr(moved) == bare(repr(dataclasses.replace(DLabelled(1, 2, ["t"], "n", "b"), y=5)))
    with pytest.raises(TypeError):
        replace(point, missing=1)
    with pytest.raises(TypeError):
        replace(object(), x=1)

    def describe(f: Any, missing: Any) -> tuple[Any, ...]:
        default = None if f.default is missing else f.default
        factory = None if f.default_factory is missing else f.default_factory
        return (f.name, f.type, default, factory, f.compare, f.repr)

    ours = [describe(f, MISSING) for f in fields(Labelled)]
    theirs = [describe(f, dataclasses.MISSING) for f in dataclasses.fields(DLabelled)]
    assert ours == theirs  # names in order, annotations as written, MISSING where none
    assert fields(point) == fields(Labelled)
    assert is_record(Point) and is_record(point) and not is_record(DPoint)
    assert not is_record(int) and not dataclasses.is_dataclass(Point)
    assert Labelled.__match_args__ == DLabelled.__match_args__


def test_post_init_runs_after_the_fields_are_set() -> None:
    for cls in (Checked, DChecked):
        made: Any = cls(1, 2)
        assert made.seen == ["post_init"]
        with pytest.raises(ValueError, match="low > high"):
            cls(3, 2)


def test_order() -> None:
    versions = [Version(1, 10), Version(1, 2), Version(0, 99)]
    assert sorted(versions) == [Version(0, 99), Version(1, 2), Version(1, 10)]
    assert Version(1, 2) <= Version(1, 2) < Version(1, 3) and Version(2, 0) >= Version(1, 9)
    with pytest.raises(TypeError):
        assert Version(1, 2) < DVersion(1, 3)  # type: ignore[operator]
    with pytest.raises(TypeError):
        assert Point(1) < Point(2)  # type: ignore[operator]


def test_copies_and_pickles() -> None:
    point = Labelled(1, 2, ["t"], "n")
    for made in (copy.copy(point), copy.deepcopy(point), pickle.loads(pickle.dumps(point))):
        assert made == point and repr(made) == repr(point) and made.note == "n"
    counter = pickle.loads(pickle.dumps(Counter("c", 3)))
    assert counter == Counter("c", 3)


def test_a_body_method_is_kept() -> None:
    @record
    class Shown:
        x: int

        def __repr__(self) -> str:
            return "shown"

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Shown(1)) == "shown" and Shown(1) == Shown(2)
    assert hash(Shown(1)) == hash((1,))  # frozen with its own __eq__: hashed by the fields


def test_every_shape_of_init_sets_its_fields() -> None:
    """Records of 0 to 20 fields (sdlint/_record_init.py's templates, then compiled ones), frozen
    or not, with and without a factory, hold what they were given as a dataclass does."""
    for count in range(21):
        for frozen in (True, False):
            for factory in (False, True):
                annotations = {f"f{i}": "int" for i in range(count)}
                body: dict[str, Any] = {"__annotations__": annotations}
                if factory and count:
                    body[f"f{count - 1}"] = field(default_factory=lambda: 7)
                ours: Any = record(frozen=frozen)(type("Wide", (), dict(body)))
                if factory and count:
                    body[f"f{count - 1}"] = dataclasses.field(default_factory=lambda: 7)
                theirs: Any = dataclasses.dataclass(frozen=frozen)(type("Wide", (), body))
                given = list(range(count - 1 if factory and count else count))
                made, expected = ours(*given), theirs(*given)
                assert repr(made) == repr(expected)
                assert [getattr(made, f"f{i}") for i in range(count)] == list(
                    dataclasses.astuple(expected)
                )


def test_the_init_templates_are_current() -> None:
    """sdlint/_record_init.py is what `python -m sdlint.record` writes."""
    from sdlint import _record_init
    from sdlint.record import _templates_module

    assert Path(_record_init.__file__).read_text() == _templates_module()
