"""Events to and from the plain (name, fields) form a wire format carries.

The network layer encodes ``event_to_wire(event)`` and, on the other side,
rebuilds with ``event_from_wire(name, fields)``, which trusts nothing: an
unknown name, odd fields or values that don't fit the annotations are errors
it can report to the sender.
"""

from __future__ import annotations

from typing import Any

from ._describe import describe_value, short_repr
from ._errors import UnknownEventName
from ._event import Event
from ._names import lookup_event_class


def event_to_wire(event: Event) -> tuple[str, dict[str, Any]]:
    """``(event_name, fields)`` of ``event``; the values are the field values as they are."""
    if not isinstance(event, Event):
        raise TypeError(f"expected an Event instance, got {describe_value(event)}")
    return type(event).event_name, event.to_fields()


def event_from_wire(name: object, fields: object) -> Event:
    """The event called ``name`` rebuilt from ``fields`` (untrusted input).

    Raises :class:`UnknownEventName` (a ``LookupError``) if no Event class is
    registered under ``name`` here, and ``TypeError``/``ValueError`` from
    :meth:`Event.from_fields` if the fields don't fit.
    """
    if not isinstance(name, str):
        raise TypeError(f"an event name must be a string, got {describe_value(name)}")
    cls = lookup_event_class(name)
    if cls is None:
        raise UnknownEventName(f"no Event class is registered under {short_repr(name)}")
    return cls._from_fields_at_depth(fields, 0)
