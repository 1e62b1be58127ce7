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
    """

    def __init__(self, token: trio.lowlevel.TrioToken, limit: int = 8192) -> None:
        self._token = token
        self._items: collections.deque[Any] = collections.deque()
        self._space = threading.Semaphore(limit)
        self._wakeup = trio.Event()
        self._closed = False
        self._debt = 0

    def put(self, item: Any, *, block: bool = True) -> None:
        if self._closed:
            raise trio.RunFinishedError("the peer's loop is not running")
        if block:
            while not self._space.acquire(timeout=0.5):
                if self._closed:
                    raise trio.RunFinishedError("the peer's loop is not running")
        elif not self._space.acquire(blocking=False):
            # Only the loop thread puts without blocking (it must never wait on
            # itself); it may overdraw, and the consumer repays that first.
            self._debt += 1
        self._items.append(item)
        if not self._wakeup.is_set():
            try:
                self._token.run_sync_soon(self._wake, idempotent=True)
            except trio.RunFinishedError:
                self._closed = True
                raise

    def _wake(self) -> None:
        self._wakeup.set()

    async def batches(self) -> Any:
        """Yield lists of items as they arrive (an async generator for the consumer task)."""
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._items:
                batch: list[Any] = []
                items = self._items
                while items and len(batch) < 1024:
                    batch.append(items.popleft())
                for _ in batch:
                    if self._debt:
                        self._debt -= 1
                    else:
                        self._space.release()
                yield batch

    def close(self) -> None:
        self._closed = True
