"""``EventBus``: delivery of events in trio, in the caller's task or in the bus's own task.

``publish`` runs the handlers in the caller's task and returns when they are
done. ``emit`` puts the event on a bounded queue that the bus's own task
drains; it returns at once, and a full queue is an :class:`EventQueueFull`
error (counted), never a silent drop. ``enqueue`` and senders wait for room
instead. Sources and background tasks run in the bus's nursery while it runs
(``_background``); sinks get every delivered event after its handlers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

import trio

from ._background import TaskFunction, run_source, run_task
from ._context import HandlerContext
from ._describe import describe_error, short_repr
from ._dispatch import DispatchReport, dispatch_steps, drive_async, log_failure
from ._errors import BusNotRunning, EventQueueFull, UnhandledEvent
from ._event import Event
from ._groups import raise_sole
from ._registry import EventRegistry, check_event
from ._sender import EventSender, Reply
from ._sink import EventSink
from ._sources import EventSource, as_source

logger = logging.getLogger("net.bus")

E = TypeVar("E", bound=Event)
H = TypeVar("H", bound=Callable[..., object])

_STOPPED, _RUNNING, _DRAINING = "stopped", "running", "draining"


@dataclass
class BusStats:
    """Counters of one bus (its registry counts handler failures: ``bus.registry.stats``)."""

    published: int = 0
    queued: int = 0
    delivered: int = 0
    queue_full: int = 0
    dropped_at_stop: int = 0
    sink_failures: int = 0
    source_failures: int = 0
    task_failures: int = 0


@dataclass(eq=False)
class _Delivery:
    event: Event
    origin: object
    peer: object
    reply: Reply | None


class EventBus:
    """An event bus running in trio, over an :class:`EventRegistry` (its own by default).

    Run it with ``async with bus: ...`` or ``await nursery.start(bus.run)``.
    ``max_queue`` bounds the queue of events handed over with ``emit``,
    ``enqueue``, sources and senders. ``strict`` makes its own registry raise
    :class:`UnhandledEvent` (pass either ``registry`` or ``strict``).
    """

    def __init__(
        self,
        registry: EventRegistry | None = None,
        *,
        strict: bool | None = None,
        max_queue: int = 1024,
        name: str = "bus",
    ) -> None:
        if registry is not None and strict is not None:
            raise ValueError("give strict= to the registry, or let the bus make its own")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an int >= 1, got {short_repr(max_queue)}")
        self.registry = registry if registry is not None else EventRegistry(strict=bool(strict))
        self.name = name
        self.max_queue = max_queue
        self.stats = BusStats()
        self._state = _STOPPED
        self._send: trio.MemorySendChannel[_Delivery] | None = None
        self._stop_requested: trio.Event | None = None
        self._producers: trio.Nursery | None = None
        self._consumer: trio.lowlevel.Task | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._waiting: set[Reply] = set()
        self._sources: list[EventSource] = []
        self._tasks: list[TaskFunction] = []
        self._sinks: list[tuple[EventSink, type[Event]]] = []
        self._context: AbstractAsyncContextManager[Self] | None = None

    # -- the registry, for convenience ---------------------------------------------------

    def handle_event(self, event_class: type[Event], origin: object = None) -> Callable[[H], H]:
        """Decorator: a handler on this bus's registry (see :meth:`EventRegistry.handle_event`)."""
        return self.registry.handle_event(event_class, origin)

    def add_handler(self, event_class: type[Event], handler: H, *, origin: object = None) -> H:
        return self.registry.add_handler(event_class, handler, origin=origin)

    def add_filter(self, fn: H) -> H:
        return self.registry.add_filter(fn)

    def set_default_handler(self, fn: Callable[..., object] | None) -> None:
        self.registry.set_default_handler(fn)

    # -- state ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the bus's task takes events (``emit`` works)."""
        return self._state == _RUNNING

    @property
    def trio_token(self) -> trio.lowlevel.TrioToken | None:
        """The token of the trio run the bus runs in: other threads use it to call ``emit``."""
        return self._token

    def queued(self) -> int:
        """How many handed-over events wait for the bus's task now."""
        if self._send is None:
            return 0
        return int(self._send.statistics().current_buffer_used)

    # -- delivery -------------------------------------------------------------------------

    async def publish(self, event: E, *, origin: object = None, peer: object = None) -> E:
        """Run the handlers of ``event`` in the caller's task; return it when they are done.

        Needs no running bus. Handler failures are logged and isolated, as with
        ``emit_event``; sinks get the event after the handlers.
        """
        check_event(event)
        self.stats.published += 1
        await self._deliver(event, origin, peer)
        return event

    def emit(self, event: Event, *, origin: object = None, peer: object = None) -> None:
        """Hand ``event`` to the bus's own task and return at once.

        Raises :class:`BusNotRunning` if the bus is not running, and
        :class:`EventQueueFull` (counted in ``stats.queue_full``) if its queue
        holds ``max_queue`` events already. Call it from the trio thread the
        bus runs in; from another thread use
        ``trio.from_thread.run_sync(bus.emit, event, trio_token=bus.trio_token)``.
        """
        check_event(event)
        send = self._channel()
        self._check_thread()
        try:
            send.send_nowait(_Delivery(event, origin, peer, None))
        except trio.WouldBlock:
            self.stats.queue_full += 1
            raise EventQueueFull(
                f"bus {self.name!r}: queue full ({self.max_queue} events waiting); "
                f"{event.event_name} was not taken"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._not_running() from None
        self.stats.queued += 1

    async def enqueue(self, event: Event, *, origin: object = None, peer: object = None) -> None:
        """Hand ``event`` to the bus's own task, waiting for room in the queue if it is full.

        Returns once the event is queued, not handled. From a handler running
        in the bus's own task it cannot wait for itself, so it acts as ``emit``.
        """
        check_event(event)
        if self._in_bus_task():
            self.emit(event, origin=origin, peer=peer)
            return
        await self._put(_Delivery(event, origin, peer, None))

    def sender(self) -> EventSender:
        """A sender whose ``await tx.send(event)`` returns once the bus's task handled it."""
        return EventSender(self)

    async def _send_for_reply(self, event: Event, origin: object) -> Reply:
        check_event(event)
        if self._in_bus_task():
            raise RuntimeError(
                "tx.send from a handler of the same bus would wait for itself: "
                "use `await ctx.publish(event)`"
            )
        reply = Reply()
        self._waiting.add(reply)
        try:
            await self._put(_Delivery(event, origin, None, reply))
        except BaseException:
            self._waiting.discard(reply)
            raise
        return reply

    async def _put(self, delivery: _Delivery) -> None:
        send = self._channel()
        try:
            await send.send(delivery)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._not_running() from None
        self.stats.queued += 1

    async def _deliver(
        self, event: Event, origin: object, peer: object, *, hand_back: bool = False
    ) -> DispatchReport:
        ctx = HandlerContext(self.registry, bus=self, origin=origin, peer=peer, is_async=True)
        report = await drive_async(dispatch_steps(self.registry, event, ctx, hand_back=hand_back))
        await self._write_sinks(event, origin, peer)
        self.registry._conclude(event, origin, report)
        return report

    # -- sinks ----------------------------------------------------------------------------

    def add_sink(self, sink: EventSink, event_class: type[Event] = Event) -> None:
        """Give ``sink`` every delivered event of ``event_class`` (subclasses included)."""
        if not callable(getattr(sink, "write", None)):
            raise TypeError(
                f"a sink needs an async write(event, *, origin, peer): {short_repr(sink)}"
            )
        self._sinks.append((sink, event_class))

    def remove_sink(self, sink: EventSink) -> None:
        self._sinks = [(s, cls) for s, cls in self._sinks if s is not sink]

    async def _write_sinks(self, event: Event, origin: object, peer: object) -> None:
        for sink, event_class in self._sinks:
            if not isinstance(event, event_class):
                continue
            try:
                await sink.write(event, origin=origin, peer=peer)
            except Exception as exc:
                self.stats.sink_failures += 1
                logger.error(
                    "event sink %s failed to store %s: %s",
                    short_repr(sink),
                    event.event_name,
                    describe_error(exc),
                    exc_info=(type(exc), exc, exc.__traceback__),
                )

    # -- sources and background tasks ----------------------------------------------------

    def add_source(self, source: object) -> EventSource:
        """Take events from ``source`` while the bus runs (from now on if it runs already).

        ``source`` is an :class:`EventSource` (``Timer``, ``PullSource``,
        ``PushSource``...), an async iterable or async generator function, or
        an async function returning one event per call (``None`` ends it).
        """
        wrapped = as_source(source)
        self._sources.append(wrapped)
        if self._producers is not None:
            self._producers.start_soon(run_source, self, wrapped)
        return wrapped

    def add_task(self, fn: TaskFunction) -> None:
        """Run ``await fn(tx)`` in the bus's nursery while the bus runs; ``tx`` is a sender.

        If ``fn`` takes ``task_status``, ``async with bus:`` waits until it
        calls ``task_status.started()``. A task that fails is logged and
        counted in ``stats.task_failures``; the bus goes on.
        """
        if not callable(fn):
            raise TypeError(f"a background task must be an async function, got {short_repr(fn)}")
        self._tasks.append(fn)
        if self._producers is not None:
            self._producers.start_soon(run_task, self, fn)

    # -- running --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the bus's task, sources and background tasks until :meth:`stop`.

        On ``stop()``: sources and tasks are cancelled, the events already
        queued are delivered, then ``run`` returns. If it is cancelled instead,
        queued events are dropped (counted in ``stats.dropped_at_stop`` and
        logged) and waiting senders get :class:`BusNotRunning`. On a strict
        registry, an emitted event nobody took ends it with :class:`UnhandledEvent`.
        """
        if self._state != _STOPPED:
            raise RuntimeError(f"bus {self.name!r} is already running")
        send, recv = trio.open_memory_channel[_Delivery](self.max_queue)
        self._send = send
        self._stop_requested = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self._state = _RUNNING
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._consume, recv)
                async with trio.open_nursery() as producers:
                    self._producers = producers
                    for source in self._sources:
                        producers.start_soon(run_source, self, source)
                    for fn in self._tasks:
                        await producers.start(run_task, self, fn)
                    task_status.started()
                    await self._stop_requested.wait()
                    producers.cancel_scope.cancel()
                self._producers = None
                self._state = _DRAINING
                await send.aclose()
        except BaseExceptionGroup as group:
            raise_sole(group)
        finally:
            self._state = _STOPPED
            self._send = None
            self._producers = None
            self._stop_requested = None
            self._token = None
            for reply in list(self._waiting):
                reply.fail(self._stopped_early())
            self._waiting.clear()

    def stop(self) -> None:
        """Ask a running bus to finish (see :meth:`run`); does nothing if it is not running.

        From now on it takes no more events; those already queued are still delivered.
        """
        if self._stop_requested is not None:
            if self._state == _RUNNING:
                self._state = _DRAINING
            self._stop_requested.set()

    async def _consume(self, recv: trio.MemoryReceiveChannel[_Delivery]) -> None:
        self._consumer = trio.lowlevel.current_task()
        try:
            async for delivery in recv:
                await self._handle_queued(delivery)
        finally:
            self._consumer = None
            self._drop_remaining(recv)
            recv.close()

    async def _handle_queued(self, delivery: _Delivery) -> None:
        self.stats.delivered += 1
        reply = delivery.reply
        if reply is None:
            await self._deliver(delivery.event, delivery.origin, delivery.peer)
            return
        try:
            report = await self._deliver(
                delivery.event, delivery.origin, delivery.peer, hand_back=True
            )
        except UnhandledEvent as exc:
            reply.fail(exc)
        else:
            if report.failures:
                first, *others = report.failures
                for failure in others:
                    log_failure(
                        "handler",
                        failure.member,
                        delivery.event,
                        failure.error,
                        origin=delivery.origin,
                    )
                reply.fail(first.error)
            else:
                reply.succeed()
        finally:
            if not reply.done.is_set():  # cancelled midway
                reply.fail(self._stopped_early())
            self._waiting.discard(reply)

    def _drop_remaining(self, recv: trio.MemoryReceiveChannel[_Delivery]) -> None:
        dropped = 0
        while True:
            try:
                delivery = recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if delivery.reply is None:
                dropped += 1
        if dropped:
            self.stats.dropped_at_stop += dropped
            logger.warning(
                "bus %r was cancelled with %d emitted events not delivered", self.name, dropped
            )

    async def __aenter__(self) -> Self:
        if self._context is not None:
            raise RuntimeError(f"bus {self.name!r} is already entered")
        context = self._running_in_nursery()
        entered = await context.__aenter__()
        self._context = context
        return entered

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        context, self._context = self._context, None
        assert context is not None
        return await context.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _running_in_nursery(self) -> AsyncIterator[Self]:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run)
                try:
                    yield self
                finally:
                    self.stop()
        except BaseExceptionGroup as group:
            raise_sole(group)

    # -- helpers --------------------------------------------------------------------------

    def _channel(self) -> trio.MemorySendChannel[_Delivery]:
        if self._state != _RUNNING or self._send is None:
            raise self._not_running()
        return self._send

    def _not_running(self) -> BusNotRunning:
        if self._state == _DRAINING:
            return BusNotRunning(f"bus {self.name!r} is stopping: it takes no more events")
        return BusNotRunning(
            f"bus {self.name!r} is not running: start it with `async with bus:` "
            f"or `await nursery.start(bus.run)` (publish works without it)"
        )

    def _stopped_early(self) -> BusNotRunning:
        return BusNotRunning(f"bus {self.name!r} stopped before the event was handled")

    def _check_thread(self) -> None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            token = None
        if token is not self._token:
            raise RuntimeError(
                "bus.emit must be called from the trio thread the bus runs in; from another "
                "thread use trio.from_thread.run_sync(bus.emit, event, trio_token=bus.trio_token)"
            )

    def _in_bus_task(self) -> bool:
        if self._consumer is None:
            return False
        try:
            return trio.lowlevel.current_task() is self._consumer
        except RuntimeError:
            return False

    def __repr__(self) -> str:
        return f"EventBus(name={self.name!r}, {self._state}, queued={self.queued()})"
