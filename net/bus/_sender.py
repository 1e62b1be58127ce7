"""The sender a background task gets: hand an event to the bus and wait until it is handled."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import trio

from ._event import Event

if TYPE_CHECKING:
    from ._bus import EventBus

E = TypeVar("E", bound=Event)


class Reply:
    """Where the bus's task leaves the outcome of one sent event for the waiting sender."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None

    def succeed(self) -> None:
        self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class EventSender:
    """``await tx.send(event)`` queues the event on the bus and waits until it is handled.

    The event is handled by the bus's own task, after the events queued before
    it. If a handler raises, that exception is raised again here, in the
    sender's task (further failures of the same event are logged). A strict
    bus's :class:`UnhandledEvent` also comes back here.
    """

    __slots__ = ("_bus",)

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    @property
    def bus(self) -> EventBus:
        return self._bus

    async def send(self, event: E, *, origin: object = None) -> E:
        """Deliver ``event`` through the bus's task; return it once handled or raise what failed."""
        reply = await self._bus._send_for_reply(event, origin)
        await reply.done.wait()
        if reply.error is not None:
            raise reply.error
        return event

    def __repr__(self) -> str:
        return f"EventSender(bus={self._bus!r})"
