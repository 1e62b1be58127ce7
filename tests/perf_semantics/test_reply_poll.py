"""A request polls for its reply for a moment (NET_CALL_SPIN) before sleeping,
and only while its link's replies keep arriving within that bound: the poll
changes how soon a reply is seen, never what is answered, when a call times
out, or whether it can be cancelled."""

from __future__ import annotations

import threading
import time

import pytest
import trio

import net
from net.peer._reply_poll import ReplyPoll
from tests.inproc import make, wait_for, wait_until


def test_polling_stops_once_replies_come_late_and_resumes_when_they_are_quick() -> None:
    poll = ReplyPoll(0.0005)
    assert poll.budget() == 0.0005
    for _ in range(5):
        poll.record(0.0001)
    late = 0
    while poll.budget():
        poll.record(0.005)
        late += 1
    assert 4 <= late <= 8  # a few late replies in a row switch it off...
    poll.record(0.0001)
    assert not poll.budget()  # ... and one quick one does not switch it back on
    quick = 0
    while not poll.budget():
        poll.record(0.0001)
        quick += 1
    assert 4 <= quick <= 8
    assert not ReplyPoll(0.0).budget()  # NET_CALL_SPIN=0: never


async def test_async_calls_poll_while_replies_are_quick_and_stop_when_they_are_slow() -> None:
    async with make("srv") as srv, make("cli") as cli:

        @srv.connect("echo")
        async def echo(x: object) -> object:
            return x

        @srv.connect("slow")
        async def slow(x: int) -> int:
            await trio.sleep(0.01)  # 20x the poll's bound
            return -x

        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "echo", 0) == 0  # linked now
        [link] = cli.links.values()
        before = link.reply_poll.polls
        for i in range(50):
            assert await cli.call(address, "echo", {"i": i}) == {"i": i}
        stats = link.stats()
        assert stats["reply_polls"] - before == 50
        assert stats["reply_polls_answered"] >= 1  # loopback answers well within 0.5 ms

        for i in range(20):
            assert await cli.call(address, "slow", i) == -i
        polls = link.reply_poll.polls
        assert polls - before - 50 <= 10  # it stopped polling after a few late replies
        assert not link.reply_poll.budget()


async def test_polling_is_off_with_zero_and_timeouts_and_cancellation_still_work() -> None:
    async with make("srv") as srv, make("cli", call_spin=0.0) as cli, make("cli2") as cli2:
        cancelled = trio.Event()

        @srv.connect("stall")
        async def stall(seconds: float) -> str:
            try:
                await trio.sleep(seconds)
            except trio.Cancelled:
                cancelled.set()
                raise
            return "late"

        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "stall", 0) == "late"
        [link] = cli.links.values()
        assert link.reply_poll.polls == 0 and not link.reply_poll.budget()

        # polling on (cli2): a timeout shorter than the poll's bound still fires
        assert await cli2.call(address, "stall", 0) == "late"
        [link2] = cli2.links.values()
        assert link2.reply_poll.budget() == 0.0005
        t0 = time.monotonic()
        with pytest.raises(net.CallTimeout):
            await cli2.call(address, "stall", 5, timeout=0.0001)
        assert time.monotonic() - t0 < 1.0
        # a caller cancelled while it polls goes at once, and forgets its request
        with trio.CancelScope() as scope:
            scope.deadline = trio.current_time() + 0.0002
            await cli2.call(address, "stall", 5)
        assert scope.cancelled_caught
        await wait_until(lambda: not link2._pending and not link2._deadlines)
        assert await cli2.call(address, "stall", 0) == "late"


def test_call_sync_keeps_the_loop_polling_for_its_reply() -> None:
    server = make("srv")

    @server.connect()
    def double(x: int) -> int:
        return 2 * x

    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address])
        client.start()
        try:
            wait_for(lambda: client.links)
            [link] = client.links.values()
            results: list[int] = []

            def calls(offset: int) -> None:
                for i in range(30):
                    results.append(client.call_sync(address, "double", offset + i))

            threads = [threading.Thread(target=calls, args=(k * 100,)) for k in range(3)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(20)
            assert sorted(results) == sorted(2 * (k * 100 + i) for k in range(3) for i in range(30))
            wait_for(lambda: link.reply_poll.polls >= 1)
            assert link.stats()["reply_polls"] <= 90
            wait_for(lambda: not link._pending)
        finally:
            client.stop()
    finally:
        server.stop()
