"""``Event.from_fields`` with data from the network: checked, converted, clear errors."""

from __future__ import annotations

import enum
from typing import Any, Literal, Optional

import pytest

from net.bus import MAX_DEPTH, Event


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(Event, name="tests.bus.Point"):
    x: int
    y: int


class Reading(Event, name="tests.bus.Reading"):
    sensor: str
    value: float
    raw: bytes = b""
    ok: bool = True
    unit: Literal["C", "F"] = "C"
    colour: Colour = Colour.RED
    labels: list[str] = []
    pair: tuple[int, str] = (0, "")
    history: tuple[float, ...] = ()
    seen: set[str] = set()
    meta: dict[str, int] = {}
    note: str | None = None
    old_style: Optional[int] = None  # noqa: UP045 - checks typing.Optional too
    anything: Any = None
    where: Point | None = None
    nested: list[list[int]] = []


def test_good_fields_pass_and_convert_what_the_wire_loses() -> None:
    reading = Reading.from_fields(
        {
            "sensor": "t1",
            "value": 21,  # an int where a float is wanted
            "raw": bytearray(b"\x00\x01"),
            "unit": "F",
            "colour": "blue",
            "pair": [1, "a"],  # msgpack gives lists for tuples
            "history": [1.5, 2],
            "seen": ["a", "b", "a"],
            "meta": {"n": 1},
            "old_style": 3,
            "anything": object,
            "where": {"x": 1, "y": 2},
            "nested": [[1], [2, 3]],
        }
    )
    assert reading.value == 21.0 and isinstance(reading.value, float)
    assert reading.raw == b"\x00\x01" and isinstance(reading.raw, bytes)
    assert reading.colour is Colour.BLUE
    assert reading.pair == (1, "a")
    assert reading.history == (1.5, 2.0)
    assert reading.seen == {"a", "b"}
    assert reading.where == Point(x=1, y=2)


def test_round_trip_through_wire_like_data() -> None:
    reading = Reading(sensor="s", value=1.5, pair=(2, "b"), history=(1.0,), where=Point(x=0, y=0))
    wire = reading.to_fields()
    wire["pair"] = list(wire["pair"])
    wire["history"] = list(wire["history"])
    wire["where"] = wire["where"].to_fields()
    assert Reading.from_fields(wire) == reading


@pytest.mark.parametrize(
    "garbage",
    [None, 42, "sensor=x", b"bytes", ["sensor", "x"], ("sensor", "x"), object()],
)
def test_fields_must_be_a_mapping(garbage: object) -> None:
    with pytest.raises(TypeError, match="must be a mapping"):
        Reading.from_fields(garbage)  # type: ignore[arg-type]


def test_field_names_must_be_strings() -> None:
    with pytest.raises(TypeError, match="field names must be strings"):
        Point.from_fields({1: 2, "x": 1, "y": 2})  # type: ignore[dict-item]


def test_unknown_fields_are_named() -> None:
    with pytest.raises(TypeError, match=r"has no field\(s\) 'z'.*'x', 'y'"):
        Point.from_fields({"x": 1, "y": 2, "z": 3})


def test_many_unknown_fields_give_a_short_message() -> None:
    junk = {f"junk{i}": i for i in range(100_000)}
    with pytest.raises(TypeError) as caught:
        Point.from_fields({"x": 1, "y": 2, **junk})
    assert "99992 more" in str(caught.value)
    assert len(str(caught.value)) < 500


def test_missing_fields_are_named() -> None:
    with pytest.raises(TypeError, match=r"missing field\(s\) 'y'"):
        Point.from_fields({"x": 1})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"x": "1", "y": 2}, r"tests.bus.Point.x: expected int, got str '1'"),
        ({"x": 1.0, "y": 2}, r"\.x: expected int, got float"),
        ({"x": True, "y": 2}, r"\.x: expected int, got bool"),
        ({"x": None, "y": 2}, r"\.x: expected int, got NoneType"),
        ({"x": [1], "y": 2}, r"\.x: expected int, got list"),
        ({"x": {"a": 1}, "y": 2}, r"\.x: expected int, got dict"),
    ],
)
def test_wrong_types_are_type_errors_with_the_path(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point.from_fields(fields)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("value", "hot", TypeError),
        ("value", True, TypeError),
        ("raw", "text", TypeError),
        ("ok", 1, TypeError),
        ("unit", "K", ValueError),
        ("unit", 1, ValueError),
        ("colour", "green", ValueError),
        ("labels", "abc", TypeError),
        ("labels", ["a", 2], TypeError),
        ("pair", [1], ValueError),
        ("pair", [1, 2], TypeError),
        ("history", [1.0, "x"], TypeError),
        ("seen", [["unhashable"]], TypeError),
        ("meta", {"n": "1"}, TypeError),
        ("meta", [("n", 1)], TypeError),
        ("note", 5, TypeError),
        ("old_style", "3", TypeError),
        ("where", {"x": 1}, TypeError),
        ("where", "1,2", TypeError),
        ("nested", [[1], ["2"]], TypeError),
    ],
)
def test_values_that_do_not_fit(field: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=rf"tests.bus.Reading.{field}"):
        Reading.from_fields({"sensor": "s", "value": 1.0, field: value})


def test_the_error_path_points_into_containers() -> None:
    with pytest.raises(TypeError, match=r"nested\[1\]\[0\]: expected int"):
        Reading.from_fields({"sensor": "s", "value": 1.0, "nested": [[1], ["2"]]})
    with pytest.raises(TypeError, match=r"meta\[str 'n'\]: expected int"):
        Reading.from_fields({"sensor": "s", "value": 1.0, "meta": {"n": "1"}})


def test_huge_string_is_accepted_and_error_messages_stay_short() -> None:
    big = "x" * 20_000_000
    assert Reading.from_fields({"sensor": big, "value": 1.0}).sensor is big
    with pytest.raises(TypeError) as caught:
        Point.from_fields({"x": big, "y": 1})
    assert len(str(caught.value)) < 300


def test_huge_int_in_the_wrong_place_is_described_without_printing_it() -> None:
    huge = 10**100_000  # repr() of this raises ValueError (int max str digits)
    with pytest.raises(TypeError, match=r"got int <int of \d+ bits>"):
        Reading.from_fields({"sensor": huge, "value": 1.0})


def test_huge_int_for_a_float_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too large for a float"):
        Reading.from_fields({"sensor": "s", "value": 10**400})


def test_huge_int_for_an_int_field_is_fine() -> None:
    assert Point.from_fields({"x": 10**100_000, "y": 0}).x == 10**100_000


def test_long_list_with_one_bad_item_names_its_index() -> None:
    labels: list[object] = ["ok"] * 1_000_000
    labels[999_999] = 7
    with pytest.raises(TypeError, match=r"labels\[999999\]"):
        Reading.from_fields({"sensor": "s", "value": 1.0, "labels": labels})


def test_deep_nesting_is_a_value_error_not_a_recursion_error() -> None:
    class Tree(Event, name="tests.bus.Tree"):
        children: list[Any]
        depth: dict[str, Any] = {}

    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    # Any is not walked: taken as it is.
    assert Tree.from_fields({"children": [deep]}).children == [deep]

    class Nest(Event, name="tests.bus.Nest"):
        inner: Nest | None = None

    data: dict[str, Any] = {}
    for _ in range(MAX_DEPTH + 5):
        data = {"inner": data}
    with pytest.raises(ValueError, match="nested more than"):
        Nest.from_fields(data)


def test_deeply_typed_containers_stop_at_the_limit() -> None:
    nested_type: Any = int
    value: Any = 1
    for _ in range(MAX_DEPTH + 3):
        nested_type = list[nested_type]
        value = [value]
    typed = type("Typed", (Event,), {"__annotations__": {"value": nested_type}}, name="t.Typed")

    with pytest.raises(ValueError, match="nested more than"):
        typed.from_fields({"value": value})


def test_hostile_objects_do_not_break_the_error_message() -> None:
    class Nasty:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

        def __str__(self) -> str:
            raise RuntimeError("no str either")

    with pytest.raises(TypeError, match="got Nasty"):
        Point.from_fields({"x": Nasty(), "y": 1})


def test_unresolvable_annotations_are_taken_as_they_are() -> None:
    class Forward(Event, name="tests.bus.Forward"):
        thing: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821

    assert Forward.from_fields({"thing": 3}).thing == 3


def test_from_fields_goes_through_the_class_init() -> None:
    class Normalised(Event, name="tests.bus.Normalised"):
        email: str

        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.email = self.email.lower()

    assert Normalised.from_fields({"email": "A@B.C"}).email == "a@b.c"
