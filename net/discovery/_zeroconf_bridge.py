"""The one place where trio meets asyncio (zeroconf is asyncio-only).

:class:`AsyncioThread` runs a private asyncio event loop in a daemon thread. All
zeroconf objects of one :class:`~net.discovery._mdns.MdnsDiscovery` live on that
loop and are only touched from it. trio reaches them in two ways:

* :meth:`AsyncioThread.run` submits a coroutine with
  ``asyncio.run_coroutine_threadsafe`` and waits for it through a done-callback
  that wakes trio with ``TrioToken.run_sync_soon``: the wait is cancellable, and
  cancelling it cancels the asyncio task.
* :meth:`AsyncioThread.call_soon` schedules a plain function on the loop and
  returns at once (never blocks the trio thread).

Events flow the other way through :class:`TrioNotifier`, which callbacks running
on the asyncio thread use to hand a value to a function on the trio thread. It
never blocks and never raises on the asyncio side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

import trio

__all__ = ["AsyncioThread", "TrioNotifier"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class TrioNotifier(Generic[T]):
    """Hands values from any thread to ``deliver`` on the trio thread.

    ``deliver`` runs via ``TrioToken.run_sync_soon``; it must be quick and must
    not raise (an exception there would kill the trio run, so it is caught and
    logged here). After :meth:`close`, or once the trio run has finished, values
    are dropped silently.
    """

    def __init__(self, deliver: Callable[[T], None]) -> None:
        self._deliver = deliver
        self._token = trio.lowlevel.current_trio_token()
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def _run(self, value: T) -> None:
        if self._closed:
            return
        try:
            self._deliver(value)
        except Exception:
            log.exception("discovery: error handing an event to trio")

    def notify(self, value: T) -> None:
        """Schedule ``deliver(value)`` on the trio thread; callable from any thread."""
        if self._closed:
            return
        try:
            self._token.run_sync_soon(self._run, value)
        except trio.RunFinishedError:
            self._closed = True
        except Exception:  # never raise into zeroconf's loop
            log.debug("discovery: could not hand an event to trio", exc_info=True)


class AsyncioThread:
    """A private asyncio event loop running in a daemon thread."""

    def __init__(self, name: str = "net-zeroconf") -> None:
        self._name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the loop and start its thread (quick; call from trio directly)."""
        if self.loop is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                try:
                    _cancel_remaining_tasks(loop)
                finally:
                    loop.close()

        thread = threading.Thread(target=main, name=self._name, daemon=True)
        self.loop = loop
        self._thread = thread
        thread.start()
        ready.wait(5.0)

    @property
    def running(self) -> bool:
        return self.loop is not None and self.loop.is_running() and not self.loop.is_closed()

    def call_soon(self, fn: Callable[..., object], *args: object) -> bool:
        """Schedule ``fn(*args)`` on the loop; False if the loop is gone."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed in between
            return False
        return True

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result, cancellably.

        If the trio side is cancelled, the asyncio task is cancelled too (without
        waiting for it to finish). Exceptions of the coroutine are re-raised.
        """
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError("the zeroconf event loop is not running")
        try:
            fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:
            coro.close()
            raise
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: concurrent.futures.Future[T]) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        fut.add_done_callback(wake)
        try:
            await done.wait()
        except BaseException:
            fut.cancel()
            raise
        return fut.result()

    async def stop(self, timeout: float = 1.0) -> bool:
        """Stop the loop and join its thread, waiting at most ``timeout`` seconds.

        Returns False if the thread did not finish in time (it is a daemon thread,
        so it cannot keep the process alive). Safe to call more than once.
        """
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return True
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass
        if not thread.is_alive():
            return True
        with trio.move_on_after(timeout):
            await trio.to_thread.run_sync(thread.join, abandon_on_cancel=True)
        if thread.is_alive():
            log.warning("discovery: zeroconf thread %s did not stop in %.1f s", self._name, timeout)
            return False
        return True


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still scheduled and let it unwind briefly (runs on the loop thread)."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    try:
        loop.run_until_complete(
            asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=0.5)
        )
    except Exception:
        log.debug("discovery: leftover zeroconf tasks did not finish", exc_info=True)
