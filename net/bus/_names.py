"""The catalogue of Event classes by stable wire name.

A receiver gets a name off the wire and needs the class to rebuild the event:
:func:`lookup_event_class` gives it. Classes are held weakly, so an Event class
defined inside a function (common in tests) disappears with it.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._event import Event

_lock = threading.Lock()
_classes: weakref.WeakValueDictionary[str, type[Event]] = weakref.WeakValueDictionary()


def register_event_class(cls: type[Event]) -> None:
    """Record ``cls`` under ``cls.event_name``.

    Redefining a class (same module and qualified name: a reloaded module, a
    class defined in a function called twice) replaces the old one. Two
    different classes claiming one name would misroute events on the wire, so
    that is a ``TypeError`` at class creation.
    """
    name = cls.event_name
    with _lock:
        existing = _classes.get(name)
        if existing is not None and existing is not cls and _identity(existing) != _identity(cls):
            raise TypeError(
                f"event name {name!r} is already used by {'.'.join(_identity(existing))}; "
                f"give {cls.__qualname__} its own name: class {cls.__name__}(..., name='...')"
            )
        _classes[name] = cls


def lookup_event_class(name: str) -> type[Event] | None:
    """The Event class registered under the stable ``name``, or ``None``."""
    if not isinstance(name, str):
        return None
    with _lock:
        return _classes.get(name)


def _identity(cls: type) -> tuple[str, str]:
    return (cls.__module__, cls.__qualname__)
