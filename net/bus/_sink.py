"""Sinks: where a bus hands every event it delivers, for an external store."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ._event import Event


class EventSink(ABC):
    """An external store for delivered events (a database, a message queue, a file).

    ``write`` is awaited by the bus after an event's handlers have run, for
    every event of the class the sink was added for. If it raises, the bus
    logs the failure on ``net.bus`` and counts it in ``bus.stats.sink_failures``;
    handlers and emitters are never affected.
    """

    @abstractmethod
    async def write(self, event: Event, *, origin: object = None, peer: object = None) -> None:
        """Store ``event``; raise if it could not be stored."""
