"""A request polls for its reply for a moment (NET_CALL_SPIN) before sleeping,
and only while its link's replies keep arriving within that bound: the poll
changes how soon a reply is seen, never what is answered, when a call times
out, or whether it can be cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import trio

import net
from net import protocol as p
from net.peer._reply_poll import ReplyPoll
from net.protocol import _messages as m
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


async def test_a_server_polls_for_the_next_call_of_a_busy_caller_only() -> None:
    async with make("srv") as srv, make("cli") as cli:

        @srv.connect("echo")
        async def echo(x: object) -> object:
            return x

        @srv.connect("plain_echo")
        def plain_echo(x: object) -> object:
            return x

        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "echo", 0) == 0
        [link] = srv.links.values()
        for i in range(50):  # call after call: the server polls for the next one
            assert await cli.call(address, "echo", [i, "x" * i]) == [i, "x" * i]
        stats = link.stats()
        assert stats["next_call_polls"] >= 40
        assert stats["next_call_polls_answered"] >= 1

        polls = link.next_call_poll.polls
        for i in range(20):  # a caller that pauses 5 ms between calls: it stops polling
            assert await cli.call(address, "echo", i) == i
            await trio.sleep(0.005)
        assert link.next_call_poll.polls - polls <= 10
        assert not link.next_call_poll.budget()

        polls = link.next_call_poll.polls
        for i in range(20):  # plain functions are answered by a worker thread: no poll
            assert await cli.call(address, "plain_echo", i) == i
        assert link.next_call_poll.polls == polls


@pytest.mark.parametrize(
    ("tail", "ends"),
    [
        (b"", "closed by peer"),  # the end of the stream
        (b"\x00\x00\x00\x03\xc1\xc1\xc1", ""),  # an unparseable frame: an error comes back
    ],
)
async def test_what_arrives_while_the_server_polls_is_read_like_anything_else(
    tail: bytes, ends: str
) -> None:
    """A call, then garbage or the end of the stream, right behind an answered call."""
    async with make("srv") as srv:

        @srv.connect("echo")
        async def echo(x: object) -> object:
            return x

        assert srv.port is not None
        hello = m.Hello(
            m.PROTOCOL_VERSION, "e" * 16, "raw", srv.settings.group, False, "", 1, 1 << 20
        )
        conn = p.Connection(hello)
        stream = await trio.open_tcp_stream("127.0.0.1", srv.port)
        received: list[m.Message | p.Violation] = []

        async def read_until(cond: Callable[[], bool]) -> None:
            with trio.fail_after(5):
                while not cond():
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    received.extend(conn.receive_data(data))

        def results() -> list[object]:
            return [x.value for x in received if isinstance(x, m.Result)]

        try:
            await stream.send_all(conn.hello_bytes())
            await read_until(lambda: conn.state == p.OPEN)
            await wait_until(lambda: "e" * 16 in srv.links)
            link = srv.links["e" * 16]
            await stream.send_all(conn.send(m.Call(1, "echo", [1], {})))
            await read_until(lambda: results() == [1])
            # the server polls for a next call now: send one, then the tail
            await stream.send_all(conn.send(m.Call(2, "echo", [2], {})) + tail)
            if not tail:
                await stream.send_eof()
            await read_until(lambda: results() == [1, 2] and (not tail or _has_error(received)))
            assert results() == [1, 2]
            assert link.next_call_poll.answered >= 1  # call 2 (and the tail) came while polling
            if ends:
                await wait_until(lambda: link.ended.is_set())
                assert ends in link.end_reason
            else:
                assert _has_error(received)
        finally:
            await stream.aclose()
        await wait_until(lambda: "e" * 16 not in srv.links)


def _has_error(received: list[m.Message | p.Violation]) -> bool:
    return any(isinstance(x, m.Error) for x in received)
