"""EventBus in trio: publish (caller's task), emit (bus's task), queue bounds, stop, context."""

from __future__ import annotations

import logging
import threading

import pytest
import trio
import trio.testing

from net.bus import (
    BusNotRunning,
    Event,
    EventBus,
    EventQueueFull,
    EventRegistry,
    HandlerContext,
    UnhandledEvent,
    get_registry,
)


class Job(Event):
    number: int


class JobDone(Event):
    number: int


async def test_publish_runs_sync_and_async_handlers_in_the_callers_task() -> None:
    bus = EventBus()
    tasks: list[object] = []

    @bus.handle_event(Job)
    def sync_handler(event: Job) -> None:
        tasks.append(trio.lowlevel.current_task())

    @bus.handle_event(Job)
    async def async_handler(event: Job) -> None:
        await trio.sleep(0)
        tasks.append(trio.lowlevel.current_task())
        event.number += 1

    job = Job(number=1)
    assert await bus.publish(job) is job  # no need for the bus to run
    assert job.number == 2
    assert tasks == [trio.lowlevel.current_task()] * 2
    assert bus.stats.published == 1


async def test_publish_isolates_failing_async_handlers(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    ran: list[str] = []

    @bus.handle_event(Job)
    async def broken_async_handler(event: Job) -> None:
        await trio.sleep(0)
        raise LookupError("async boom")

    bus.add_handler(Job, lambda event: ran.append("after"))
    await bus.publish(Job(number=1))
    assert ran == ["after"]
    assert "broken_async_handler" in caplog.text and "async boom" in caplog.text
    assert bus.registry.stats.handler_failures == 1


async def test_a_handler_publishes_further_events_through_its_context() -> None:
    bus = EventBus()
    done: list[int] = []

    @bus.handle_event(Job)
    async def finish(event: Job, ctx: HandlerContext) -> None:
        assert ctx.bus is bus and ctx.is_async
        await ctx.publish(JobDone(number=event.number))

    bus.add_handler(JobDone, lambda event: done.append(event.number))
    await bus.publish(Job(number=5))
    assert done == [5]


async def test_emit_hands_the_event_to_the_bus_task_and_returns_at_once() -> None:
    bus = EventBus()
    handled = trio.Event()
    tasks: list[object] = []

    @bus.handle_event(Job)
    async def handler(event: Job) -> None:
        tasks.append(trio.lowlevel.current_task())
        handled.set()

    async with bus:
        bus.emit(Job(number=1))
        assert tasks == []  # not yet: emit does not wait
        await handled.wait()
    assert tasks and tasks[0] is not trio.lowlevel.current_task()
    assert (bus.stats.queued, bus.stats.delivered) == (1, 1)


async def test_emitted_events_are_delivered_in_order() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Job, lambda event: got.append(event.number))
    async with bus:
        for number in range(100):
            bus.emit(Job(number=number))
    assert got == list(range(100))  # leaving the block delivers what was queued


async def test_a_handler_can_emit_through_its_context() -> None:
    bus = EventBus()
    done = trio.Event()

    @bus.handle_event(Job)
    def follow_up(event: Job, ctx: HandlerContext) -> None:
        ctx.emit(JobDone(number=event.number))

    bus.add_handler(JobDone, lambda event: done.set())
    async with bus:
        bus.emit(Job(number=1))
        await done.wait()


async def test_emit_on_a_stopped_bus_is_a_clear_error() -> None:
    bus = EventBus(name="idle")
    with pytest.raises(BusNotRunning, match=r"'idle' is not running.*async with bus"):
        bus.emit(Job(number=1))
    async with bus:
        pass
    with pytest.raises(BusNotRunning):
        bus.emit(Job(number=1))
    with pytest.raises(BusNotRunning):
        await bus.enqueue(Job(number=1))


async def test_emit_needs_an_event_instance() -> None:
    async with EventBus() as bus:
        with pytest.raises(TypeError, match="Event instance"):
            bus.emit(Job)  # type: ignore[arg-type]


async def test_full_queue_raises_and_is_counted() -> None:
    bus = EventBus(max_queue=3, name="small")
    release = trio.Event()
    got: list[int] = []

    @bus.handle_event(Job)
    async def slow(event: Job) -> None:
        await release.wait()
        got.append(event.number)

    async with bus:
        bus.emit(Job(number=0))
        await trio.testing.wait_all_tasks_blocked()  # the bus task holds job 0
        for number in (1, 2, 3):
            bus.emit(Job(number=number))
        assert bus.queued() == 3
        with pytest.raises(EventQueueFull, match="'small': queue full \\(3 events"):
            bus.emit(Job(number=4))
        assert bus.stats.queue_full == 1
        release.set()
    assert got == [0, 1, 2, 3]


async def test_enqueue_waits_for_room_instead() -> None:
    bus = EventBus(max_queue=1)
    release = trio.Event()
    got: list[int] = []

    @bus.handle_event(Job)
    async def slow(event: Job) -> None:
        await release.wait()
        got.append(event.number)

    async with bus:
        bus.emit(Job(number=0))
        await trio.testing.wait_all_tasks_blocked()
        bus.emit(Job(number=1))
        queued: list[int] = []

        async def enqueue_two() -> None:
            await bus.enqueue(Job(number=2))
            queued.append(2)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enqueue_two)
            await trio.testing.wait_all_tasks_blocked()
            assert queued == []  # no room: it waits
            release.set()
        assert queued == [2]
    assert got == [0, 1, 2]


def test_bad_queue_sizes_are_refused() -> None:
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_queue"):
            EventBus(max_queue=bad)  # type: ignore[arg-type]


def test_strict_goes_to_the_registry_or_the_bus_not_both() -> None:
    assert EventBus(strict=True).registry.strict
    with pytest.raises(ValueError):
        EventBus(EventRegistry(), strict=True)


async def test_bus_can_share_the_module_level_registry() -> None:
    bus = EventBus(get_registry())
    got: list[int] = []
    from net.bus import handle_event

    handle_event(Job)(lambda event: got.append(event.number))
    await bus.publish(Job(number=3))
    async with bus:
        bus.emit(Job(number=4))
    assert got == [3, 4]


async def test_strict_publish_raises_unhandled_event() -> None:
    bus = EventBus(strict=True)
    with pytest.raises(UnhandledEvent):
        await bus.publish(Job(number=1))


async def test_strict_bus_stops_on_an_emitted_event_nobody_takes() -> None:
    bus = EventBus(strict=True)
    with pytest.raises(UnhandledEvent, match="no handler took event"):
        async with bus:
            bus.emit(Job(number=1))
            await trio.sleep_forever()


async def test_not_strict_unhandled_emits_are_counted() -> None:
    bus = EventBus()
    async with bus:
        bus.emit(Job(number=1))
    assert bus.registry.stats.unhandled == 1


async def test_default_handler_and_filters_apply_on_the_bus() -> None:
    bus = EventBus(strict=True)
    seen: list[str] = []
    bus.add_filter(lambda event: isinstance(event, Job) and event.number < 0)
    bus.set_default_handler(lambda event: seen.append(f"default:{type(event).__name__}"))
    await bus.publish(Job(number=-1))
    await bus.publish(Job(number=1))
    assert seen == ["default:Job"]


async def test_stop_delivers_queued_events_then_run_returns() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Job, lambda event: got.append(event.number))
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        assert bus.running
        for number in range(5):
            bus.emit(Job(number=number))
        bus.stop()
        with pytest.raises(BusNotRunning, match=r"stopping|not running"):
            bus.emit(Job(number=99))
    assert got == [0, 1, 2, 3, 4] and not bus.running


async def test_cancelling_the_bus_drops_queued_events_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(name="cancelled")
    block = trio.Event()

    @bus.handle_event(Job)
    async def stuck(event: Job) -> None:
        await block.wait()

    with caplog.at_level(logging.WARNING, logger="net.bus"):
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            for number in range(4):
                bus.emit(Job(number=number))
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert bus.stats.dropped_at_stop == 3
    assert "cancelled with 3 emitted events not delivered" in caplog.text


async def test_running_twice_at_once_is_refused_but_restarting_works() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Job, lambda event: got.append(event.number))
    async with bus:
        with pytest.raises(RuntimeError, match="already"):
            await bus.run()
        bus.emit(Job(number=1))
    async with bus:
        bus.emit(Job(number=2))
    assert got == [1, 2]


async def test_an_error_in_the_block_comes_out_as_itself() -> None:
    with pytest.raises(KeyError, match="from the body"):
        async with EventBus():
            raise KeyError("from the body")


async def test_emit_from_another_thread_is_refused_with_the_way_to_do_it() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.add_handler(Job, lambda event: got.append(event.number))
    errors: list[BaseException] = []

    def wrong_thread() -> None:
        try:
            bus.emit(Job(number=1))
        except RuntimeError as exc:
            errors.append(exc)

    def right_thread() -> None:
        trio.from_thread.run_sync(bus.emit, Job(number=2), trio_token=bus.trio_token)

    async with bus:
        await trio.to_thread.run_sync(wrong_thread)
        await trio.to_thread.run_sync(right_thread)
    assert "trio.from_thread.run_sync" in str(errors[0])
    assert got == [2]


async def test_handlers_see_a_context_naming_the_bus_and_peer() -> None:
    bus = EventBus()
    contexts: list[HandlerContext] = []
    bus.add_handler(Job, lambda event, ctx: contexts.append(ctx))
    await bus.publish(Job(number=1), origin="here", peer="peer-a")
    async with bus:
        bus.emit(Job(number=2), peer="peer-b")
    assert [(c.bus, c.origin, c.peer) for c in contexts] == [
        (bus, "here", "peer-a"),
        (bus, None, "peer-b"),
    ]


def test_nothing_runs_without_trio() -> None:
    bus = EventBus()
    assert not bus.running and threading.active_count() >= 1
    assert "stopped" in repr(bus)
