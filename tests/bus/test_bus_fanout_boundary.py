"""Fanout (one handler, several members in turn) and boundaries between buses."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from net.bus import (
    Event,
    EventBoundary,
    EventBus,
    Fanout,
    HandlerContext,
    emit_event,
    get_registry,
)


class Alert(Event):
    level: int
    text: str = ""


class Metric(Event):
    value: float


# -- fanout ---------------------------------------------------------------------------------


async def test_fanout_gives_each_member_its_own_copy_in_turn() -> None:
    bus = EventBus()
    order: list[str] = []

    def first(event: Alert) -> None:
        order.append(f"first:{event.text}")
        event.text = "changed by first"

    async def second(event: Alert, ctx: HandlerContext) -> None:
        await trio.sleep(0)
        order.append(f"second:{event.text}")

    fanout = Fanout(first, second)

    @fanout.add
    def third(event: Alert) -> None:
        order.append(f"third:{event.text}")

    bus.add_handler(Alert, fanout)
    alert = await bus.publish(Alert(level=1, text="orig"))
    assert order == ["first:orig", "second:orig", "third:orig"]
    assert alert.text == "orig"
    assert fanout.members == [first, second, third]


async def test_fanout_can_share_one_event() -> None:
    bus = EventBus()

    def bump(event: Alert) -> None:
        event.level += 1

    bus.add_handler(Alert, Fanout(bump, bump, copy_events=False))
    assert (await bus.publish(Alert(level=0))).level == 2


def test_fanout_works_with_emit_event_for_sync_members(caplog: pytest.LogCaptureFixture) -> None:
    got: list[str] = []

    async def async_member(event: Alert) -> None:  # cannot run synchronously
        got.append("never")

    get_registry().add_handler(
        Alert, Fanout(lambda e: got.append("a"), async_member, lambda e: got.append("b"))
    )
    emit_event(Alert, level=1)
    assert got == ["a", "b"] and "async_member" in caplog.text


async def test_a_failing_fanout_member_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[str] = []

    def faulty_member(event: Alert) -> None:
        raise ArithmeticError("member broke")

    bus.add_handler(Alert, Fanout(faulty_member, lambda e: got.append("next")))
    await bus.publish(Alert(level=1))
    assert got == ["next"]
    assert "fanout member" in caplog.text and "faulty_member" in caplog.text
    assert bus.registry.stats.handler_failures == 1


# -- boundary -------------------------------------------------------------------------------


async def test_boundary_forwards_chosen_events_to_another_bus() -> None:
    app, logging_domain = EventBus(name="app"), EventBus(name="logging")
    logged: list[tuple[int, object]] = []
    boundary = EventBoundary(logging_domain, Alert, when=lambda event: event.level >= 2)
    logging_domain.add_handler(Alert, lambda e, ctx: logged.append((e.level, ctx.origin)))
    app_alerts: list[int] = []
    app.add_handler(Alert, lambda e: app_alerts.append(e.level))
    boundary.attach(app)

    async with logging_domain:
        await app.publish(Alert(level=1))
        await app.publish(Alert(level=3))
        await app.publish(Metric(value=1.0))  # not chosen
        await trio.testing.wait_all_tasks_blocked()
    assert logged == [(3, boundary)]
    assert app_alerts == [1, 3] and boundary.forwarded == 1


async def test_boundary_forwards_a_copy_and_the_sending_peer() -> None:
    source, target = EventBus(), EventBus()
    received: list[tuple[Alert, object]] = []
    target.add_handler(Alert, lambda e, ctx: received.append((e, ctx.peer)))
    EventBoundary(target, Alert).attach(source)
    alert = Alert(level=1)
    async with target:
        await source.publish(alert, peer="peer-x")
        await trio.testing.wait_all_tasks_blocked()
    [(forwarded, peer)] = received
    assert forwarded == alert and forwarded is not alert and peer == "peer-x"


async def test_boundary_to_a_stopped_bus_is_a_reported_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, target = EventBus(), EventBus(name="target")
    EventBoundary(target).attach(source)
    await source.publish(Alert(level=1))
    assert "EventBoundary" in caplog.text and "'target' is not running" in caplog.text


async def test_boundary_lists_each_event_once_even_with_overlapping_classes() -> None:
    source, target = EventBus(), EventBus()
    got: list[int] = []
    target.add_handler(Alert, lambda e: got.append(e.level))
    boundary = EventBoundary(target, Alert, Event).attach(source)
    assert boundary.event_classes == (Event,)
    async with target:
        await source.publish(Alert(level=5))
    assert got == [5]


async def test_opposite_boundaries_do_not_loop() -> None:
    left, right = EventBus(name="left"), EventBus(name="right")
    left_seen: list[int] = []
    right_seen: list[int] = []
    left.add_handler(Alert, lambda e: left_seen.append(e.level))
    right.add_handler(Alert, lambda e: right_seen.append(e.level))
    EventBoundary(right, Alert).attach(left)
    EventBoundary(left, Alert).attach(right)
    async with left, right:
        left.emit(Alert(level=1))
        right.emit(Alert(level=2))
        await trio.testing.wait_all_tasks_blocked()
    assert sorted(left_seen) == [1, 2] and sorted(right_seen) == [1, 2]


async def test_boundary_can_be_detached() -> None:
    source, target = EventBus(), EventBus()
    got: list[int] = []
    target.add_handler(Alert, lambda e: got.append(e.level))
    boundary = EventBoundary(target, Alert).attach(source)
    boundary.detach(source)
    async with target:
        await source.publish(Alert(level=1))
    assert got == []


def test_boundary_from_the_module_level_registry() -> None:
    async def main() -> None:
        target = EventBus()
        got: list[int] = []
        target.add_handler(Alert, lambda e: got.append(e.level))
        EventBoundary(target, Alert).attach(get_registry())
        async with target:
            emit_event(Alert, level=4)  # synchronous emit into a running bus's queue
        assert got == [4]

    trio.run(main)
