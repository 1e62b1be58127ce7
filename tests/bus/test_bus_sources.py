"""Event sources: timers (on trio's MockClock), pull sources, push sources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing

from net.bus import (
    BusNotRunning,
    Event,
    EventBus,
    EventQueueFull,
    PullSource,
    PushSource,
    Timer,
    TimerTick,
)


def run_on_mock_clock(test: Callable[[], Awaitable[None]]) -> None:
    """Virtual time: sleeps end as soon as every task waits, so timers take no real time."""
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


class Reading(Event):
    value: int


# -- timers ---------------------------------------------------------------------------------


def test_timer_counting_down_ticks_at_its_interval() -> None:
    async def main() -> None:
        bus = EventBus()
        ticks: list[tuple[int, float]] = []
        start = trio.current_time()
        bus.add_handler(TimerTick, lambda t: ticks.append((t.value, trio.current_time() - start)))
        bus.add_source(Timer(1.5, counting="down", count=5, name="countdown"))
        async with bus:
            await trio.sleep(100)
        assert ticks == [(5, 1.5), (4, 3.0), (3, 4.5), (2, 6.0), (1, 7.5)]

    run_on_mock_clock(main)


def test_timer_counting_up_with_a_count() -> None:
    async def main() -> None:
        bus = EventBus()
        values: list[int] = []
        bus.add_handler(TimerTick, lambda t: values.append(t.value))
        bus.add_source(Timer(0.25, count=3))
        async with bus:
            await trio.sleep(10)
        assert values == [1, 2, 3]

    run_on_mock_clock(main)


def test_endless_timer_runs_until_the_bus_stops() -> None:
    async def main() -> None:
        bus = EventBus()
        values: list[int] = []
        bus.add_handler(TimerTick, lambda t: values.append(t.value))
        bus.add_source(Timer(1))
        async with bus:
            await trio.sleep(10.5)
        assert values == list(range(1, 11))

    run_on_mock_clock(main)


def test_ticks_name_their_timer_and_timers_are_origins() -> None:
    async def main() -> None:
        bus = EventBus()
        fast, slow = Timer(1, count=4, name="fast"), Timer(2, count=2, name="slow")
        from_slow: list[str] = []
        bus.add_handler(TimerTick, lambda t: from_slow.append(f"{t.timer}:{t.value}"), origin=slow)
        bus.add_source(fast)
        bus.add_source(slow)
        async with bus:
            await trio.sleep(10)
        assert from_slow == ["slow:1", "slow:2"]

    run_on_mock_clock(main)


def test_timer_with_its_own_tick_class() -> None:
    class Heartbeat(TimerTick, name="tests.bus.Heartbeat"):
        pass

    async def main() -> None:
        bus = EventBus()
        beats: list[int] = []
        bus.add_handler(Heartbeat, lambda t: beats.append(t.value))
        bus.add_source(Timer(1, count=2, event_class=Heartbeat))
        async with bus:
            await trio.sleep(5)
        assert beats == [1, 2]

    run_on_mock_clock(main)


def test_timer_does_not_drift() -> None:
    async def main() -> None:
        bus = EventBus()
        times: list[float] = []
        start = trio.current_time()

        @bus.handle_event(TimerTick)
        async def slowish(tick: TimerTick) -> None:
            times.append(trio.current_time() - start)
            await trio.sleep(0.3)  # handling takes time, the schedule does not move

        bus.add_source(Timer(1, count=3))
        async with bus:
            await trio.sleep(5)
        assert times == [1.0, 2.0, 3.0]

    run_on_mock_clock(main)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"interval": 0}, ValueError),
        ({"interval": -1}, ValueError),
        ({"interval": float("inf")}, ValueError),
        ({"interval": float("nan")}, ValueError),
        ({"interval": "1"}, TypeError),
        ({"interval": 1, "count": -1}, ValueError),
        ({"interval": 1, "count": 1.5}, ValueError),
        ({"interval": 1, "counting": "down"}, ValueError),
        ({"interval": 1, "counting": "sideways", "count": 2}, ValueError),
        ({"interval": 1, "event_class": Reading}, TypeError),
    ],
)
def test_timer_refuses_bad_settings(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Timer(**kwargs)  # type: ignore[arg-type]


def test_timer_values() -> None:
    assert list(Timer(1, count=3).values()) == [1, 2, 3]
    assert list(Timer(1, count=3, counting="down").values()) == [3, 2, 1]
    assert list(Timer(1, count=0).values()) == []


# -- pull sources ---------------------------------------------------------------------------


async def test_pull_source_from_an_async_generator_function() -> None:
    bus = EventBus()
    got: list[int] = []
    origins: list[object] = []
    bus.add_handler(
        Reading, lambda event, ctx: (got.append(event.value), origins.append(ctx.origin))
    )

    async def readings() -> AsyncIterator[Reading]:
        for value in range(3):
            await trio.sleep(0)
            yield Reading(value=value)

    bus.add_source(readings)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
    assert got == [0, 1, 2] and origins == [readings] * 3


async def test_pull_source_from_an_async_function_until_none() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Reading, lambda event: got.append(event.value))
    counter = iter(range(1001, 1004))

    async def obtain_event() -> Reading | None:
        await trio.sleep(0)
        value = next(counter, None)
        return None if value is None else Reading(value=value)

    source = bus.add_source(PullSource(obtain_event, origin="converter"))
    assert isinstance(source, PullSource)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
    assert got == [1001, 1002, 1003]


async def test_pull_source_waits_for_room_in_the_queue() -> None:
    bus = EventBus(max_queue=2)
    release = trio.Event()
    got: list[int] = []
    pulled: list[int] = []

    @bus.handle_event(Reading)
    async def slow(event: Reading) -> None:
        await release.wait()
        got.append(event.value)

    async def many() -> AsyncIterator[Reading]:
        for value in range(10):
            pulled.append(value)
            yield Reading(value=value)

    bus.add_source(many)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
        assert len(pulled) <= 5  # held back, not dropped
        release.set()
        await trio.testing.wait_all_tasks_blocked()
    assert got == list(range(10)) and bus.stats.queue_full == 0


async def test_a_failing_pull_source_is_logged_and_the_bus_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Reading, lambda event: got.append(event.value))

    async def flaky_source() -> AsyncIterator[Reading]:
        yield Reading(value=1)
        raise ConnectionError("sensor unplugged")

    async def yields_garbage() -> AsyncIterator[object]:
        yield "not an event"

    bus.add_source(flaky_source)
    bus.add_source(yields_garbage)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
        await bus.publish(Reading(value=2))
    assert got == [1, 2] and bus.stats.source_failures == 2
    assert "sensor unplugged" in caplog.text and "Event instance" in caplog.text


async def test_pull_source_generator_is_closed_when_the_bus_stops() -> None:
    bus = EventBus()
    closed: list[bool] = []

    async def endless() -> AsyncIterator[Reading]:
        try:
            while True:
                await trio.sleep(1)
                yield Reading(value=0)
        finally:
            closed.append(True)

    bus.add_source(endless)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
    assert closed == [True]


def test_things_that_are_not_sources_are_refused() -> None:
    with pytest.raises(TypeError, match="not an event source"):
        EventBus().add_source(42)


# -- push sources ---------------------------------------------------------------------------


class Doorbell(PushSource):
    """A push source: something else (a callback) tells it when there is an event."""

    def __init__(self) -> None:
        super().__init__()
        self.wired = False

    async def produce(self) -> None:
        self.wired = True

    def close(self) -> None:
        self.wired = False

    def ring(self, value: int) -> None:  # the callback
        self.push(Reading(value=value))


async def test_push_source_hands_events_over_when_it_has_them() -> None:
    bus = EventBus()
    got: list[tuple[int, object]] = []
    bus.add_handler(Reading, lambda event, ctx: got.append((event.value, ctx.origin)))
    doorbell = Doorbell()
    bus.add_source(doorbell)
    with pytest.raises(BusNotRunning):
        doorbell.ring(0)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
        assert doorbell.wired and doorbell.attached
        doorbell.ring(1)
        doorbell.ring(2)
    assert got == [(1, doorbell), (2, doorbell)]
    assert not doorbell.wired and not doorbell.attached


async def test_push_source_full_queue_raises_at_push() -> None:
    bus = EventBus(max_queue=1)
    block = trio.Event()

    @bus.handle_event(Reading)
    async def stuck(event: Reading) -> None:
        await block.wait()

    doorbell = Doorbell()
    bus.add_source(doorbell)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
        doorbell.ring(1)
        await trio.testing.wait_all_tasks_blocked()
        doorbell.ring(2)
        with pytest.raises(EventQueueFull):
            doorbell.ring(3)
        block.set()
    assert bus.stats.queue_full == 1


async def test_one_push_source_can_feed_several_buses() -> None:
    first, second = EventBus(name="first"), EventBus(name="second")
    got: list[str] = []
    first.add_handler(Reading, lambda event: got.append(f"first:{event.value}"))

    @second.handle_event(Reading)
    def change(event: Reading) -> None:
        event.value *= 10  # the second bus has its own copy
        got.append(f"second:{event.value}")

    doorbell = Doorbell()
    first.add_source(doorbell)
    second.add_source(doorbell)
    async with first, second:
        await trio.testing.wait_all_tasks_blocked()
        doorbell.ring(1)
        await trio.testing.wait_all_tasks_blocked()
    assert sorted(got) == ["first:1", "second:10"]


async def test_sources_added_while_running_start_at_once() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Reading, lambda event: got.append(event.value))

    async def one() -> AsyncIterator[Reading]:
        yield Reading(value=7)

    async with bus:
        bus.add_source(one)
        await trio.testing.wait_all_tasks_blocked()
    assert got == [7]
