"""``EventBoundary``: forwards chosen events from one bus (event domain) to another."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from ._context import HandlerContext
from ._event import Event
from ._registry import EventRegistry, event_class_of

if TYPE_CHECKING:
    from ._bus import EventBus


class EventBoundary:
    """A handler in one domain that hands chosen events to another bus.

    Attach it to the source bus (or registry) with :meth:`attach`; it then
    takes every event of ``event_classes`` (default: all events) for which
    ``when(event)`` is true, and emits a shallow copy into ``target`` with the
    boundary as ``origin`` (so the target's handlers can tell where events came
    from: ``target.handle_event(X, origin=boundary)``). The sending peer, if
    any, goes along. Forwarding uses ``target.emit``: it never waits, and a
    full or stopped target is an error logged and counted like any handler's.
    An event is not sent back to the domain it came from through another
    boundary, so a pair of opposite boundaries does not loop.
    """

    def __init__(
        self,
        target: EventBus,
        *event_classes: type[Event],
        when: Callable[[Event], bool] | None = None,
    ) -> None:
        classes = [event_class_of(cls) for cls in event_classes] or [Event]
        # Only the outermost classes: a subclass listed too would forward twice.
        self.event_classes = tuple(
            cls for cls in classes if not any(cls is not o and issubclass(cls, o) for o in classes)
        )
        self.target = target
        self.when = when
        self.forwarded = 0
        self._domains: weakref.WeakSet[object] = weakref.WeakSet()

    def attach(self, source: EventBus | EventRegistry) -> Self:
        """Start forwarding the chosen events delivered on ``source``."""
        registry = source if isinstance(source, EventRegistry) else source.registry
        for cls in self.event_classes:
            registry.add_handler(cls, self)
        return self

    def detach(self, source: EventBus | EventRegistry) -> None:
        registry = source if isinstance(source, EventRegistry) else source.registry
        registry.remove_handler(self)

    def __call__(self, event: Event, ctx: HandlerContext) -> None:
        if self.when is not None and not self.when(event):
            return
        origin = ctx.origin
        if isinstance(origin, EventBoundary) and self.target in origin._domains:
            return  # it came from our target: sending it back would loop
        self._domains.add(ctx.bus if ctx.bus is not None else ctx.registry)
        self.target.emit(copy.copy(event), origin=self, peer=ctx.peer)
        self.forwarded += 1

    def __repr__(self) -> str:
        names = ", ".join(cls.event_name for cls in self.event_classes)
        return f"EventBoundary(to {self.target.name!r}: {names})"
