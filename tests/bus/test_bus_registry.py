"""emit_event / handle_event: dispatch, subclasses, origin, failures, order, filters, defaults."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from net.bus import (
    Event,
    EventRegistry,
    HandlerContext,
    UnhandledEvent,
    emit_event,
    get_registry,
    handle_event,
    use_registry,
)


class Animal(Event):
    name: str


class Dog(Animal):
    good: bool = True


class Puppy(Dog):
    pass


class Unrelated(Event):
    pass


def test_emit_event_builds_runs_and_returns_the_event() -> None:
    seen: list[Animal] = []

    @handle_event(Animal)
    def remember(event: Animal) -> None:
        seen.append(event)

    result = emit_event(Animal, name="cat")
    assert seen == [result] and result.name == "cat"


def test_emit_event_with_bad_fields_runs_no_handler() -> None:
    @handle_event(Animal)
    def never(event: Animal) -> None:
        raise AssertionError("should not run")

    with pytest.raises(TypeError):
        emit_event(Animal, nom="cat")


def test_emit_event_needs_an_event_class() -> None:
    with pytest.raises(TypeError, match="Event subclass"):
        emit_event(dict)  # type: ignore[type-var]


def test_handlers_of_a_class_also_get_its_subclasses() -> None:
    got: list[str] = []
    handle_event(Animal)(lambda event: got.append(f"animal:{event.name}"))
    handle_event(Dog)(lambda event: got.append(f"dog:{event.name}"))
    handle_event(Unrelated)(lambda event: got.append("unrelated"))

    emit_event(Animal, name="a")
    emit_event(Puppy, name="p")
    assert got == ["animal:a", "dog:p", "animal:p"]


def test_order_is_most_specific_class_first_then_registration_order() -> None:
    order: list[str] = []
    for label, cls in [("e1", Event), ("a1", Animal), ("p1", Puppy), ("d1", Dog), ("a2", Animal)]:
        handle_event(cls)(lambda event, label=label: order.append(label))
    handle_event(Puppy)(lambda event: order.append("p2"))

    emit_event(Puppy, name="rex")
    assert order == ["p1", "p2", "d1", "a1", "a2", "e1"]


def test_handler_return_value_is_ignored() -> None:
    handle_event(Animal)(lambda event: "ignored")
    assert emit_event(Animal, name="x").name == "x"


def test_origin_restricts_a_handler_to_one_emitter() -> None:
    def from_here() -> None: ...

    class FromThere: ...

    got: list[object] = []
    handle_event(Animal, origin=from_here)(lambda e: got.append(("fn", e.name)))
    handle_event(Animal, origin=FromThere)(lambda e: got.append(("cls", e.name)))
    handle_event(Animal)(lambda e: got.append(("any", e.name)))

    emit_event(Animal, origin=from_here, name="a")
    emit_event(Animal, origin=FromThere, name="b")
    emit_event(Animal, name="c")
    emit_event(Animal, origin="elsewhere", name="d")
    assert got == [
        ("fn", "a"),
        ("any", "a"),
        ("cls", "b"),
        ("any", "b"),
        ("any", "c"),
        ("any", "d"),
    ]


def test_origin_compares_by_equality_and_survives_a_broken_eq() -> None:
    class Grumpy:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no comparing")

        __hash__ = object.__hash__

    got: list[str] = []
    handle_event(Animal, origin="orders")(lambda e: got.append(e.name))
    emit_event(Animal, origin="orders", name="by equality")
    emit_event(Animal, origin=Grumpy(), name="grumpy")
    assert got == ["by equality"]


def test_a_failing_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    @handle_event(Animal)
    def first(event: Animal) -> None:
        ran.append("first")

    @handle_event(Animal)
    def broken_handler(event: Animal) -> None:
        raise ValueError("boom in handler")

    @handle_event(Animal)
    def last(event: Animal) -> None:
        ran.append("last")

    with caplog.at_level(logging.ERROR, logger="net.bus"):
        event = emit_event(Animal, name="x")

    assert ran == ["first", "last"] and event.name == "x"
    [record] = [r for r in caplog.records if r.name == "net.bus"]
    assert record.levelno == logging.ERROR
    assert "broken_handler" in record.getMessage()
    assert Animal.event_name in record.getMessage()
    assert "boom in handler" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert "Traceback" in caplog.text and 'raise ValueError("boom in handler")' in caplog.text
    assert get_registry().stats.handler_failures == 1


def test_async_handler_cannot_run_in_emit_event_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    @handle_event(Animal)
    async def needs_a_loop(event: Animal) -> None:
        ran.append("async")  # pragma: no cover - never runs

    handle_event(Animal)(lambda event: ran.append("sync"))
    emit_event(Animal, name="x")
    assert ran == ["sync"]
    assert "needs_a_loop" in caplog.text and "await bus.publish" in caplog.text


def test_handler_taking_a_context_gets_one() -> None:
    contexts: list[HandlerContext] = []

    def marker() -> None: ...

    @handle_event(Animal)
    def with_context(event: Animal, ctx: HandlerContext) -> None:
        contexts.append(ctx)

    emit_event(Animal, origin=marker, name="x")
    [ctx] = contexts
    assert ctx.origin is marker and ctx.peer is None and ctx.bus is None
    assert ctx.registry is get_registry() and not ctx.is_async


def test_a_handler_can_emit_further_events_through_its_context() -> None:
    got: list[str] = []

    @handle_event(Dog)
    def dog_to_animal(event: Dog, ctx: HandlerContext) -> None:
        ctx.emit_event(Unrelated)

    handle_event(Unrelated)(lambda event: got.append("follow-up"))
    emit_event(Dog, name="rex")
    assert got == ["follow-up"]


def test_handlers_that_cannot_take_the_event_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot be called with the event"):
        handle_event(Animal)(lambda: None)
    with pytest.raises(TypeError, match="requires 3 arguments"):
        handle_event(Animal)(lambda event, ctx, extra: None)
    with pytest.raises(TypeError, match="callable"):
        get_registry().add_handler(Animal, "not callable")  # type: ignore[type-var]
    with pytest.raises(TypeError, match="Event subclass"):
        handle_event(int)  # type: ignore[arg-type]


def test_remove_handler() -> None:
    got: list[str] = []

    def handler(event: Animal) -> None:
        got.append(event.name)

    handle_event(Animal)(handler)
    handle_event(Dog)(handler)
    assert get_registry().remove_handler(handler) == 2
    emit_event(Dog, name="x")
    assert got == []


def test_filters_run_first_in_order_and_true_consumes() -> None:
    trace: list[str] = []
    registry = get_registry()

    @registry.add_filter
    def drop_nameless(event: Event) -> bool:
        trace.append("filter1")
        return isinstance(event, Animal) and not event.name

    @registry.add_filter
    def second(event: Event) -> bool:
        trace.append("filter2")
        return False

    handle_event(Animal)(lambda e: trace.append(f"handler:{e.name}"))

    emit_event(Animal, name="")
    assert trace == ["filter1"]
    trace.clear()
    emit_event(Animal, name="a")
    assert trace == ["filter1", "filter2", "handler:a"]
    assert registry.stats.consumed_by_filters == 1


def test_only_true_consumes_and_a_failing_filter_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = get_registry()
    got: list[str] = []
    registry.add_filter(lambda event: "truthy but not True")

    def exploding_filter(event: Event) -> bool:
        raise KeyError("bad filter")

    registry.add_filter(exploding_filter)
    handle_event(Animal)(lambda e: got.append(e.name))
    emit_event(Animal, name="a")
    assert got == ["a"]
    assert "exploding_filter" in caplog.text and registry.stats.filter_failures == 1


def test_filter_can_take_a_context() -> None:
    registry = get_registry()
    origins: list[object] = []
    registry.add_filter(lambda event, ctx: origins.append(ctx.origin))
    emit_event(Unrelated, origin="here")
    assert origins == ["here"]


def test_default_handler_gets_what_no_handler_took() -> None:
    registry = get_registry()
    got: list[str] = []
    registry.set_default_handler(lambda event: got.append(type(event).__name__))
    handle_event(Dog)(lambda event: got.append("dog handler"))

    emit_event(Unrelated)
    emit_event(Dog, name="rex")
    emit_event(Animal, name="not a dog")
    assert got == ["Unrelated", "dog handler", "Animal"]


def test_default_handler_also_gets_events_whose_handlers_want_another_origin() -> None:
    registry = get_registry()
    got: list[str] = []
    registry.set_default_handler(lambda event: got.append("default"))
    handle_event(Animal, origin="elsewhere")(lambda event: got.append("scoped"))
    emit_event(Animal, name="x")
    assert got == ["default"]


def test_unhandled_events_are_counted_and_quiet_when_not_strict() -> None:
    event = emit_event(Unrelated)
    assert isinstance(event, Unrelated) and get_registry().stats.unhandled == 1


def test_strict_registry_raises_unhandled_event() -> None:
    strict = EventRegistry(strict=True)
    with pytest.raises(UnhandledEvent, match="no handler took event") as caught:
        strict.emit_event(Unrelated, origin="test")
    assert isinstance(caught.value.event, Unrelated) and caught.value.origin == "test"

    strict.set_default_handler(lambda event: None)
    strict.emit_event(Unrelated)  # the default handler takes it


def test_strict_registry_accepts_events_consumed_by_filters_or_failing_handlers() -> None:
    strict = EventRegistry(strict=True)
    strict.add_filter(lambda event: isinstance(event, Dog))
    strict.emit_event(Dog, name="filtered")

    def broken(event: Animal) -> None:
        raise RuntimeError("taken, but failed")

    strict.add_handler(Animal, broken)
    strict.emit_event(Animal, name="failed")  # a failing handler still took it


def test_separate_registries_are_isolated() -> None:
    other = EventRegistry()
    got: list[str] = []
    other.handle_event(Animal)(lambda e: got.append("other"))
    handle_event(Animal)(lambda e: got.append("current"))

    emit_event(Animal, name="x")
    other.emit_event(Animal, name="y")
    with use_registry(other):
        emit_event(Animal, name="z")
    assert got == ["current", "other", "other"]


def test_use_registry_is_restored_and_checks_its_argument() -> None:
    before = get_registry()
    with use_registry(EventRegistry()) as inner:
        assert get_registry() is inner
    assert get_registry() is before
    with pytest.raises(TypeError), use_registry("nope"):  # type: ignore[arg-type]
        pass


def test_clear_forgets_everything() -> None:
    registry = get_registry()
    handle_event(Animal)(lambda e: None)
    registry.add_filter(lambda e: False)
    registry.set_default_handler(lambda e: None)
    registry.clear()
    assert registry.handled_classes() == frozenset() and registry.default_handler is None


def test_handled_classes_lists_what_has_handlers() -> None:
    handle_event(Dog)(lambda e: None)
    handle_event(Unrelated)(lambda e: None)
    assert get_registry().handled_classes() == {Dog, Unrelated}


def test_registering_while_dispatching_applies_to_the_next_event() -> None:
    got: list[str] = []

    @handle_event(Animal)
    def adds_another(event: Animal) -> None:
        got.append("first")
        handle_event(Animal)(lambda e: got.append("late"))

    emit_event(Animal, name="1")
    assert got == ["first"]


def test_registration_from_threads_is_safe() -> None:
    registry = EventRegistry()
    counter: list[int] = []

    def register_many() -> None:
        for _ in range(200):
            registry.add_handler(Unrelated, lambda e: counter.append(1))

    threads = [threading.Thread(target=register_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registry.emit_event(Unrelated)
    assert len(counter) == 800


def test_dispatch_of_an_existing_event_with_a_peer() -> None:
    peers: list[Any] = []
    handle_event(Animal)(lambda e, ctx: peers.append(ctx.peer))
    event = Animal(name="remote")
    assert get_registry().dispatch(event, peer="peer-7") is event
    assert peers == ["peer-7"]
    with pytest.raises(TypeError, match="Event instance"):
        get_registry().dispatch(Animal)  # type: ignore[arg-type]


def test_handlers_can_modify_what_the_emitter_gets() -> None:
    @handle_event(Animal)
    def rename(event: Animal) -> None:
        event.name = event.name.upper()

    assert emit_event(Animal, name="rex").name == "REX"
