"""Polling for a reply for a moment before sleeping on it.

Why: a process asleep in ``epoll_wait`` takes tens of microseconds to run
again once its reply lands (on the 2-core machines measured here, 50-100 µs,
most of a loopback round trip). A caller that expects its reply within a few
hundred microseconds therefore keeps its loop awake instead: its task yields
in a loop, and each pass of trio's scheduler polls the sockets with a zero
timeout, so the reader sees the reply as soon as it arrives. The poll is
bounded (``NET_CALL_SPIN``) and adaptive: a link whose replies stop arriving
within the bound stops polling, and starts again once they do. A server that
has just answered a call uses the same rule to poll for the caller's next one.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

#: Weight of the newest reply in the running share of replies that came in time.
_WEIGHT = 0.125
#: Stop polling when fewer than this share of recent replies came within the
#: bound; start again when more than ``_RESUME`` did (apart, so it does not flap).
_STOP = 0.5
_RESUME = 0.75


class ReplyPoll:
    """How long one link polls for what it expects next (a reply, or a caller's
    next call): ``NET_CALL_SPIN`` while most recent ones came within it, else
    not at all.

    Updated from the loop and from plain threads (``call_sync``): a lost
    update only shifts the running share slightly."""

    __slots__ = ("answered", "bound", "in_time", "on", "polls")

    def __init__(self, bound: float) -> None:
        self.bound = bound
        #: running share of replies that arrived within ``bound`` (sent to answered)
        self.in_time = 1.0
        self.on = True  # budget() is 0 anyway when the bound is
        self.polls = 0  # requests that polled
        self.answered = 0  # ... and saw their reply while polling

    def budget(self) -> float:
        """Seconds the next request should poll for: the bound, or 0."""
        return self.bound if self.on else 0.0

    def record(self, waited: float) -> None:
        """A reply came ``waited`` seconds after its request was sent."""
        came_in_time = 1.0 if waited <= self.bound else 0.0
        self.in_time += (came_in_time - self.in_time) * _WEIGHT
        if self.on:
            self.on = self.in_time >= _STOP
        else:
            self.on = self.in_time > _RESUME


async def poll_until(answered: Callable[[], bool], until: float) -> bool:
    """Yield to the scheduler until ``answered()`` or trio's clock passes ``until``.

    Each yield is a checkpoint (cancellation is honoured) that lets every other
    task run and makes trio poll the sockets without sleeping. True if answered."""
    clock = trio.current_time
    checkpoint = trio.lowlevel.checkpoint
    while not answered():
        await checkpoint()
        if clock() >= until:
            return answered()
    return True
