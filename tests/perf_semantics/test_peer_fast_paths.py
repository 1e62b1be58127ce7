"""The peer's fast paths keep the documented rules: the cached choice of
handlers follows subscriptions as they change, links that are closing never
make a trigger raise, and the per-link watchdog ends silent links on time."""

from __future__ import annotations

import socket
import time

import trio

from net import protocol as p
from net.protocol import _messages as m
from tests.inproc import make, wait_until


async def test_handlers_added_and_removed_while_events_flow() -> None:
    async with make("pub") as pub, make("sub") as sub:
        first: list[int] = []
        second: list[int] = []

        @sub.subscribe("n")
        async def one(i: int) -> None:
            first.append(i)

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: len(pub.table.subscribers("n")) == 1)
        for i in range(100):
            await pub.trigger("n", i)
        await wait_until(lambda: len(first) == 100)

        @sub.subscribe("n")  # a second handler for the same event: the cache must see it
        def two(i: int) -> None:
            second.append(i)

        for i in range(100, 200):
            await pub.trigger("n", i)
        await wait_until(lambda: len(first) == 200 and len(second) == 100)
        assert second == list(range(100, 200))

        await sub.unsubscribe(one)  # and one fewer
        for i in range(200, 300):
            await pub.trigger("n", i)
        await wait_until(lambda: len(second) == 200)
        await trio.sleep(0.1)
        assert first == list(range(200)) and second == list(range(100, 300))


async def test_subscription_by_address_alias_is_checked_per_event() -> None:
    """A handler that names its publisher by an address this link does not carry
    ('localhost:PORT' for a link known as 127.0.0.1:PORT) matches through the
    address map, which can change: it must be asked at each event, not cached."""
    async with make("pub") as pub, make("sub") as sub:
        got: list[int] = []
        alias = f"localhost:{pub.port}"

        @sub.subscribe("n", peers=[alias])
        async def on(i: int) -> None:
            got.append(i)

        sub.want(alias)
        await wait_until(lambda: len(pub.table.subscribers("n")) == 1)
        for i in range(10):
            await pub.trigger("n", i)
        await wait_until(lambda: len(got) == 10)
        link = sub.links[pub.id]
        [(_, _, _, _, always)] = link.handler_plan("n", sub.registry.subscriptions["n"])
        if link.address != alias:
            assert always is False  # matched through the address map, asked each time


async def test_trigger_to_a_closing_link_does_not_raise() -> None:
    async with make("pub") as pub, make("sub") as sub:

        @sub.subscribe("n")
        async def on(i: int) -> None:
            pass

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: len(pub.table.subscribers("n")) == 1)
        link = pub.links[sub.id]
        link.close("shutdown")  # bye queued, link not ended yet
        assert not link.ended.is_set()
        await pub.trigger("n", 1)  # remote failures never raise into the caller
        report = await pub.trigger_with_report("n", [2], timeout=1)
        assert not report.delivered


async def test_silent_remote_is_cut_after_the_heartbeat_timeout() -> None:
    async with make("p", heartbeat_interval=0.05, heartbeat_timeout=0.4) as peer:
        fake = p.Connection(
            m.Hello(m.PROTOCOL_VERSION, "f" * 16, "mute", "default", False, "", 1, 1 << 20)
        )
        with socket.create_connection(("127.0.0.1", peer.port)) as s:
            s.sendall(fake.hello_bytes())  # then silence: no PONG, no PING, nothing
            await wait_until(lambda: fake.remote_hello is not None or len(peer.links) == 1)
            t0 = time.monotonic()
            await wait_until(lambda: len(peer.links) == 0, timeout=5)
            took = time.monotonic() - t0
        assert 0.2 < took < 1.5
        assert peer.counters["links_lost"] == 1
