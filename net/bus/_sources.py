"""Event sources: things that produce events for a bus while it runs.

Three kinds, after how the events come: a :class:`Timer` counts by itself; a
:class:`PullSource` asks for the next event (an async generator or an async
function); a :class:`PushSource` is told about events by someone else (a
callback) and pushes them. Pulled events and ticks wait for room in the bus's
queue; pushed ones cannot wait, so a full queue raises at ``push``.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import trio

from ._describe import describe_callable, short_repr
from ._errors import BusNotRunning, EventQueueFull
from ._event import Event

if TYPE_CHECKING:
    from ._bus import EventBus


class EventSource(ABC):
    """Produces events into a bus: ``run`` is started in the bus's nursery and cancelled at stop."""

    @abstractmethod
    async def run(self, bus: EventBus) -> None:
        """Produce events (``await bus.enqueue(event, origin=...)``) until done or cancelled."""


class TimerTick(Event, name="net.bus.TimerTick"):
    """One tick of a :class:`Timer`: ``value`` counts up from 1, or down to 1."""

    timer: str
    value: int


class Timer(EventSource):
    """A ready-made source: ``count`` ticks (or endless), ``interval`` seconds apart.

    Counting ``"up"`` the ticks carry 1, 2, 3...; counting ``"down"`` they carry
    ``count``, ..., 2, 1 (``count`` is then required). Ticks are scheduled from
    the start time, so they don't drift; a tick held up by a full queue is
    delivered late, not skipped. The timer is the ticks' ``origin``, so a
    handler can listen to one timer with ``handle_event(TimerTick, origin=timer)``.
    """

    def __init__(
        self,
        interval: float,
        *,
        count: int | None = None,
        counting: Literal["up", "down"] = "up",
        name: str = "timer",
        event_class: type[TimerTick] = TimerTick,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"interval must be a number of seconds, got {short_repr(interval)}")
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a positive, finite number, got {interval!r}")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 0
        ):
            raise ValueError(f"count must be None or an int >= 0, got {short_repr(count)}")
        if counting not in ("up", "down"):
            raise ValueError(f"counting must be 'up' or 'down', got {short_repr(counting)}")
        if counting == "down" and count is None:
            raise ValueError("a timer counting down needs a count")
        if not (isinstance(event_class, type) and issubclass(event_class, TimerTick)):
            raise TypeError(
                f"event_class must be a TimerTick subclass, got {short_repr(event_class)}"
            )
        self.interval = float(interval)
        self.count = count
        self.counting = counting
        self.name = name
        self.event_class = event_class

    def values(self) -> Iterable[int]:
        """The values the ticks carry, in order."""
        if self.count is None:
            return itertools.count(1)
        if self.counting == "down":
            return range(self.count, 0, -1)
        return range(1, self.count + 1)

    async def run(self, bus: EventBus) -> None:
        start = trio.current_time()
        for number, value in enumerate(self.values(), start=1):
            await trio.sleep_until(start + number * self.interval)
            await bus.enqueue(self.event_class(timer=self.name, value=value), origin=self)

    def __repr__(self) -> str:
        return (
            f"Timer({self.interval}, count={self.count}, counting={self.counting!r}, "
            f"name={self.name!r})"
        )


PullFunction = Callable[[], Awaitable[Event | None]]


class PullSource(EventSource):
    """Pulls events from an async iterable, an async generator function, or an async function.

    An async function is called again and again; each call returns the next
    event, ``None`` ends the source. Each event waits for room in the bus's
    queue before the next is pulled. ``origin`` defaults to what was wrapped.
    """

    def __init__(
        self, source: AsyncIterable[Event] | Callable[[], Any], *, origin: object = None
    ) -> None:
        if not (hasattr(source, "__aiter__") or callable(source)):
            raise TypeError(
                f"a pull source is an async iterable, async generator function or async "
                f"function, not {short_repr(source)}"
            )
        self.source = source
        self.origin = source if origin is None else origin

    async def run(self, bus: EventBus) -> None:
        source = self.source
        if inspect.isasyncgenfunction(source):
            source = source()
        if hasattr(source, "__aiter__"):
            await self._drain(bus, source)
            return
        assert callable(source)
        while True:
            event = await source()
            if event is None:
                return
            await bus.enqueue(event, origin=self.origin)

    async def _drain(self, bus: EventBus, iterable: AsyncIterable[Event]) -> None:
        iterator = aiter(iterable)
        try:
            async for event in iterator:
                await bus.enqueue(event, origin=self.origin)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    def __repr__(self) -> str:
        return f"PullSource({describe_callable(self.source)})"


class PushSource(EventSource):
    """Base class for sources that hand events over when they have them (callbacks...).

    Subclass it; call :meth:`push` whenever there is an event. Override
    :meth:`produce` to set things up (or to run a loop) once attached to a
    running bus, and :meth:`close` to release them when the last bus stops.
    One source may feed several buses: each gets the event (the second and
    later ones a shallow copy).
    """

    def __init__(self) -> None:
        self._buses: list[EventBus] = []

    @property
    def attached(self) -> bool:
        """Whether a running bus takes this source's pushes."""
        return bool(self._buses)

    def push(self, event: Event, *, origin: object = None) -> None:
        """Hand ``event`` to every bus this source feeds, now, without waiting.

        Raises :class:`BusNotRunning` when no bus runs the source, and
        :class:`EventQueueFull` when a bus's queue is full (the other buses
        still get the event). Call it from the trio thread of the bus.
        """
        if not self._buses:
            raise BusNotRunning(f"{short_repr(self)} is not attached to a running bus")
        origin = self if origin is None else origin
        failure: Exception | None = None
        for number, bus in enumerate(list(self._buses)):
            try:
                bus.emit(event if number == 0 else copy.copy(event), origin=origin)
            except (EventQueueFull, BusNotRunning) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def run(self, bus: EventBus) -> None:
        self._buses.append(bus)
        try:
            await self.produce()
            await trio.sleep_forever()
        finally:
            self._buses.remove(bus)
            if not self._buses:
                self.close()

    async def produce(self) -> None:
        """Set up whatever calls :meth:`push`, or run a loop pushing events. Default: nothing."""

    def close(self) -> None:
        """Release what :meth:`produce` set up; called when no running bus takes pushes any more."""


def as_source(source: object) -> EventSource:
    """``source`` as an :class:`EventSource`: wrapped in a :class:`PullSource` unless it is one."""
    if isinstance(source, EventSource):
        return source
    if hasattr(source, "__aiter__") or inspect.isasyncgenfunction(source) or callable(source):
        return PullSource(source)
    raise TypeError(f"not an event source: {short_repr(source)}")
