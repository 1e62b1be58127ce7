"""The synchronous face: one background trio thread that hosts peers for plain code.

Synchronous callers (decorated functions called from ordinary code) reach the
peer through ``trio.from_thread``; fire-and-forget work is handed over in
batches by ``Handover`` so a loop of event triggers does not pay a full
cross-thread round trip each.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class BackgroundLoop:
    """A trio run in a daemon thread, with a nursery that hosts started peers."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="net-loop", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        trio.run(self._amain)

    async def _amain(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    @property
    def token(self) -> trio.lowlevel.TrioToken:
        assert self._token is not None
        return self._token

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``afn(*args)`` in the loop and wait for its result (from another thread)."""
        return trio.from_thread.run(afn, *args, trio_token=self.token)

    def close(self, timeout: float = 5.0) -> None:
        if self._stop is not None and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
            except trio.RunFinishedError:
                pass
            self._thread.join(timeout)


_background: BackgroundLoop | None = None
_background_lock = threading.Lock()


def background() -> BackgroundLoop:
    """The process's background loop, started on first use."""
    global _background
    with _background_lock:
        if _background is None or not _background._thread.is_alive():
            _background = BackgroundLoop()
        return _background


class Handover:
    """Hands items from any thread to a trio task in batches, with a bound.

    ``put`` appends to a deque and wakes the consumer only when it is idle
    (one ``run_sync_soon`` per batch, not per item). When ``limit`` items are
    waiting, ``put`` blocks the producing thread: back-pressure, never loss.

    The common path takes no lock: a ``len`` and an ``append`` on the deque
    (atomic under the GIL). Only a producer that finds the deque full waits,
    on a condition the consumer signals once it has taken a batch. The bound
    may be exceeded by one item per producer thread racing for the last
    place, and by the loop thread, which never waits (it must not wait on
    itself): it is a bound, not an exact count.
    """

    #: The consumer takes at most this many items at a time.
    BATCH = 1024

    def __init__(self, token: trio.lowlevel.TrioToken, limit: int = 8192) -> None:
        self._token = token
        self._limit = limit
        self._items: collections.deque[Any] = collections.deque()
        self._space = threading.Condition(threading.Lock())
        self._waiting = 0  # producers blocked on _space
        self._wakeup = trio.Event()
        self._wake_pending = False  # a wake-up is scheduled and the consumer has not run
        self._closed = False

    def put(self, item: Any, *, block: bool = True) -> None:
        if self._closed:
            raise trio.RunFinishedError("the peer's loop is not running")
        items = self._items
        if block and len(items) >= self._limit:
            self._wait_for_space()
        items.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._token.run_sync_soon(self._wake, idempotent=True)
            except trio.RunFinishedError:
                self._closed = True
                raise

    def _wait_for_space(self) -> None:
        with self._space:
            self._waiting += 1
            try:
                while len(self._items) >= self._limit:
                    if self._closed:
                        raise trio.RunFinishedError("the peer's loop is not running")
                    self._space.wait(0.5)
            finally:
                self._waiting -= 1

    def _wake(self) -> None:
        self._wakeup.set()

    async def batches(self) -> Any:
        """Yield lists of items as they arrive (an async generator for the consumer task)."""
        items = self._items
        popleft = items.popleft
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            # From here on a put schedules a new wake-up: nothing appended after the
            # check below can be left behind.
            self._wake_pending = False
            while items:
                n = min(len(items), self.BATCH)
                batch = [popleft() for _ in range(n)]
                if self._waiting:
                    with self._space:
                        self._space.notify_all()
                yield batch

    def close(self) -> None:
        self._closed = True
        with self._space:
            self._space.notify_all()
