"""net.testing.capture_events and isolated_registry."""

from __future__ import annotations

import pytest
import trio

from net.bus import Event, EventBus, EventRegistry, emit_event, get_registry, handle_event
from net.testing import capture_events, isolated_registry


class Signup(Event):
    email: str


class AdminSignup(Signup):
    pass


class Other(Event):
    pass


def signup(email: str) -> None:
    """Application code under test."""
    emit_event(AdminSignup if email.startswith("admin") else Signup, email=email)


def test_capture_events_from_emit_event() -> None:
    with capture_events(Signup) as events:
        signup("ada@example.com")
        signup("admin@example.com")
        emit_event(Other)
    assert [e.email for e in events] == ["ada@example.com", "admin@example.com"]
    assert isinstance(events[1], AdminSignup)


def test_capture_all_events_by_default() -> None:
    with capture_events() as events:
        emit_event(Other)
        signup("x")
    assert [type(e) for e in events] == [Other, Signup]


def test_captured_events_show_what_handlers_made_of_them() -> None:
    @handle_event(Signup)
    def normalise(event: Signup) -> None:
        event.email = event.email.lower()

    with capture_events(Signup) as events:
        signup("ADA@EXAMPLE.COM")
    assert events[0].email == "ada@example.com"


def test_capturing_takes_no_event() -> None:
    strict = EventRegistry(strict=True)
    defaults: list[Event] = []
    strict.set_default_handler(defaults.append)
    with capture_events(bus=strict) as events:
        strict.emit_event(Other)
    assert len(events) == 1 and len(defaults) == 1


def test_capture_stops_at_the_end_of_the_block() -> None:
    with capture_events() as events:
        pass
    emit_event(Other)
    assert events == []


async def test_capture_events_on_a_bus() -> None:
    bus = EventBus()
    with capture_events(Signup, bus=bus) as events:
        await bus.publish(Signup(email="a"))
        async with bus:
            bus.emit(Signup(email="b"))
            await bus.sender().send(Signup(email="c"))
            bus.emit(Other())
    assert [e.email for e in events] == ["a", "b", "c"]


def test_capture_events_refuses_non_events() -> None:
    with pytest.raises(TypeError):
        capture_events(dict)  # type: ignore[type-var]


def test_isolated_registry_hides_and_restores_the_current_one() -> None:
    outer = get_registry()
    handle_event(Other)(lambda e: None)
    with isolated_registry(strict=True) as inner:
        assert get_registry() is inner and inner.handled_classes() == frozenset()
        assert inner.strict
    assert get_registry() is outer and outer.handled_classes() == {Other}


def test_isolation_reaches_trio_tasks() -> None:
    seen: list[EventRegistry] = []
    with isolated_registry() as inner:

        async def main() -> None:
            seen.append(get_registry())

        trio.run(main)
    assert seen == [inner]
