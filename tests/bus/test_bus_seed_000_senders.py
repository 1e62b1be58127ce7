"""Seed 000 (background tasks sending custom events through a sender), ported, and senders."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from net.bus import (
    BusNotRunning,
    Event,
    EventBus,
    EventSender,
    HandlerContext,
    UnhandledEvent,
)


class EventCustom(Event):
    data: str


async def test_background_task_gets_a_sender_and_reports_started() -> None:
    bus = EventBus()
    initialised: list[str] = []

    async def my_background_task(
        tx: EventSender, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        initialised.append("init")
        task_status.started()
        await trio.sleep_forever()  # observe an external system...

    bus.add_task(my_background_task)
    async with bus:
        assert initialised == ["init"]  # `async with` waited for started()


async def test_handling_custom_events(capsys: pytest.CaptureFixture[str]) -> None:
    bus = EventBus()
    sent = trio.Event()

    async def on_custom_event(
        tx: EventSender, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await tx.send(EventCustom(data="Hello, world!"))
        sent.set()

    @bus.handle_event(EventCustom)
    async def handle_custom_event(event: EventCustom) -> None:
        print(event.data)

    bus.add_task(on_custom_event)
    async with bus:
        await sent.wait()
    assert capsys.readouterr().out == "Hello, world!\n"


async def test_send_blocks_until_handled_even_without_a_handler() -> None:
    bus = EventBus()
    async with bus:
        tx = bus.sender()
        event = EventCustom(data="nobody listens")
        assert await tx.send(event) is event


async def test_send_waits_for_the_handlers_of_events_queued_before_it() -> None:
    bus = EventBus()
    order: list[str] = []
    release = trio.Event()

    @bus.handle_event(Event)
    async def slow_webhook(event: Event) -> None:
        if isinstance(event, EventCustom):
            order.append(f"custom:{event.data}")
        else:
            await release.wait()
            order.append("webhook done")

    async with bus:
        bus.emit(Event())  # a pending "webhook" event
        async with trio.open_nursery() as nursery:

            async def sender() -> None:
                await bus.sender().send(EventCustom(data="x"))
                order.append("send returned")

            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert order == []
            release.set()
    assert order == ["webhook done", "custom:x", "send returned"]


async def test_exception_in_handler_is_raised_at_the_sender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bus = EventBus()
    done = trio.Event()

    async def on_custom_event(
        tx: EventSender, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        try:
            await tx.send(EventCustom(data="Hello, world!"))
        except RuntimeError as err:
            print("Oops:", err)
        done.set()

    @bus.handle_event(EventCustom)
    async def handle_custom_event(event: EventCustom) -> None:
        raise RuntimeError(event.data)

    bus.add_task(on_custom_event)
    async with bus:
        await done.wait()
    assert capsys.readouterr().out == "Oops: Hello, world!\n"


async def test_the_sender_gets_the_first_failure_and_the_others_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    ran: list[str] = []

    def first_failure(event: EventCustom) -> None:
        raise ValueError("first")

    def second_failure(event: EventCustom) -> None:
        raise KeyError("second")

    bus.add_handler(EventCustom, first_failure)
    bus.add_handler(EventCustom, second_failure)
    bus.add_handler(EventCustom, lambda event: ran.append("third still runs"))
    async with bus:
        with pytest.raises(ValueError, match="first"):
            await bus.sender().send(EventCustom(data="x"))
    assert ran == ["third still runs"]
    assert ".second_failure failed" in caplog.text
    assert ".first_failure failed" not in caplog.text
    assert bus.registry.stats.handler_failures == 2


async def test_a_strict_bus_hands_unhandled_back_to_the_sender() -> None:
    bus = EventBus(strict=True)
    async with bus:
        with pytest.raises(UnhandledEvent):
            await bus.sender().send(EventCustom(data="x"))
        assert bus.running  # the bus goes on


async def test_send_on_a_stopped_bus_is_an_error() -> None:
    with pytest.raises(BusNotRunning):
        await EventBus().sender().send(EventCustom(data="x"))


async def test_a_waiting_sender_learns_that_the_bus_was_cancelled() -> None:
    bus = EventBus()
    block = trio.Event()

    @bus.handle_event(EventCustom)
    async def stuck(event: EventCustom) -> None:
        await block.wait()

    errors: list[BaseException] = []

    async def sender() -> None:
        try:
            await bus.sender().send(EventCustom(data="x"))
        except BusNotRunning as exc:
            errors.append(exc)

    async with trio.open_nursery() as outer, trio.open_nursery() as bus_nursery:
        await bus_nursery.start(bus.run)
        outer.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        bus_nursery.cancel_scope.cancel()
    assert "stopped before the event was handled" in str(errors[0])


async def test_send_from_a_handler_of_the_same_bus_is_refused() -> None:
    bus = EventBus()
    done = trio.Event()
    errors: list[BaseException] = []

    @bus.handle_event(EventCustom)
    async def resend(event: EventCustom, ctx: HandlerContext) -> None:
        try:
            await bus.sender().send(EventCustom(data="again"))
        except RuntimeError as exc:
            errors.append(exc)
        done.set()

    async with bus:
        bus.emit(EventCustom(data="x"))
        await done.wait()
    assert "ctx.publish" in str(errors[0])


async def test_a_failing_background_task_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()

    async def crashing_task(tx: EventSender) -> None:
        raise OSError("task broke")

    bus.add_task(crashing_task)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
    assert bus.stats.task_failures == 1
    assert "crashing_task" in caplog.text and "task broke" in caplog.text


async def test_tasks_added_while_running_start_at_once() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.add_handler(EventCustom, lambda event: got.append(event.data))

    async def late(tx: EventSender) -> None:
        await tx.send(EventCustom(data="late"))

    async with bus:
        bus.add_task(late)
        await trio.testing.wait_all_tasks_blocked()
    assert got == ["late"]


async def test_background_tasks_are_cancelled_when_the_bus_stops() -> None:
    bus = EventBus()
    cancelled: list[bool] = []

    async def forever(tx: EventSender) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(True)

    bus.add_task(forever)
    async with bus:
        await trio.testing.wait_all_tasks_blocked()
    assert cancelled == [True]
