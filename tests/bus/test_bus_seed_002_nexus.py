"""The examples of seed 002 (an async event hub), ported to EventBus."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing

from net.bus import (
    Event,
    EventBoundary,
    EventBus,
    Fanout,
    HandlerContext,
    PullSource,
    PushSource,
    Timer,
    TimerTick,
    UnhandledEvent,
)


def run_on_mock_clock(test: Callable[[], Awaitable[None]]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


class Teapot(Event, name="tests.bus.seed002.Teapot"):
    id: int
    payload: str


class Hi(Event, name="tests.bus.seed002.Hi"):
    id: int
    payload: str = "hi"


class Reading(Event, name="tests.bus.seed002.Reading"):
    payload: object


def test_usage_timer_counting_down() -> None:
    """timer = Timer(interval=1.5, type=COUNT_DOWN, count=5, event_type=98, ...)"""

    async def main() -> None:
        bus = EventBus()
        payloads: list[int] = []
        bus.add_handler(TimerTick, lambda event: payloads.append(event.value))
        bus.add_source(Timer(1.5, counting="down", count=5))
        async with bus:
            await trio.sleep(8)
        assert payloads == [5, 4, 3, 2, 1]

    run_on_mock_clock(main)


def test_usage_teapot_task_with_handler_and_default_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plain task sends an event; a handler for it; a default handler printing the rest."""

    async def teapot(tx_bus: EventBus) -> None:
        await trio.sleep(3)
        await tx_bus.enqueue(Teapot(id=1001, payload="TEAPOT!"))

    async def main() -> None:
        bus = EventBus()

        async def teapot_handler(event: Teapot, ctx: HandlerContext) -> None:
            print("teapot ID: ", event.id)

        bus.add_handler(Teapot, teapot_handler)
        bus.set_default_handler(lambda event: print(event))
        async with bus, trio.open_nursery() as nursery:
            nursery.start_soon(teapot, bus)
            await bus.publish(Hi(id=1))

    run_on_mock_clock(main)
    assert capsys.readouterr().out.splitlines() == ["Hi(id=1, payload='hi')", "teapot ID:  1001"]


def test_usage_run_in_the_background_or_blocking() -> None:
    """nexus.start() (a background task) / nexus.loop_forever() (blocking until stopped)."""

    async def main() -> None:
        bus = EventBus()
        got: list[int] = []
        bus.add_handler(Hi, lambda event: got.append(event.id))
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)  # in the background
            bus.emit(Hi(id=1))
            bus.stop()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bus.run)  # "blocking": run() returns only when stopped
            await trio.testing.wait_all_tasks_blocked()
            bus.emit(Hi(id=2))
            bus.stop()
        assert got == [1, 2]

    trio.run(main)


def test_event_sources_simple_converter_pull_mode() -> None:
    """MyEventConverter.obtain_event(): sleep 0.2, id += 1, return an event."""

    async def main() -> None:
        bus = EventBus()
        ids: list[int] = []
        bus.add_handler(Hi, lambda event: ids.append(event.id))

        class MyEventConverter:
            id = 1000

            async def obtain_event(self) -> Hi:
                await trio.sleep(0.2)
                self.id += 1
                return Hi(id=self.id)

        bus.add_source(PullSource(MyEventConverter().obtain_event))
        async with bus:
            await trio.sleep(1.1)
        assert ids == [1001, 1002, 1003, 1004, 1005]

    run_on_mock_clock(main)


def test_event_sources_generator_converter() -> None:
    """An EventConverter with an event_generator(): no object state needed."""

    async def main() -> None:
        bus = EventBus()
        ids: list[int] = []
        bus.add_handler(Hi, lambda event: ids.append(event.id))

        async def event_generator() -> AsyncIterator[Hi]:
            for next_id in itertools.count(1):
                await trio.sleep(0.5)
                yield Hi(id=next_id)

        bus.add_source(event_generator)
        async with bus:
            await trio.sleep(2.2)
        assert ids == [1, 2, 3, 4]

    run_on_mock_clock(main)


class MyEventProducer(PushSource):
    """Push mode: start() wires a callback; close() unwires it; events are pushed."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Callable[[int], None]] = []

    async def produce(self) -> None:
        self.callbacks.append(self.on_data)

    def close(self) -> None:
        self.callbacks.clear()

    def on_data(self, value: int) -> None:
        self.push(Hi(id=value))


async def test_event_sources_push_mode_producer() -> None:
    bus = EventBus()
    ids: list[int] = []
    bus.add_handler(Hi, lambda event: ids.append(event.id))
    producer = MyEventProducer()
    bus.add_source(producer)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
        for callback in producer.callbacks:
            callback(7)
    assert ids == [7] and producer.callbacks == []


async def test_event_handlers_filter_discards_invalid_payloads() -> None:
    """A good use of a filter: discard events whose payload is invalid (return True)."""
    bus = EventBus(strict=True)
    handled: list[object] = []
    bus.add_filter(lambda event: isinstance(event, Reading) and not isinstance(event.payload, int))
    bus.add_handler(Reading, lambda event: handled.append(event.payload))
    for payload in (1, "garbage", None, 2):
        await bus.publish(Reading(payload=payload))
    assert handled == [1, 2]


async def test_event_handlers_filter_for_a_range_of_types() -> None:
    """Another good use: a range check, which handlers by class cannot express."""
    bus = EventBus()
    in_range: list[int] = []

    def ids_1000_to_1999(event: Event) -> bool:
        if isinstance(event, Hi) and 1000 <= event.id < 2000:
            in_range.append(event.id)
            return True
        return False

    bus.add_filter(ids_1000_to_1999)
    other: list[int] = []
    bus.add_handler(Hi, lambda event: other.append(event.id))
    for event_id in (5, 1000, 1999, 2000):
        await bus.publish(Hi(id=event_id))
    assert in_range == [1000, 1999] and other == [5, 2000]


async def test_event_handlers_order_filters_handlers_default() -> None:
    bus = EventBus()
    trace: list[str] = []
    bus.add_filter(lambda event: trace.append("filter") or False)
    bus.add_handler(Hi, lambda event: trace.append("handler"))
    bus.set_default_handler(lambda event: trace.append("default"))
    await bus.publish(Hi(id=1))
    await bus.publish(Teapot(id=1, payload=""))
    assert trace == ["filter", "handler", "filter", "default"]


async def test_event_handlers_unhandled_event_is_an_error() -> None:
    """An event ingested and not consumed is a logic error: UnhandledEvent (strict bus)."""
    bus = EventBus(strict=True)
    with pytest.raises(UnhandledEvent):
        await bus.publish(Teapot(id=1, payload="nobody"))


async def test_event_handlers_discarder_for_useless_events() -> None:
    """EventDiscarder: a handler that takes useless events so they are not unhandled."""
    bus = EventBus(strict=True)

    def discard(event: Event) -> None:
        """Takes the event and does nothing with it."""

    bus.add_handler(Teapot, discard)
    await bus.publish(Teapot(id=1, payload="useless"))


async def test_context_managers() -> None:
    """with AsyncEventNexus() as nexus: ... cleans up even on error or stop."""
    bus = EventBus()
    with pytest.raises(ZeroDivisionError):
        async with bus:
            assert bus.running
            1 / 0  # noqa: B018
    assert not bus.running
    async with bus:
        bus.stop()
    assert not bus.running


async def test_event_buses_one_producer_several_buses() -> None:
    """An EventProducer registered with several nexus objects."""
    plugins = [EventBus(name=f"plugin{i}") for i in range(3)]
    got: list[str] = []
    for bus in plugins:
        bus.add_handler(Hi, lambda event, name=bus.name: got.append(f"{name}:{event.id}"))
    producer = MyEventProducer()
    for bus in plugins:
        bus.add_source(producer)
    async with plugins[0], plugins[1], plugins[2]:
        await trio.testing.wait_all_tasks_blocked()
        producer.on_data(1)
    assert sorted(got) == ["plugin0:1", "plugin1:1", "plugin2:1"]


async def test_event_buses_fanout() -> None:
    """EventFanout sequentially sends copies of all received events to several handlers."""
    bus = EventBus()
    got: list[str] = []
    bus.add_handler(
        Event,
        Fanout(
            lambda event: got.append(f"a:{type(event).__name__}"),
            lambda event: got.append(f"b:{type(event).__name__}"),
        ),
    )
    await bus.publish(Hi(id=1))
    await bus.publish(Teapot(id=2, payload="x"))
    assert got == ["a:Hi", "b:Hi", "a:Teapot", "b:Teapot"]


async def test_event_buses_boundary_to_a_logging_backend() -> None:
    """A logging backend keeps its own bus; components forward chosen events through a boundary."""

    class LogEvent(Event, name="tests.bus.seed002.LogEvent"):
        line: str

    class LoggingBackend:
        def __init__(self) -> None:
            self._bus = EventBus(name="logging")  # internal
            self.lines: list[str] = []
            self._bus.add_handler(LogEvent, lambda event: self.lines.append(event.line))
            self.boundary = EventBoundary(self._bus, LogEvent)  # exposed

        async def __aenter__(self) -> LoggingBackend:
            await self._bus.__aenter__()
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self._bus.__aexit__(None, None, None)

    component_a, component_b = EventBus(name="a"), EventBus(name="b")
    async with LoggingBackend() as backend:
        backend.boundary.attach(component_a)
        backend.boundary.attach(component_b)
        await component_a.publish(LogEvent(line="from a"))
        await component_b.publish(Hi(id=1))  # not a log event: stays in b
        await component_b.publish(LogEvent(line="from b"))
    assert backend.lines == ["from a", "from b"]
