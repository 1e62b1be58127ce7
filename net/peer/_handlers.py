"""Runs synchronous subscriber handlers off the event loop, in arrival order.

One worker thread per peer takes handler invocations from a queue, so a slow
handler never blocks the loop and events from one publisher are handled in the
order they were triggered. The loop side waits (back-pressure on the socket)
when too many invocations are waiting.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("net.handlers")


class HandlerThread:
    def __init__(self, limit: int = 10000) -> None:
        self.limit = limit
        self._queue: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], str] | None
        ] = queue.SimpleQueue()
        self._put = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._room: trio.Event | None = None
        self.failures = 0

    @property
    def backlog(self) -> int:
        return self._put - self._done

    def put(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], event: str
    ) -> None:
        if self._thread is None:
            self._token = trio.lowlevel.current_trio_token()
            self._thread = threading.Thread(target=self._work, name="net-handlers", daemon=True)
            self._thread.start()
        self._put += 1
        self._queue.put((fn, args, kwargs, event))

    async def wait_for_room(self) -> None:
        """Wait until the backlog is below half the limit."""
        while self.backlog >= self.limit:
            self._room = trio.Event()
            if self.backlog < self.limit:
                break
            await self._room.wait()

    def _signal_room(self) -> None:
        if self._room is not None:
            self._room.set()

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            fn, args, kwargs, event = item
            try:
                fn(*args, **kwargs)
            except Exception:
                self.failures += 1
                log.exception(
                    "handler %s for event %r raised", getattr(fn, "__qualname__", fn), event
                )
            self._done += 1
            room = self._room
            if room is not None and not room.is_set() and self.backlog <= self.limit // 2:
                try:
                    assert self._token is not None
                    self._token.run_sync_soon(self._signal_room)
                except trio.RunFinishedError:
                    pass

    def stop(self, timeout: float = 2.0) -> None:
        """Let queued handlers finish (bounded), then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
