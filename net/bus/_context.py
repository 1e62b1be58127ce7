"""What a handler that asks for it (a second positional parameter) receives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ._describe import short_repr
from ._errors import BusNotRunning
from ._event import Event

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._registry import EventRegistry

E = TypeVar("E", bound=Event)


class HandlerContext:
    """The circumstances of one delivery, and the way to publish further events from a handler.

    ``origin`` is what the emitter passed as ``origin``; ``peer`` is the remote
    peer an event came from (set by the network bridge; ``None`` for local
    events); ``bus`` is the :class:`EventBus` delivering it, ``None`` when it
    comes from ``emit_event`` or a bare registry; ``is_async`` says whether the
    delivery can await (handlers written as combinators, like ``Fanout``, need
    to know).
    """

    __slots__ = ("bus", "is_async", "origin", "peer", "registry")

    def __init__(
        self,
        registry: EventRegistry,
        *,
        bus: EventBus | None = None,
        origin: object = None,
        peer: object = None,
        is_async: bool = False,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.origin = origin
        self.peer = peer
        self.is_async = is_async

    async def publish(self, event: E, *, origin: object = None) -> E:
        """Deliver ``event`` now, in this handler's task, and return it when handled."""
        if self.bus is not None:
            return await self.bus.publish(event, origin=origin)
        return await self.registry.dispatch_async(event, origin=origin)

    def emit(self, event: Event, *, origin: object = None) -> None:
        """Hand ``event`` to the delivering bus's own task (see :meth:`EventBus.emit`)."""
        if self.bus is None:
            raise BusNotRunning("this delivery has no bus: use ctx.emit_event or ctx.publish")
        self.bus.emit(event, origin=origin)

    def emit_event(self, event_class: type[E], /, origin: object = None, **fields: Any) -> E:
        """Build and deliver an event synchronously through the same registry."""
        return self.registry.emit_event(event_class, origin, **fields)

    def __repr__(self) -> str:
        return (
            f"HandlerContext(origin={short_repr(self.origin)}, peer={short_repr(self.peer)}, "
            f"bus={short_repr(self.bus)}, is_async={self.is_async})"
        )
