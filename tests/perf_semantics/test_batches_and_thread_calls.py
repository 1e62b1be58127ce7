"""Batched events and thread calls keep the documented rules, with real peers on
127.0.0.1 in one process.

Runs of unacknowledged events travel as EVENTS frames (at most BATCH_EVENTS
events and about BATCH_BYTES of them): every event arrives, in trigger order,
whatever the names, run lengths, payload sizes, handler kinds and handler
failures, mixed with acknowledged TRIGGERs. ``call_sync`` on a live link is
written and answered in the calling thread; plain ``@connect`` functions answer
from their worker thread; every error and timeout is bounded.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

import net
from net import protocol as p
from net.peer import Peer
from net.peer._link import BATCH_BYTES, BATCH_EVENTS, Link
from net.protocol import _messages as m
from tests.inproc import make, wait_for, wait_until


def assert_clean(counters: dict[str, int], *keys: str) -> None:
    for key in keys or ("events_missed", "events_out_of_order", "protocol_errors"):
        assert counters.get(key, 0) == 0, (key, counters)


class BatchSpy:
    """Records every EVENTS frame a peer delivers: (event, seq, entries, entry bytes)."""

    def __init__(self, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[tuple[str, int, int, int]] = []
        self.triggers: list[tuple[str, int, int]] = []  # event, seq, request id
        deliver_events = peer._deliver_events
        deliver = peer._deliver

        async def spy_events(link: Any, msg: m.Events) -> None:
            size = sum(len(p.pack_event_args(args, kwargs)) + 1 for args, kwargs in msg.entries)
            self.batches.append((msg.event, msg.seq, len(msg.entries), size))
            await deliver_events(link, msg)

        async def spy_trigger(link: Any, msg: m.Trigger) -> None:
            self.triggers.append((msg.event, msg.seq, msg.request_id))
            await deliver(link, msg)

        # Link._handle looks these up on the peer at every read
        monkeypatch.setattr(peer, "_deliver_events", spy_events)
        monkeypatch.setattr(peer, "_deliver", spy_trigger)

    def check_sequence(self, total: int) -> None:
        """Frames (EVENTS and TRIGGER) number the events 1..total without gap or overlap."""
        spans = [(seq, n) for _, seq, n, _ in self.batches] + [(s, 1) for _, s, _ in self.triggers]
        covered: list[int] = []
        for seq, n in sorted(spans):
            covered.extend(range(seq, seq + n))
        assert covered == list(range(1, total + 1))

    def check_limits(self) -> None:
        for event, _, n, size in self.batches:
            assert 1 <= n <= BATCH_EVENTS, (event, n)
            if n > 1:  # a single event may be bigger than a batch; a run never is
                assert size <= BATCH_BYTES, (event, n, size)


def traffic_plan(seed: int = 1) -> list[tuple[str, int]]:
    """(event name, pad size) to trigger in order: short interleavings, runs longer
    than a batch, and payloads that fill a batch's bytes before its count."""
    rng = random.Random(seed)
    plan: list[tuple[str, int]] = [(n, 0) for n in "aababb"]
    plan += [(rng.choice("ab"), 0) for _ in range(1500)]
    plan += [("a", 0)] * 300 + [("b", 0)] * 300 + [("a", 0)] * 129
    plan += [("a", 1000)] * 150  # ~32 per batch by bytes
    plan += [("b", 40_000)] * 6  # each alone: bigger than BATCH_BYTES
    plan += [(rng.choice("ab"), rng.choice((0, 0, 500, 5000, 20_000))) for _ in range(300)]
    plan += [("b", 20_000), ("b", 20_000), ("a", 0), ("b", 0)] * 5
    return plan


async def trigger_plan(pub: Peer, plan: list[tuple[str, int]]) -> list[tuple[str, int]]:
    counts = {"a": 0, "b": 0}
    expected: list[tuple[str, int]] = []
    for name, pad in plan:
        i = counts[name]
        counts[name] += 1
        expected.append((name, i))
        if pad:
            await pub.trigger(name, i, pad=b"x" * pad)
        else:
            await pub.trigger(name, i)
    return expected


def per_name(log: list[tuple[str, int]], name: str) -> list[int]:
    return [i for n, i in log if n == name]


# --- batches: order, completeness, limits ----------------------------------------------


@pytest.mark.parametrize("kinds", ["async", "sync", "a_async_b_sync"])
async def test_interleaved_names_long_runs_and_big_payloads_arrive_in_order(
    kinds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make("pub") as pub, make("sub") as sub:
        log: list[tuple[str, int]] = []
        pads: list[int] = []

        def record(name: str, i: int, pad: bytes) -> None:
            log.append((name, i))
            pads.append(len(pad))

        for name in ("a", "b"):
            if kinds == "async" or (kinds == "a_async_b_sync" and name == "a"):

                async def on_async(i: int, pad: bytes = b"", _n: str = name) -> None:
                    record(_n, i, pad)

                sub.subscribe(name)(on_async)
            else:

                def on_sync(i: int, pad: bytes = b"", _n: str = name) -> None:
                    record(_n, i, pad)

                sub.subscribe(name)(on_sync)

        spy = BatchSpy(sub, monkeypatch)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("a") and pub.table.subscribers("b"))
        plan = traffic_plan()
        expected = await trigger_plan(pub, plan)
        await wait_until(lambda: len(log) == len(expected), timeout=15)

        if kinds == "a_async_b_sync":  # one handler thread, one loop: order per name only
            for name in "ab":
                assert per_name(log, name) == per_name(expected, name)
        else:  # one path for every event: trigger order exactly
            assert log == expected
        assert sorted(pads) == sorted(pad for _, pad in plan)

        spy.check_sequence(len(expected))
        spy.check_limits()
        assert not spy.triggers  # unacknowledged events only travel as EVENTS
        sizes = [n for _, _, n, _ in spy.batches]
        assert max(sizes) == BATCH_EVENTS  # the runs longer than a batch were split
        assert any(n == 1 and size > BATCH_BYTES for _, _, n, size in spy.batches)
        assert sizes.count(BATCH_EVENTS) >= 4  # the runs of 300 and 129 travelled together

        link = sub.links[pub.id]
        assert link.events_received == link.rx_seq == len(expected)
        assert pub.links[sub.id].events_sent == len(expected)
        assert pub.links[sub.id].events_dropped == 0
        assert_clean(sub.info()["counters"])
        assert_clean(pub.info()["counters"], "protocol_errors", "events_dropped")
        assert sub.info()["counters"].get("handler_errors", 0) == 0


async def test_sync_and_async_handlers_of_one_event_both_see_every_event_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with make("pub") as pub, make("sub") as sub:
        got: dict[str, list[int]] = {"a-sync": [], "a-async": [], "b-sync": [], "b-async": []}
        senders: set[str] = set()

        @sub.subscribe("a")
        def a_sync(i: int, pad: bytes = b"") -> None:
            got["a-sync"].append(i)

        @sub.subscribe("a")
        async def a_async(i: int, pad: bytes = b"") -> None:
            got["a-async"].append(i)

        @sub.subscribe("b")
        def b_sync(i: int, pad: bytes = b"") -> None:
            got["b-sync"].append(i)

        @sub.subscribe("b")  # and one that wants the sender
        async def b_async(i: int, pad: bytes = b"", *, sender: net.PeerInfo) -> None:
            got["b-async"].append(i)
            senders.add(sender.name)

        spy = BatchSpy(sub, monkeypatch)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("a") and pub.table.subscribers("b"))
        expected = await trigger_plan(pub, traffic_plan(seed=2))
        total = len(expected)
        await wait_until(lambda: sum(len(v) for v in got.values()) == 2 * total, timeout=15)

        for name in "ab":
            want = per_name(expected, name)
            assert got[f"{name}-sync"] == want
            assert got[f"{name}-async"] == want
        assert senders == {"pub"}
        spy.check_sequence(total)
        spy.check_limits()
        assert max(n for _, _, n, _ in spy.batches) == BATCH_EVENTS
        assert_clean(sub.info()["counters"])
        assert sub.info()["counters"].get("handler_errors", 0) == 0


async def test_a_handler_raising_on_some_entries_does_not_lose_the_rest_of_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(i: int) -> bool:
        return i % 10 == 3

    async with make("pub") as pub, make("sub") as sub:
        got: dict[str, list[int]] = {"a": [], "b": [], "c-sync": [], "c-async": []}

        @sub.subscribe("a")  # one async handler: awaited entry by entry
        async def on_a(i: int) -> None:
            if fails(i):
                raise ValueError(f"a fails on {i}")
            got["a"].append(i)

        @sub.subscribe("b")  # one plain handler: the batch goes to the thread at once
        def on_b(i: int) -> None:
            if fails(i):
                raise ValueError(f"b fails on {i}")
            got["b"].append(i)

        @sub.subscribe("c")  # two handlers: each entry to each
        def on_c_sync(i: int) -> None:
            if fails(i):
                raise ValueError(f"c-sync fails on {i}")
            got["c-sync"].append(i)

        @sub.subscribe("c")
        async def on_c_async(i: int) -> None:
            if i % 10 == 7:
                raise ValueError(f"c-async fails on {i}")
            got["c-async"].append(i)

        spy = BatchSpy(sub, monkeypatch)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: all(pub.table.subscribers(e) for e in "abc"))
        n = 400
        for block in range(0, n, 50):  # runs of 50 of each name, interleaved
            for name in "abc":
                for i in range(block, block + 50):
                    await pub.trigger(name, i)
        good = [i for i in range(n) if not fails(i)]
        failures = n - len(good)
        await wait_until(
            lambda: (
                len(got["a"]) == len(got["b"]) == len(got["c-sync"]) == len(good)
                and len(got["c-async"]) == n - n // 10
                and sub._handlers.failures == 2 * failures
            ),
            timeout=10,
        )
        assert got["a"] == got["b"] == got["c-sync"] == good
        assert got["c-async"] == [i for i in range(n) if i % 10 != 7]
        # handler_errors counts every failure: async handlers' (on the loop) and
        # plain handlers' (in the handler thread, HandlerThread.failures)
        counters = sub.info()["counters"]
        assert sub._handlers.failures == 2 * failures
        assert counters["handler_errors"] == (failures + n // 10) + 2 * failures
        assert_clean(counters)
        # the failing entries were in the middle of batches, not alone
        assert all(size == 50 for _, _, size, _ in spy.batches)
        spy.check_sequence(3 * n)


async def test_acknowledged_triggers_mixed_with_plain_ones_keep_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with make("pub") as pub, make("sub") as sub:
        log: list[tuple[str, int]] = []
        sync_log: list[tuple[str, int]] = []

        @sub.subscribe("a")
        async def on_a(i: int) -> None:
            log.append(("a", i))

        @sub.subscribe("b")
        async def on_b(i: int) -> None:
            log.append(("b", i))

        @sub.subscribe("b")
        def on_b_sync(i: int) -> None:
            sync_log.append(("b", i))

        spy = BatchSpy(sub, monkeypatch)
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("a") and pub.table.subscribers("b"))
        expected: list[tuple[str, int]] = []
        acked = 0
        for i in range(1500):
            name = "a" if (i // 7) % 3 else "b"
            expected.append((name, i))
            if i % 37 == 5 or 700 <= i < 703:
                report = await pub.trigger_with_report(name, [i], timeout=5)
                assert [x.name for x in report.delivered] == ["sub"] and report.ok
                acked += 1
            else:
                await pub.trigger(name, i)
        await wait_until(
            lambda: len(log) == len(expected) and len(sync_log) == len(per_name(expected, "b")),
            timeout=10,
        )
        assert log == expected
        assert sync_log == [x for x in expected if x[0] == "b"]
        assert len(spy.triggers) == acked and all(rid for _, _, rid in spy.triggers)
        assert any(n > 1 for _, _, n, _ in spy.batches)
        spy.check_sequence(len(expected))
        spy.check_limits()
        assert_clean(sub.info()["counters"])
        assert_clean(pub.info()["counters"], "protocol_errors", "events_dropped")


async def test_hostile_events_frame_from_a_raw_socket_is_rejected_whole_and_seq_shows_gap() -> None:
    """docs/protocol.md: a malformed entry rejects the whole frame (bad_message, not
    fatal); the next frame's seq shows the gap."""
    async with make("sub") as sub:
        got: list[int] = []

        @sub.subscribe("n")
        async def on(i: int) -> None:
            got.append(i)

        hello = m.Hello(
            m.PROTOCOL_VERSION, "f" * 16, "raw", sub.settings.group, False, "", 1, 1 << 20
        )
        conn = p.Connection(hello)
        assert sub.port is not None
        stream = await trio.open_tcp_stream("127.0.0.1", sub.port)
        received: list[m.Message | p.Violation] = []

        async def read_until(cond: Callable[[], bool]) -> None:
            with trio.fail_after(5):
                while not cond():
                    data = await stream.receive_some(65536)
                    assert data, "the peer closed the connection"
                    received.extend(conn.receive_data(data))

        def errors() -> list[m.Error]:
            return [x for x in received if isinstance(x, m.Error)]

        def entries(*values: int) -> list[bytes]:
            return [p.pack_event_args((v,), {}) for v in values]

        try:
            await stream.send_all(conn.hello_bytes())
            await read_until(lambda: conn.state == p.OPEN)
            await wait_until(lambda: "f" * 16 in sub.links)
            bad = p.frame(
                p.pack([m.EVENTS, "n", 4, [[[4], {}], [[5], {1: "not a str key"}], [[6], {}]]])
            )
            await stream.send_all(
                conn.events_bytes("n", 1, entries(1, 2, 3))
                + bad
                + conn.events_bytes("n", 7, entries(7, 8))
                + conn.events_bytes("n", 5, entries(5))  # late: out of order, still handled
                + conn.events_bytes("nobody", 9, entries(9))
            )
            await read_until(lambda: bool(errors()))
            await wait_until(lambda: len(got) == 6)
            assert got == [1, 2, 3, 7, 8, 5]  # nothing of the rejected frame
            [err] = errors()
            assert err.request_id == 0 and err.code == m.E_BAD_MESSAGE
            assert "kwargs" in err.message
            counters = sub.info()["counters"]
            assert counters["protocol_errors"] == 1
            assert counters["events_missed"] == 3
            assert counters["events_out_of_order"] == 1
            assert counters["events_unwanted"] == 1
            link = sub.links["f" * 16]  # not fatal: still linked
            assert link.events_received == 7 and link.rx_seq == 9
        finally:
            await stream.aclose()


# --- thread calls ----------------------------------------------------------------------


def test_call_sync_from_many_threads_while_events_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    # which threads wrote frames themselves (callers their CALLs, workers their replies)
    direct: dict[str, list[bool]] = {}
    write_direct = Link.write_direct

    def spy_write_direct(self: Link, data: bytes, *, from_loop: bool = False) -> bool:
        written = write_direct(self, data, from_loop=from_loop)
        name = threading.current_thread().name.split("-")[0]
        direct.setdefault(name, []).append(written)
        return written

    monkeypatch.setattr(Link, "write_direct", spy_write_direct)
    server = make("srv")
    worker_threads: set[int] = set()
    n_events = 5000
    n_threads, n_calls = 6, 100

    @server.connect()
    def square(i: int, *, plus: int = 0) -> int:
        worker_threads.add(threading.get_ident())
        return i * i + plus

    @server.connect()
    async def negate(i: int) -> int:
        await trio.lowlevel.checkpoint()
        return -i

    @server.event("tick")
    def tick(i: int) -> tuple[tuple[int], dict[str, Any]]:
        return (i,), {"blob": b"e" * (i % 300)}

    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address])
        got: list[int] = []
        all_in = threading.Event()

        @client.subscribe("tick")
        def on_tick(i: int, blob: bytes) -> None:
            assert len(blob) == i % 300
            got.append(i)
            if len(got) == n_events:
                all_in.set()

        client.start()
        try:
            wait_for(lambda: server.table.subscribers("tick") and client.links)
            start = threading.Barrier(n_threads + 1)
            errors: list[str] = []

            def caller(t: int) -> None:
                start.wait(10)
                for i in range(n_calls):
                    try:
                        if i % 3 == 0:
                            want: object = i * i + t
                            result = client.call_sync(address, "square", i, plus=t, timeout=10)
                        elif i % 3 == 1:
                            want = -i
                            result = client.call_sync(address, "negate", i, timeout=10)
                        else:
                            want = [t, i, b"r" * i]
                            result = client.call_sync(address, "pass_through", want, timeout=10)
                    except Exception as exc:  # recorded, asserted below
                        errors.append(f"thread {t} call {i}: {exc!r}")
                        continue
                    if result != want:
                        errors.append(f"thread {t} call {i}: {result!r} != {want!r}")

            def streamer() -> None:
                start.wait(10)
                for i in range(n_events):
                    tick(i)

            threads = [
                threading.Thread(target=caller, args=(t,), name=f"caller-{t}")
                for t in range(n_threads)
            ]
            threads.append(threading.Thread(target=streamer, name="streamer"))
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert not any(th.is_alive() for th in threads)
            assert errors == []
            assert all_in.wait(20), f"only {len(got)} of {n_events} events arrived"
            assert got == list(range(n_events))

            cc = client.info_sync()["counters"]
            sc = server.info_sync()["counters"]
            assert_clean(cc)
            assert_clean(sc, "protocol_errors", "events_dropped", "calls_failed")
            assert sc["calls_served"] >= n_threads * n_calls
            # plain connections ran in worker threads, never on the loop
            assert worker_threads and server._loop_thread not in worker_threads
            assert len(client.links) == 1
            # the new paths were taken: callers wrote CALLs and workers wrote replies
            # themselves (some fall back to the loop when the writer is busy)
            assert sum(direct.get("caller", [])) > 0, {k: sum(v) for k, v in direct.items()}
            assert sum(direct.get("net", [])) > 0, {k: sum(v) for k, v in direct.items()}
            assert len(direct["caller"]) == n_threads * n_calls  # one try per call_sync
        finally:
            client.stop()
    finally:
        server.stop()


def test_call_sync_errors_timeouts_and_a_stopped_server() -> None:
    server = make("srv")
    release = threading.Event()
    holding = threading.Event()

    @server.connect()
    def fails(x: int) -> int:
        raise ValueError(f"bad value {x}")

    @server.connect()
    async def fails_async(x: int) -> int:
        raise KeyError(f"missing {x}")

    @server.connect()
    def unserialisable() -> object:
        return object()

    @server.connect()
    async def unserialisable_async() -> object:
        return object()

    @server.connect()
    def too_big() -> bytes:
        return b"x" * 100_000  # over the client's max_frame

    @server.connect()
    def odd_flag() -> net.Flag:
        return net.Flag("ODD", {"x": 1})

    @server.connect()
    def busy() -> net.Flag:
        return net.Flag("BUSY", {"retry": 3})

    @server.connect()
    def blocks() -> str:
        holding.set()
        release.wait(10)
        return "late"

    server.start()
    stopped = False
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address], max_frame=64 * 1024)

        @client.flag("BUSY")
        def on_busy(connection: str, peer: net.PeerInfo) -> str:
            return f"busy:{connection}:{peer.name}:{threading.get_ident()}"

        client.start()
        try:
            wait_for(lambda: client.links)
            assert client.call_sync(address, "pass_through", 1) == 1

            with pytest.raises(net.RemoteError) as remote:
                client.call_sync(address, "fails", 7)
            assert remote.value.type_name == "ValueError"
            assert remote.value.remote_message == "bad value 7"
            assert "ValueError" in remote.value.remote_traceback
            assert "srv" in remote.value.peer

            with pytest.raises(net.RemoteError) as remote:
                client.call_sync(address, "fails_async", 8)
            assert remote.value.type_name == "KeyError"
            assert "missing 8" in remote.value.remote_message

            with pytest.raises(net.UnknownConnection) as unknown:  # the built-in flag handler
                client.call_sync(address, "no_such_function")
            assert "fails" in unknown.value.offered

            with pytest.raises(net.RequestRejected) as rejected:  # a flag nobody handles
                client.call_sync(address, "odd_flag")
            assert rejected.value.code == "flag" and "'ODD'" in rejected.value.remote_message
            # a handled flag runs its handler on the client's loop
            answer = client.call_sync(address, "busy")
            assert answer.startswith("busy:busy:srv:")
            assert int(answer.rsplit(":", 1)[1]) == client._loop_thread

            for name in ("unserialisable", "unserialisable_async"):
                with pytest.raises(net.RequestRejected) as rejected:
                    client.call_sync(address, name)
                assert rejected.value.code == m.E_UNSERIALISABLE, name
                assert "object" in rejected.value.remote_message, rejected.value.remote_message

            with pytest.raises(net.RequestRejected) as rejected:
                client.call_sync(address, "too_big")
            assert rejected.value.code == m.E_FRAME_TOO_LARGE
            assert "65536" in rejected.value.remote_message

            # a call that does not answer in time: CallTimeout, on time
            t0 = time.monotonic()
            with pytest.raises(net.CallTimeout):
                client.call_sync(address, "blocks", timeout=0.3)
            took = time.monotonic() - t0
            assert 0.25 <= took < 1.5, took
            assert holding.is_set()
            release.set()  # the worker thread ends; its late answer is dropped
            wait_for(
                lambda: (
                    server._call_limiter is not None and not server._call_limiter.borrowed_tokens
                )
            )
            assert client.call_sync(address, "pass_through", "after") == "after"

            # a call in flight when the server stops: the link's end answers it
            release.clear()
            holding.clear()
            outcome: list[BaseException | object] = []

            def in_flight() -> None:
                try:
                    outcome.append(client.call_sync(address, "blocks", timeout=10))
                except BaseException as exc:
                    outcome.append(exc)

            th = threading.Thread(target=in_flight)
            th.start()
            assert holding.wait(5)
            t0 = time.monotonic()
            server.stop()
            stopped = True
            th.join(5)
            assert not th.is_alive()
            assert time.monotonic() - t0 < 4
            [result] = outcome
            assert isinstance(result, net.PeerUnavailable), result
            release.set()

            # after the server stopped: no hang, an error at once (or within the timeout)
            for _ in range(2):
                t0 = time.monotonic()
                with pytest.raises((net.PeerUnavailable, net.CallTimeout)):
                    client.call_sync(address, "pass_through", 1, timeout=2)
                assert time.monotonic() - t0 < 3
            wait_for(lambda: not client.links)
        finally:
            release.set()
            client.stop()
        # and a stopped client says so
        with pytest.raises(net.NotRunning):
            client.call_sync(address, "pass_through", 1)
    finally:
        release.set()
        if not stopped:
            server.stop()


def test_call_sync_dials_when_there_is_no_link_yet() -> None:
    server = make("srv")

    @server.connect()
    def double(x: int) -> int:
        return 2 * x

    server.start()
    try:
        client = make("cli")
        client.start()
        try:
            assert not client.links
            address = f"127.0.0.1:{server.port}"
            assert client.call_sync(address, "double", 21) == 42  # through the loop: dials
            assert len(client.links) == 1
            assert client.call_sync(address, "double", 5) == 10  # the live link, in-thread
            assert client.call_sync("srv", "double", 6) == 12  # by name
        finally:
            client.stop()
    finally:
        server.stop()


def test_more_plain_calls_than_the_limiter_allows_all_finish() -> None:
    """32 plain calls run at once per peer; the others wait for a slot (as tasks)."""
    server = make("srv")
    release = threading.Event()
    lock = threading.Lock()
    running = 0
    peak = 0

    @server.connect()
    def hold(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            release.wait(10)
        finally:
            with lock:
                running -= 1
        return i

    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address])
        client.start()
        try:
            wait_for(lambda: client.links)
            results: dict[int, object] = {}

            def call(i: int) -> None:
                try:
                    results[i] = client.call_sync(address, "hold", i, timeout=15)
                except Exception as exc:
                    results[i] = exc

            threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
            for th in threads:
                th.start()
            try:
                wait_for(lambda: running == 32)
                limiter = server._call_limiter
                assert limiter is not None
                wait_for(lambda: limiter.statistics().tasks_waiting == 8)
                assert running == 32 and limiter.borrowed_tokens == 32
            finally:
                release.set()
                for th in threads:
                    th.join(15)
            assert not any(th.is_alive() for th in threads)
            assert results == {i: i for i in range(40)}
            assert peak == 32
            wait_for(lambda: limiter.borrowed_tokens == 0)
        finally:
            release.set()
            client.stop()
    finally:
        server.stop()


# --- regressions: bugs these tests found ------------------------------------------------


def test_call_sync_forgets_answered_requests() -> None:
    server = make("srv")

    @server.connect()
    def fails() -> None:
        raise ValueError("no")

    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address])
        client.start()
        try:
            wait_for(lambda: client.links)
            [link] = client.links.values()
            for i in range(50):
                assert client.call_sync(address, "pass_through", i) == i
            with pytest.raises(net.RemoteError):
                client.call_sync(address, "fails")
            assert len(link._pending) == 0, f"{len(link._pending)} answered requests kept"
        finally:
            client.stop()
    finally:
        server.stop()


def test_call_sync_accepts_an_infinite_timeout_like_call_does() -> None:
    server = make("srv")
    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        client = make("cli", peers=[address])
        client.start()
        try:
            wait_for(lambda: client.links)
            assert client.call_sync(address, "pass_through", 3, timeout=math.inf) == 3
        finally:
            client.stop()
    finally:
        server.stop()
