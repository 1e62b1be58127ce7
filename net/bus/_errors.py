"""The errors the event bus raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._describe import describe_callable

if TYPE_CHECKING:
    from ._event import Event


class UnhandledEvent(Exception):
    """A strict registry got an event that no filter consumed, no handler and no default took.

    On a strict registry that is a logic error, so it is raised: from
    ``emit_event`` and ``publish`` to the caller, from ``tx.send`` to the
    sender, and out of the bus's ``run()`` for events handed over with ``emit``.
    """

    def __init__(self, event: Event, origin: object = None) -> None:
        where = "" if origin is None else f" (origin {describe_callable(origin)})"
        super().__init__(
            f"no handler took event {event.event_name}{where} and there is no default handler"
        )
        self.event = event
        self.origin = origin


class BusNotRunning(RuntimeError):
    """The bus's own task is not running (never started, stopping or stopped).

    ``emit``, ``enqueue``, push sources and senders need it; ``publish`` does not.
    """


class UnknownEventName(LookupError):
    """An event name from the wire that no Event class here is registered under."""


class EventQueueFull(RuntimeError):
    """``emit`` found the bus's bounded queue full: the event was not taken.

    Counted in ``bus.stats.queue_full``. Use ``await bus.enqueue(event)`` or a
    sender to wait for room instead.
    """
