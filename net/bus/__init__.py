"""The typed, in-process event bus of net.

Events are classes (:class:`Event`); ``emit_event`` runs their handlers now and
returns the event; ``@handle_event`` registers handlers. An :class:`EventBus`
delivers events in trio: ``publish`` (in the caller's task), ``emit`` (in the
bus's own task), senders for background tasks, sources, sinks, filters and a
default handler. See ``docs/bus.md``. Importing this package starts nothing.
"""

from ._boundary import EventBoundary
from ._bus import BusStats, EventBus
from ._context import HandlerContext
from ._errors import BusNotRunning, EventQueueFull, UnhandledEvent, UnknownEventName
from ._event import Event
from ._fanout import Fanout
from ._fields import MAX_DEPTH
from ._lifecycle import (
    PostRecordCreate,
    PostRecordDelete,
    PostRecordUpdate,
    PreRecordCreate,
    PreRecordDelete,
    PreRecordUpdate,
    RecordEvent,
    record_diff,
)
from ._names import lookup_event_class
from ._registry import (
    EventRegistry,
    RegistryStats,
    emit_event,
    get_registry,
    handle_event,
    use_registry,
)
from ._sender import EventSender
from ._sink import EventSink
from ._sources import EventSource, PullSource, PushSource, Timer, TimerTick
from ._sqlite_log import LoggedEvent, SQLiteEventLog
from ._wire import event_from_wire, event_to_wire

__all__ = [
    "MAX_DEPTH",
    "BusNotRunning",
    "BusStats",
    "Event",
    "EventBoundary",
    "EventBus",
    "EventQueueFull",
    "EventRegistry",
    "EventSender",
    "EventSink",
    "EventSource",
    "Fanout",
    "HandlerContext",
    "LoggedEvent",
    "PostRecordCreate",
    "PostRecordDelete",
    "PostRecordUpdate",
    "PreRecordCreate",
    "PreRecordDelete",
    "PreRecordUpdate",
    "PullSource",
    "PushSource",
    "RecordEvent",
    "RegistryStats",
    "SQLiteEventLog",
    "Timer",
    "TimerTick",
    "UnhandledEvent",
    "UnknownEventName",
    "emit_event",
    "event_from_wire",
    "event_to_wire",
    "get_registry",
    "handle_event",
    "lookup_event_class",
    "record_diff",
    "use_registry",
]
