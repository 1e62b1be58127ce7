"""``Fanout``: one handler that gives each event to several handlers in turn."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._context import HandlerContext
from ._describe import describe_callable
from ._dispatch import DispatchReport, Member, Steps, drive_async, drive_sync, run_member
from ._event import Event

H = TypeVar("H", bound=Callable[..., object])


class Fanout:
    """A handler that passes each event to its members, in the order they were added.

    Each member gets its own shallow copy of the event (``copy_events=False``
    shares the one event), so members cannot disturb each other; a failing
    member is logged and counted like any handler, and the next one still
    runs. Members may be sync or async and may take the context. Register the
    fanout itself as a handler: ``bus.add_handler(SomeEvent, fanout)``.
    """

    def __init__(self, *members: Callable[..., object], copy_events: bool = True) -> None:
        self.copy_events = copy_events
        self._members: list[Member] = [Member.of(fn) for fn in members]

    def add(self, fn: H) -> H:
        """Add a member (usable as a decorator) and return it."""
        self._members.append(Member.of(fn))
        return fn

    @property
    def members(self) -> list[Callable[..., object]]:
        return [member.fn for member in self._members]

    def __call__(self, event: Event, ctx: HandlerContext) -> Awaitable[None] | None:
        steps = self._steps(event, ctx)
        if ctx.is_async:
            return drive_async(steps)
        drive_sync(steps)
        return None

    def _steps(self, event: Event, ctx: HandlerContext) -> Steps[None]:
        report = DispatchReport()
        for member in list(self._members):
            own = copy.copy(event) if self.copy_events else event
            yield from run_member("fanout member", member, own, ctx, report)

    def __repr__(self) -> str:
        names = ", ".join(describe_callable(fn) for fn in self.members)
        return f"Fanout({names})"
