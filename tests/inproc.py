"""Helpers for tests whose peers all live in the test's own process, on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from net.peer import Peer


def make(name: str, **kw: object) -> Peer:
    """A peer on 127.0.0.1 with a port of the system's choosing."""
    return Peer(name, port=0, host="127.0.0.1", **kw)  # type: ignore[arg-type]


async def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``cond`` until it holds; fail (``trio.TooSlowError``) at the deadline."""
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.005)


def wait_for(cond: Callable[[], object], timeout: float = 5.0) -> None:
    """``wait_until`` for plain code: poll ``cond`` until it holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)
