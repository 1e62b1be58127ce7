"""The examples of seed 003 (publish, emit, sink; handlers with a context), ported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio
import trio.testing

from net.bus import Event, EventBus, HandlerContext, SQLiteEventLog


class TodoCreated(Event, name="tests.bus.seed003.TodoCreated"):
    name: str
    content: str
    created_at: float = 0.0


class TodoExpired(Event, name="tests.bus.seed003.TodoExpired"):
    name: str
    content: str
    created_at: float = 0.0

    @classmethod
    def from_event(cls, created: TodoCreated) -> TodoExpired:
        return cls(**created.to_fields())


async def test_publish_to_listeners_registered_on_a_bus() -> None:
    calls: list[str] = []

    async def listen_create(created: TodoCreated, ctx: HandlerContext) -> None:
        assert created.name
        assert created.content
        calls.append("listen_create")

    async def listen_twice(created: TodoCreated, ctx: HandlerContext) -> None:
        assert created.name
        assert created.content
        calls.append("listen_twice")

    bus = EventBus()
    for listener in (listen_create, listen_twice):  # registry.register(listen_create, listen_twice)
        bus.add_handler(TodoCreated, listener)

    async def create_todo(name: str, content: str) -> None:  # the route handler
        await bus.publish(TodoCreated(name=name, content=content))

    await create_todo("groceries", "milk")
    assert calls == ["listen_create", "listen_twice"]  # in sequence, in the caller's task


async def test_handler_of_a_parent_event_gets_its_sub_events() -> None:
    class UserEvent(Event, name="tests.bus.seed003.UserEvent"):
        user_id: int

    class UserCreated(UserEvent, name="tests.bus.seed003.UserCreated"):
        pass

    class UserDeleted(UserEvent, name="tests.bus.seed003.UserDeleted"):
        pass

    bus = EventBus()
    seen: list[str] = []

    async def listen_user(event: UserEvent, ctx: HandlerContext) -> None:
        seen.append(f"{type(event).__name__}:{event.user_id}")

    bus.add_handler(UserEvent, listen_user)
    await bus.publish(UserCreated(user_id=1))
    async with bus:
        bus.emit(UserDeleted(user_id=1))
    assert seen == ["UserCreated:1", "UserDeleted:1"]


async def test_publish_during_event_handling() -> None:
    def is_expired(created_at: float) -> bool:
        return datetime.now(UTC).timestamp() - created_at > timedelta(days=1).total_seconds()

    bus = EventBus()
    expired: list[str] = []

    async def listen_create(created: TodoCreated, ctx: HandlerContext) -> None:
        if is_expired(created.created_at):
            event = TodoExpired.from_event(created)
            await ctx.publish(event)

    bus.add_handler(TodoCreated, listen_create)
    bus.add_handler(TodoExpired, lambda event: expired.append(event.name))
    now = datetime.now(UTC).timestamp()
    await bus.publish(TodoCreated(name="old", content="x", created_at=now - 3 * 86400))
    await bus.publish(TodoCreated(name="fresh", content="y", created_at=now))
    assert expired == ["old"]


async def test_three_primitives_publish_emit_sink() -> None:
    """publish: awaited, same scope; emit: own task, returns at once; sink: persistence."""
    bus = EventBus()
    tasks: list[Any] = []
    bus.add_handler(TodoCreated, lambda event: tasks.append(trio.lowlevel.current_task()))
    with SQLiteEventLog(":memory:") as sink:
        bus.add_sink(sink)
        async with bus:
            await bus.publish(TodoCreated(name="published", content="a"))
            assert tasks == [trio.lowlevel.current_task()]  # done when publish returns
            bus.emit(TodoCreated(name="emitted", content="b"))
            assert len(tasks) == 1  # emit returned before handling
            await trio.testing.wait_all_tasks_blocked()
            assert len(tasks) == 2 and tasks[1] is not trio.lowlevel.current_task()
        assert [row.fields["name"] for row in sink.read()] == ["published", "emitted"]
