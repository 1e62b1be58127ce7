"""The Event base class: fields from keywords, defaults, names, to_fields/from_fields."""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, ClassVar

import pytest

from net.bus import Event, lookup_event_class


class Greeting(Event):
    text: str
    times: int = 1
    tags: list[str] = []


def test_fields_are_set_from_keywords() -> None:
    greeting = Greeting(text="hi", times=3)
    assert (greeting.text, greeting.times) == ("hi", 3)


def test_defaults_fill_missing_fields() -> None:
    assert Greeting(text="hi").times == 1


def test_mutable_defaults_are_not_shared() -> None:
    first, second = Greeting(text="a"), Greeting(text="b")
    first.tags.append("x")
    assert second.tags == []


def test_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"unknown field.*'colour'.*text"):
        Greeting(text="hi", colour="red")


def test_missing_field_without_default_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"missing field.*'text'"):
        Greeting()


def test_event_without_fields() -> None:
    class Ping(Event):
        pass

    assert Ping().to_fields() == {}
    with pytest.raises(TypeError):
        Ping(anything=1)


def test_subclass_inherits_and_adds_fields() -> None:
    class LoudGreeting(Greeting):
        volume: int = 11

    loud = LoudGreeting(text="HI")
    assert loud.to_fields() == {"text": "HI", "times": 1, "tags": [], "volume": 11}


def test_subclass_with_own_init_and_methods() -> None:
    class Counted(Event):
        items: list[int]
        total: int = 0

        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.total = sum(self.items)

        def double(self) -> int:
            return self.total * 2

    event = Counted(items=[1, 2, 3])
    assert (event.total, event.double()) == (6, 12)


def test_classvars_and_private_annotations_are_not_fields() -> None:
    class Tuned(Event):
        limit: ClassVar[int] = 5
        _cache: dict[str, int]
        value: int

    assert Tuned(value=1).to_fields() == {"value": 1}
    with pytest.raises(TypeError):
        Tuned(value=1, limit=2)


def test_api_names_cannot_be_fields() -> None:
    with pytest.raises(TypeError, match="part of the Event API"):

        class Bad(Event):
            to_fields: int  # type: ignore[assignment]


def test_default_name_is_module_and_qualname() -> None:
    assert Greeting.event_name == f"{__name__}.Greeting"
    assert lookup_event_class(Greeting.event_name) is Greeting


def test_name_can_be_chosen_with_a_class_keyword() -> None:
    class Named(Event, name="tests.bus.named"):
        pass

    assert Named.event_name == "tests.bus.named"
    assert lookup_event_class("tests.bus.named") is Named


def test_name_can_be_chosen_with_a_class_attribute() -> None:
    class Attributed(Event):
        event_name = "tests.bus.attributed"

    assert lookup_event_class("tests.bus.attributed") is Attributed


def test_subclass_gets_its_own_default_name() -> None:
    class Parent(Event, name="tests.bus.parent"):
        pass

    class Child(Parent):
        pass

    assert Child.event_name == f"{__name__}.{Child.__qualname__}"


def test_two_classes_cannot_share_a_name() -> None:
    class First(Event, name="tests.bus.shared"):
        pass

    with pytest.raises(TypeError, match="already used"):

        class Second(Event, name="tests.bus.shared"):
            pass

    assert lookup_event_class("tests.bus.shared") is First


def test_redefining_the_same_class_replaces_it() -> None:
    def define() -> type[Event]:
        class Again(Event, name="tests.bus.again"):
            pass

        return Again

    first, second = define(), define()
    assert first is not second
    assert lookup_event_class("tests.bus.again") is second


def test_bad_names_are_rejected() -> None:
    with pytest.raises(TypeError, match="non-empty string"):

        class Empty(Event, name=" "):
            pass


def test_lookup_of_unknown_or_odd_names_is_none() -> None:
    assert lookup_event_class("no.such.Event") is None
    assert lookup_event_class(42) is None  # type: ignore[arg-type]


def test_to_fields_from_fields_round_trip() -> None:
    greeting = Greeting(text="hi", times=2, tags=["a"])
    again = Greeting.from_fields(greeting.to_fields())
    assert again == greeting and again is not greeting


def test_to_fields_is_a_new_dict() -> None:
    greeting = Greeting(text="hi")
    greeting.to_fields()["text"] = "changed"
    assert greeting.text == "hi"


def test_equality_is_by_class_and_fields() -> None:
    class Other(Event):
        text: str
        times: int = 1
        tags: list[str] = []

    assert Greeting(text="a") == Greeting(text="a")
    assert Greeting(text="a") != Greeting(text="b")
    assert Greeting(text="a") != Other(text="a")


def test_repr_shows_fields_briefly() -> None:
    text = repr(Greeting(text="x" * 10_000, times=10**5000))
    assert text.startswith("Greeting(text='xxx") and len(text) < 300
    assert "bits" in text


def test_events_copy() -> None:
    greeting = Greeting(text="a", tags=["t"])
    clone = copy.copy(greeting)
    assert clone == greeting and clone is not greeting


def test_defaultdict_default_keeps_its_factory() -> None:
    class Errors(Event):
        messages: defaultdict[str, list[str]] = defaultdict(list)

    event = Errors()
    event.messages["x"].append("bad")
    assert Errors().messages == {}


def test_wire_form_round_trip() -> None:
    from net.bus import event_from_wire, event_to_wire

    greeting = Greeting(text="hi", times=2)
    name, fields = event_to_wire(greeting)
    assert name == Greeting.event_name and fields == greeting.to_fields()
    assert event_from_wire(name, fields) == greeting


def test_wire_form_refuses_what_it_cannot_rebuild() -> None:
    from net.bus import UnknownEventName, event_from_wire, event_to_wire

    with pytest.raises(UnknownEventName, match=r"no\.such\.Event"):
        event_from_wire("no.such.Event", {})
    with pytest.raises(LookupError):
        event_from_wire("x" * 10_000, {})
    with pytest.raises(TypeError, match="event name must be a string"):
        event_from_wire(b"bytes", {})
    with pytest.raises(TypeError, match="must be a mapping"):
        event_from_wire(Greeting.event_name, [1, 2])
    with pytest.raises(TypeError, match="missing"):
        event_from_wire(Greeting.event_name, {})
    with pytest.raises(TypeError, match="Event instance"):
        event_to_wire({"text": "hi"})  # type: ignore[arg-type]
