"""The bridge between the typed event bus and the network.

An ``Event`` instance travels as an ordinary TRIGGER whose args are ``[event
name, fields]``. A peer that wants events of a class subscribes to
``bus:<name>`` of that class; a publisher sends an event to the subscribers of
its class *and of every Event base class*, once each, under the most specific
``bus:`` name each subscribed to, so a handler of a base class also gets the
subclasses' events, as it does locally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import protocol as p
from ..bus import Event, EventBus, EventRegistry, event_from_wire, event_to_wire, get_registry

if TYPE_CHECKING:
    from ._peer import Peer
    from ._remote import PeerInfo

log = logging.getLogger("net.bridge")

WIRE_PREFIX = "bus:"


def wire_name(event_class: type[Event]) -> str:
    return WIRE_PREFIX + event_class.event_name


def audience_names(event_class: type[Event]) -> list[str]:
    """The wire names whose subscribers get an event of ``event_class``."""
    return [
        wire_name(c) for c in event_class.__mro__ if isinstance(c, type) and issubclass(c, Event)
    ]


def pack_event(event: Event) -> tuple[str, bytes]:
    """``(wire name, payload)`` of ``event``; ``TypeError`` if a field can't travel.

    The payload names the event's own class, whatever wire name it is sent under.
    """
    if not isinstance(event, Event):
        raise TypeError(f"only net.Event instances can be published, not {type(event).__name__}")
    name, fields = event_to_wire(event)
    try:
        payload = p.pack([name, fields]) + p.pack({})
    except TypeError as exc:
        raise TypeError(f"event {name!r} cannot be sent: {exc}") from None
    return WIRE_PREFIX + name, payload


def receiver(
    peer: Peer, registry: EventRegistry | None, bus: EventBus | None
) -> Callable[..., Any]:
    """A subscription handler that rebuilds events from the wire and hands them on.

    Whatever a remote sends is untrusted: an unknown type or fields that don't
    fit are logged and counted (``bus_events_rejected``) and nothing else happens.
    """

    def rebuild(args: tuple[Any, ...], sender: PeerInfo) -> Event | None:
        try:
            if len(args) != 2:
                raise TypeError(f"expected [name, fields], got {len(args)} values")
            return event_from_wire(args[0], args[1])
        except (LookupError, TypeError, ValueError) as exc:
            peer.counters["bus_events_rejected"] += 1
            peer._rate_log.warning(
                "bus-reject:" + sender.id,
                "rejected an event from %s: %s",
                sender.name,
                exc,
            )
            return None

    if bus is not None:

        async def to_bus(*args: Any, sender: PeerInfo) -> None:
            event = rebuild(args, sender)
            if event is not None:
                peer.counters["bus_events_received"] += 1
                await bus.enqueue(event, origin=sender, peer=sender)

        return to_bus

    def to_registry(*args: Any, sender: PeerInfo) -> None:
        event = rebuild(args, sender)
        if event is not None:
            peer.counters["bus_events_received"] += 1
            (registry or get_registry()).dispatch(event, origin=sender, peer=sender)

    return to_registry
