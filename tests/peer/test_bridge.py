"""Typed events (net.Event) across the network: one handler serves local and remote ones."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import net
from net import protocol as p
from net.peer import Peer
from net.testing import isolated_registry
from tests.procs import APPS, base_env, processes

sys.path.insert(0, str(APPS))
from shared_events import Reading, Temperature


def make(name: str) -> Peer:
    return Peer(name, port=0, host="127.0.0.1")


async def wait_until(cond: Any, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.005)


@pytest.fixture
def registry() -> Iterator[net.EventRegistry]:
    with isolated_registry() as reg:
        yield reg


async def test_one_handler_gets_local_and_remote_events_with_the_sender(registry: net.EventRegistry) -> None:
    seen: list[tuple[str, float, str, str | None]] = []

    @net.handle_event(Reading)
    def on_reading(event: Reading, ctx: net.HandlerContext) -> None:
        seen.append((type(event).__name__, event.value, event.sensor, ctx.peer.name if ctx.peer else None))

    async with make("pub") as pub, make("sub") as sub:
        sub.subscribe_events(Reading, registry=registry)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("bus:test.reading"))
        net.emit_event(Temperature, sensor="local", value=1.0)
        await pub.publish(Temperature(sensor="net", value=2.0, unit="K"))  # a subclass reaches a base handler
        await pub.publish(Reading(sensor="net", value=3.0))
        await wait_until(lambda: len(seen) == 3)
        assert seen == [
            ("Temperature", 1.0, "local", None),
            ("Temperature", 2.0, "net", "pub"),
            ("Reading", 3.0, "net", "pub"),
        ]


async def test_subscribed_to_class_and_base_gets_each_event_once(registry: net.EventRegistry) -> None:
    got: list[str] = []
    registry.add_handler(Reading, lambda e: got.append(type(e).__name__))
    async with make("pub") as pub, make("sub") as sub:
        sub.subscribe_events(Reading, Temperature, registry=registry)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("bus:test.reading") and pub.table.subscribers("bus:test.temperature"))
        await pub.publish(Temperature(sensor="x", value=1.0))
        await pub.publish(Reading(sensor="x", value=1.0))
        await wait_until(lambda: len(got) >= 2)
        await trio.sleep(0.1)
        assert got == ["Temperature", "Reading"]


async def test_unserialisable_field_raises_at_the_sender_and_sends_nothing(registry: net.EventRegistry) -> None:
    got: list[Any] = []
    registry.add_handler(Reading, got.append)
    async with make("pub") as pub, make("sub") as sub:
        sub.subscribe_events(Reading, registry=registry)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("bus:test.reading"))
        bad = Reading(sensor="x", value=1.0)
        bad.sensor = object()  # type: ignore[assignment]
        with pytest.raises(TypeError):
            await pub.publish(bad)
        with pytest.raises(TypeError):
            await pub.publish("not an event")  # type: ignore[arg-type]
        await pub.publish(Reading(sensor="ok", value=2.0))
        await wait_until(lambda: len(got) == 1)
        assert sub.links[pub.id].rx_seq == 1


@pytest.mark.parametrize(
    "args",
    [
        ["no.such.event", {}],
        ["test.reading", {"sensor": "x"}],  # a missing field
        ["test.reading", {"sensor": "x", "value": 1.0, "extra": 1}],  # an unknown field
        ["test.reading", {"sensor": 5, "value": "hot"}],  # wrong types
        ["test.reading", "not a map"],
        ["test.reading"],
        [],
    ],
)
async def test_unknown_types_and_bad_fields_are_counted_and_harm_nothing(
    registry: net.EventRegistry, args: list[Any]
) -> None:
    got: list[Any] = []
    registry.add_handler(Reading, got.append)
    async with make("pub") as pub, make("sub") as sub:
        sub.subscribe_events(Reading, registry=registry)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("bus:test.reading"))
        hostile = p.pack(args) + p.pack({})
        await pub._enqueue_trigger("bus:test.reading", hostile, False)
        await pub.publish(Reading(sensor="after", value=1.0))
        await wait_until(lambda: len(got) == 1)
        assert got[0].sensor == "after"
        assert sub.info()["counters"]["bus_events_rejected"] == 1


async def test_events_published_by_another_process(registry: net.EventRegistry) -> None:
    got: list[tuple[str, float, str, str]] = []

    @net.handle_event(Reading)
    def on_reading(event: Reading, ctx: net.HandlerContext) -> None:
        got.append((type(event).__name__, event.value, getattr(event, "unit", "-"), ctx.peer.name if ctx.peer else "local"))

    with processes() as spawn:
        pub = spawn("bus_publisher", base_env(NET_PORT=0, NET_NAME="remote-pub"))
        port = pub.expect_key("port")["port"]
        async with make("sub") as sub:
            sub.subscribe_events(Reading, registry=registry)
            sub.want(f"127.0.0.1:{port}")
            net.emit_event(Temperature, sensor="here", value=-1.0)
            await wait_until(lambda: len(got) == 7)
    assert got[0] == ("Temperature", -1.0, "C", "local")
    assert got[1:] == [("Temperature", float(i), "K", "remote-pub") for i in range(5)] + [
        ("Reading", 99.0, "-", "remote-pub")
    ]


def test_module_level_api_is_exported() -> None:
    for name in ("Event", "emit_event", "handle_event", "publish", "subscribe_events", "EventBus"):
        assert name in net.__all__
    assert Path(net.__file__).exists()
