"""The cheaper thread hand-offs keep their promises: order, bounds, no loss,
results and errors delivered, handlers and plain connections never on the loop."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from net.peer._handlers import BATCH, CallThreads, HandlerThread
from net.sync import Handover

# --- HandlerThread: batched hand-off to the handler thread --------------------------


async def test_handler_batches_run_in_order_off_the_loop() -> None:
    ht = HandlerThread(limit=100_000)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    threads: set[int] = set()

    def handler(i: int) -> None:
        seen.append(i)
        threads.add(threading.get_ident())

    n = 3 * BATCH + 17
    for i in range(n):
        ht.put(handler, [i], {}, "ev")
        if i % 500 == 0:
            ht.flush()
    ht.flush()
    with trio.fail_after(10):
        while ht.backlog:
            await trio.sleep(0.01)
    await trio.to_thread.run_sync(ht.stop)
    assert seen == list(range(n))
    assert loop_thread not in threads and len(threads) == 1


async def test_handler_batch_is_handed_over_by_itself_when_full() -> None:
    ht = HandlerThread()
    done = threading.Event()
    count = 0

    def handler() -> None:
        nonlocal count
        count += 1
        if count == BATCH:
            done.set()

    for _ in range(BATCH):
        ht.put(handler, (), {}, "ev")  # no flush: a full batch goes by itself
    assert await trio.to_thread.run_sync(done.wait, 10)
    await trio.to_thread.run_sync(ht.stop)


async def test_wait_for_room_flushes_and_applies_back_pressure() -> None:
    ht = HandlerThread(limit=50)
    gate = threading.Event()
    ran: list[int] = []

    def handler(i: int) -> None:
        gate.wait(10)
        ran.append(i)

    for i in range(50):
        ht.put(handler, [i], {}, "ev")
    assert ht.backlog == 50
    with trio.move_on_after(0.3) as blocked:
        await ht.wait_for_room()  # must not deadlock on an unflushed batch
    assert blocked.cancelled_caught  # full: it waits...
    gate.set()
    with trio.fail_after(10):
        await ht.wait_for_room()  # ...until the thread caught up
    assert ht.backlog < 50
    await trio.to_thread.run_sync(ht.stop)
    assert ran == list(range(50))


async def test_stop_runs_what_was_accepted_but_not_flushed() -> None:
    ht = HandlerThread()
    ran: list[int] = []
    for i in range(10):
        ht.put(ran.append, [i], {}, "ev")
    await trio.to_thread.run_sync(ht.stop)
    assert ran == list(range(10))


async def test_a_failing_handler_is_logged_and_the_rest_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ht = HandlerThread()
    ran: list[int] = []

    def bad() -> None:
        raise ValueError("boom")

    ht.put(bad, (), {}, "ev")
    ht.put(ran.append, [1], {}, "ev")
    await trio.to_thread.run_sync(ht.stop)
    assert ran == [1] and ht.failures == 1
    assert "boom" in caplog.text


# --- Handover: sync triggers to the loop ---------------------------------------------


async def test_handover_keeps_order_and_bound_without_loss() -> None:
    token = trio.lowlevel.current_trio_token()
    ho = Handover(token, limit=64)
    got: list[int] = []
    peak = 0
    n = 5000

    def produce() -> None:
        for i in range(n):
            ho.put(i)

    async def consume() -> None:
        nonlocal peak
        async for batch in ho.batches():
            peak = max(peak, len(batch) + len(ho._items))
            got.extend(batch)
            await trio.sleep(0)  # a slow consumer: producers must wait, not drop
            if len(got) == n:
                return

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.to_thread.run_sync(produce)
    assert got == list(range(n))
    assert peak <= 64 + 1  # the bound (one producer thread may race for the last place)


async def test_handover_from_several_threads_keeps_each_threads_order() -> None:
    token = trio.lowlevel.current_trio_token()
    ho = Handover(token, limit=32)
    got: list[tuple[int, int]] = []

    def produce(t: int) -> None:
        for i in range(1000):
            ho.put((t, i))

    async def consume() -> None:
        async for batch in ho.batches():
            got.extend(batch)
            if len(got) == 4000:
                return

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            for t in range(4):
                nursery.start_soon(trio.to_thread.run_sync, produce, t)
    for t in range(4):
        assert [i for (tt, i) in got if tt == t] == list(range(1000))


async def test_handover_close_releases_a_blocked_producer() -> None:
    token = trio.lowlevel.current_trio_token()
    ho = Handover(token, limit=2)
    ho.put(1)
    ho.put(2)
    outcome: list[str] = []

    def produce() -> None:
        try:
            ho.put(3)  # full, nobody consumes
            outcome.append("put")
        except trio.RunFinishedError:
            outcome.append("refused")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, produce)
        await trio.sleep(0.2)
        ho.close()
    assert outcome == ["refused"]


async def test_handover_put_from_the_loop_never_blocks() -> None:
    token = trio.lowlevel.current_trio_token()
    ho = Handover(token, limit=1)
    for i in range(5):
        ho.put(i, block=False)  # overdraws instead of waiting on itself
    assert list(ho._items) == [0, 1, 2, 3, 4]


# --- CallThreads: plain @connect functions ---------------------------------------------


async def test_call_threads_return_results_and_raise_errors_off_the_loop() -> None:
    pool = CallThreads()
    limiter = trio.CapacityLimiter(4)
    loop_thread = threading.get_ident()
    assert await pool.run(threading.get_ident, limiter) != loop_thread
    with pytest.raises(ZeroDivisionError):
        await pool.run(lambda: 1 / 0, limiter)
    assert limiter.borrowed_tokens == 0


async def test_call_threads_respect_the_limiter() -> None:
    pool = CallThreads()
    limiter = trio.CapacityLimiter(3)
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(12):
                nursery.start_soon(pool.run, slow, limiter)
    assert peak == 3
    assert limiter.borrowed_tokens == 0


async def test_a_cancelled_call_is_abandoned_and_holds_its_token_until_done() -> None:
    pool = CallThreads()
    limiter = trio.CapacityLimiter(1)
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> str:
        release.wait(10)
        finished.set()
        return "late"

    with trio.move_on_after(0.2) as scope:
        await pool.run(blocking, limiter)
    assert scope.cancelled_caught  # the caller gave up at once...
    assert limiter.borrowed_tokens == 1  # ...the function still runs and counts
    release.set()
    with trio.fail_after(10):
        while limiter.borrowed_tokens:
            await trio.sleep(0.01)
    assert finished.is_set()
    assert await pool.run(lambda: "next", limiter) == "next"


async def test_idle_call_threads_end() -> None:
    pool = CallThreads()
    pool.IDLE = 0.1
    limiter = trio.CapacityLimiter(8)
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(pool.run, lambda: time.sleep(0.05), limiter)
    assert pool._threads >= 1
    with trio.fail_after(10):
        while pool._threads:
            await trio.sleep(0.05)
    assert await pool.run(lambda: 42, limiter) == 42  # and new ones start when needed
