"""Sinks: the SQLite event log, and failures that are reported, never hidden."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import trio

from net.bus import Event, EventBus, EventSink, LoggedEvent, SQLiteEventLog


class Order(Event, name="tests.bus.Order"):
    item: str
    quantity: int
    note: bytes = b""
    sizes: tuple[int, ...] = ()


class Audit(Event, name="tests.bus.Audit"):
    who: str


def source_of_orders() -> None:
    """An origin."""


async def test_sqlite_log_stores_every_delivered_event(tmp_path: Path) -> None:
    with SQLiteEventLog(tmp_path / "events.db") as log:
        bus = EventBus()
        handled: list[str] = []
        bus.add_handler(Order, lambda e: handled.append(e.item))
        bus.add_sink(log)
        await bus.publish(
            Order(item="tea", quantity=2, note=b"\x00\xff", sizes=(1, 2)),
            origin=source_of_orders,
            peer="peer-1",
        )
        async with bus:
            bus.emit(Audit(who="ada"))
        rows = log.read()
        assert handled == ["tea"] and log.count() == 2 and log.written == 2
        first, second = rows
        assert isinstance(first, LoggedEvent)
        assert first.name == "tests.bus.Order" and first.peer == "peer-1"
        assert first.origin is not None and first.origin.endswith("source_of_orders")
        assert first.fields == {"item": "tea", "quantity": 2, "note": b"\x00\xff", "sizes": [1, 2]}
        assert first.rebuild() == Order(item="tea", quantity=2, note=b"\x00\xff", sizes=(1, 2))
        assert second.name == "tests.bus.Audit" and second.origin is None
        assert [r.name for r in log.read(name="tests.bus.Audit")] == ["tests.bus.Audit"]
        assert len(log.read(limit=1)) == 1
    assert bus.stats.sink_failures == 0


async def test_sink_sees_the_event_after_its_handlers(tmp_path: Path) -> None:
    with SQLiteEventLog(":memory:") as log:
        bus = EventBus()

        @bus.handle_event(Order)
        def double(event: Order) -> None:
            event.quantity *= 2

        bus.add_sink(log)
        await bus.publish(Order(item="x", quantity=2))
        assert log.read()[0].fields["quantity"] == 4


async def test_sink_for_chosen_classes_only() -> None:
    with SQLiteEventLog(":memory:") as log:
        bus = EventBus()
        bus.add_sink(log, Audit)
        await bus.publish(Order(item="x", quantity=1))
        await bus.publish(Audit(who="y"))
        assert [r.name for r in log.read()] == ["tests.bus.Audit"]


async def test_sqlite_failure_is_logged_counted_and_visible(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.db"
    SQLiteEventLog(path).close()  # create it
    read_only = SQLiteEventLog(f"file:{path}?mode=ro", uri=True)
    bus = EventBus()
    handled: list[str] = []
    bus.add_handler(Order, lambda e: handled.append(e.item))
    bus.add_sink(read_only)
    with caplog.at_level(logging.ERROR, logger="net.bus"):
        event = await bus.publish(Order(item="tea", quantity=1))
    assert event.item == "tea" and handled == ["tea"]  # the emitter and handlers are unaffected
    assert bus.stats.sink_failures == 1
    assert read_only.failures == 1 and isinstance(read_only.last_error, sqlite3.OperationalError)
    assert "readonly" in str(read_only.last_error)
    assert "event sink SQLiteEventLog" in caplog.text and "tests.bus.Order" in caplog.text
    assert "Traceback" in caplog.text
    read_only.close()


async def test_unstorable_fields_are_a_reported_failure(caplog: pytest.LogCaptureFixture) -> None:
    class Odd(Event, name="tests.bus.Odd"):
        thing: object

    with SQLiteEventLog(":memory:") as log:
        bus = EventBus()
        bus.add_sink(log)
        await bus.publish(Odd(thing=object()))
        await bus.publish(Odd(thing={1, 2}))  # sets become lists: storable
        assert log.failures == 1 and "cannot store object" in caplog.text
        assert bus.stats.sink_failures == 1 and log.count() == 1


async def test_a_closed_log_fails_loudly() -> None:
    log = SQLiteEventLog(":memory:")
    log.close()
    bus = EventBus()
    bus.add_sink(log)
    await bus.publish(Audit(who="x"))
    assert bus.stats.sink_failures == 1 and isinstance(log.last_error, sqlite3.ProgrammingError)


def test_a_bad_path_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        SQLiteEventLog(tmp_path / "no" / "such" / "dir" / "events.db")


async def test_a_custom_sink_failing_does_not_stop_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(EventSink):
        async def write(self, event: Event, *, origin: object = None, peer: object = None) -> None:
            raise ConnectionError("queue server down")

    class Memory(EventSink):
        def __init__(self) -> None:
            self.events: list[Event] = []

        async def write(self, event: Event, *, origin: object = None, peer: object = None) -> None:
            await trio.sleep(0)
            self.events.append(event)

    memory = Memory()
    bus = EventBus()
    bus.add_sink(Broken())
    bus.add_sink(memory)
    await bus.publish(Audit(who="a"))
    assert [type(e) for e in memory.events] == [Audit]
    assert "queue server down" in caplog.text and bus.stats.sink_failures == 1
    bus.remove_sink(memory)
    await bus.publish(Audit(who="b"))
    assert len(memory.events) == 1


def test_sink_must_have_write() -> None:
    with pytest.raises(TypeError, match="write"):
        EventBus().add_sink(object())  # type: ignore[arg-type]


def test_logged_event_of_an_unknown_class() -> None:
    row = LoggedEvent(1, 0.0, "nobody.knows", None, None, {})
    with pytest.raises(LookupError, match=r"nobody\.knows"):
        row.rebuild()
