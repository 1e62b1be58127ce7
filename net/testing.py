"""Helpers for testing code that uses net's events: capture them, isolate the registry.

from net.testing import capture_events

def test_signup_emits_event():
    with capture_events(UserSignedUp) as events:
        signup("ada@example.com")
    assert [e.email for e in events] == ["ada@example.com"]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar, overload

from net.bus import Event, EventBus, EventRegistry, get_registry, use_registry

E = TypeVar("E", bound=Event)

__all__ = ["capture_events", "isolated_registry"]


@overload
def capture_events(
    event_class: type[E], bus: EventBus | EventRegistry | None = None
) -> AbstractContextManager[list[E]]: ...


@overload
def capture_events(
    *, bus: EventBus | EventRegistry | None = None
) -> AbstractContextManager[list[Event]]: ...


def capture_events(
    event_class: type[Any] = Event, bus: EventBus | EventRegistry | None = None
) -> AbstractContextManager[list[Any]]:
    """Collect the events of ``event_class`` (and subclasses) delivered within the block.

    Watches the current registry (what ``emit_event`` uses) or the given bus
    or registry, which covers ``emit_event``, ``publish``, ``emit`` and
    senders. Events are recorded as they are delivered (for ``emit``, when the
    bus's task takes them), before the handlers run; the list holds the event
    objects themselves, so it shows what the handlers made of them. Capturing
    takes no event: default handlers and strict registries behave as without it.
    """
    if not (isinstance(event_class, type) and issubclass(event_class, Event)):
        raise TypeError(f"capture_events needs an Event subclass, got {event_class!r}")
    if bus is None:
        registry = get_registry()
    elif isinstance(bus, EventRegistry):
        registry = bus
    else:
        registry = bus.registry
    return _capturing(registry, event_class)


@contextmanager
def _capturing(registry: EventRegistry, event_class: type[Event]) -> Iterator[list[Any]]:
    captured: list[Any] = []

    def observe(event: Event) -> None:
        if isinstance(event, event_class):
            captured.append(event)

    registry._add_observer(observe)
    try:
        yield captured
    finally:
        registry._remove_observer(observe)


@contextmanager
def isolated_registry(*, strict: bool = False) -> Iterator[EventRegistry]:
    """A fresh, empty registry as the current one (``emit_event``/``handle_event``) in the block."""
    with use_registry(EventRegistry(strict=strict, name="isolated")) as registry:
        yield registry
