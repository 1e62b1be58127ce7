"""Async connections are served from the link's reader task (no task per call):
one that waits hands the reading to a new task, so the link keeps serving calls,
events and heartbeats while it waits, and calls still run concurrently. The
link's watchdog keeps call deadlines (no cancel scope per call)."""

from __future__ import annotations

import time

import pytest
import trio

import net
from tests.inproc import make, wait_until


async def test_waiting_connections_overlap_and_the_link_keeps_serving() -> None:
    async with make("srv") as srv, make("cli") as cli:
        release = trio.Event()
        started = 0

        @srv.connect("slow")
        async def slow(i: int) -> int:
            nonlocal started
            started += 1
            await release.wait()
            return i * 10

        @srv.connect("quick")
        async def quick(i: int) -> int:
            return i + 1

        @srv.connect("fails_later")
        async def fails_later() -> None:
            await trio.sleep(0.01)
            raise ValueError("late failure")

        address = f"127.0.0.1:{srv.port}"
        results: dict[int, int] = {}

        async def call_slow(i: int) -> None:
            results[i] = await cli.call(address, "slow", i)

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(call_slow, i)
            # all five wait at once: each handed the reading on, and quick calls
            # are still answered at once while they wait
            await wait_until(lambda: started == 5)
            for i in range(50):
                assert await cli.call(address, "quick", i) == i + 1
            with pytest.raises(net.RemoteError, match="late failure"):
                await cli.call(address, "fails_later")
            [link] = srv.links.values()
            assert link.reader_handovers >= 6
            release.set()
        assert results == {i: i * 10 for i in range(5)}
        assert srv.info()["counters"].get("protocol_errors", 0) == 0


async def test_events_arrive_in_order_around_a_waiting_connection() -> None:
    async with make("pub") as pub, make("sub") as sub:
        got: list[int] = []
        gate = trio.Event()

        @sub.subscribe("n")
        async def on_n(i: int) -> None:
            got.append(i)

        @sub.connect("wait_for_gate")
        async def wait_for_gate() -> str:
            await gate.wait()
            return "open"

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("n"))
        answer: list[str] = []

        async def caller() -> None:
            answer.append(await pub.call(f"127.0.0.1:{sub.port}", "wait_for_gate"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            for i in range(3000):
                await pub.trigger("n", i)
            await wait_until(lambda: len(got) == 3000)
            gate.set()
        assert got == list(range(3000)) and answer == ["open"]


async def test_a_waiting_connection_is_cancelled_when_its_link_ends() -> None:
    cancelled = trio.Event()
    async with make("srv") as srv:

        @srv.connect("forever")
        async def forever() -> None:
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()

        async with make("cli") as cli:
            address = f"127.0.0.1:{srv.port}"
            with trio.move_on_after(0.2):
                await cli.call(address, "forever")
        with trio.fail_after(5):
            await cancelled.wait()


async def test_call_timeouts_on_a_live_link_are_kept_by_the_watchdog() -> None:
    async with make("srv") as srv, make("cli") as cli:

        @srv.connect("stall")
        async def stall(seconds: float) -> str:
            await trio.sleep(seconds)
            return "late"

        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "stall", 0) == "late"  # linked now
        for timeout in (0.3, 0.05):
            t0 = time.monotonic()
            with pytest.raises(net.CallTimeout, match="did not answer within"):
                await cli.call(address, "stall", 5, timeout=timeout)
            took = time.monotonic() - t0
            assert timeout <= took < timeout + 0.5, took
        # a long deadline first, then a short one: the short one still fires on time
        [link] = cli.links.values()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: cli.call(address, "stall", 0.4, timeout=30))
            await wait_until(lambda: len(link._deadlines) == 1)
            t0 = time.monotonic()
            with pytest.raises(net.CallTimeout):
                await cli.call(address, "stall", 5, timeout=0.1)
            assert time.monotonic() - t0 < 0.6
        assert not link._deadlines and not link._pending
        assert await cli.call(address, "stall", 0, timeout=float("inf")) == "late"


async def test_a_context_variable_set_by_a_connection_stays_in_that_call() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    async with make("srv") as srv, make("cli") as cli:

        @srv.connect("set_and_read")
        async def set_and_read(value: str, wait: bool) -> str:
            before = var.get()
            var.set(value)
            if wait:
                await trio.sleep(0.01)  # the rest runs in the same context
            assert var.get() == value
            return before

        @srv.connect("plain_set_and_read")
        def plain_set_and_read(value: str) -> str:
            before = var.get()
            var.set(value)
            return before

        address = f"127.0.0.1:{srv.port}"
        for i, wait in enumerate([False, True, False, True]):
            assert await cli.call(address, "set_and_read", f"v{i}", wait) == "unset"
        for i in range(3):
            assert await cli.call(address, "plain_set_and_read", f"p{i}") == "unset"
