"""Who handles which events: handlers, filters, the default handler, and the default registry.

An :class:`EventRegistry` holds the registrations and delivers events to them
synchronously (``emit_event``) or in the caller's trio task
(``dispatch_async``); an :class:`EventBus` adds its own task, sinks and
sources on top of one. The module-level ``emit_event``/``handle_event`` use the
*current* registry: one default object for the process, replaceable within a
context with :func:`use_registry` (tests use a fresh one each).
"""

from __future__ import annotations

import itertools
import logging
import threading
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from ._context import HandlerContext
from ._describe import describe_value
from ._dispatch import DispatchReport, Member, dispatch_steps, drive_async, drive_sync
from ._errors import UnhandledEvent
from ._event import Event

logger = logging.getLogger("net.bus")

E = TypeVar("E", bound=Event)
H = TypeVar("H", bound=Callable[..., object])


def event_class_of(event_class: object) -> type[Event]:
    """``event_class``, or the class behind an alias such as ``PostRecordUpdate[X]``."""
    cls = typing.get_origin(event_class) or event_class
    if not (isinstance(cls, type) and issubclass(cls, Event)):
        raise TypeError(f"expected an Event subclass, got {describe_value(event_class)}")
    return cls


def check_event(event: object) -> Event:
    if not isinstance(event, Event):
        raise TypeError(f"expected an Event instance, got {describe_value(event)}")
    return event


@dataclass(frozen=True, eq=False)
class Registration(Member):
    """A handler registered for an event class (and its subclasses), maybe for one origin."""

    event_class: type[Event] = Event
    origin: object = None
    order: int = 0

    def accepts(self, origin: object) -> bool:
        if self.origin is None or self.origin is origin:
            return True
        try:
            return bool(self.origin == origin)
        except Exception:
            return False


@dataclass
class RegistryStats:
    """Counters of one registry, for tests, logs and the peer's ``info``."""

    dispatched: int = 0
    handler_failures: int = 0
    filter_failures: int = 0
    consumed_by_filters: int = 0
    unhandled: int = 0


class EventRegistry:
    """Handlers, filters and a default handler; delivers events to them.

    Order of delivery for one event: filters in registration order (the first
    to return ``True`` consumes the event: nothing else runs); then the
    handlers registered for the event's class or one of its bases, **most
    specific class first** (following the class's MRO), and within one class
    in registration order; then, if no handler matched, the default handler;
    with none and ``strict=True``, :class:`UnhandledEvent` is raised.
    """

    def __init__(self, *, strict: bool = False, name: str = "events") -> None:
        self.name = name
        self.strict = strict
        self.stats = RegistryStats()
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._registrations: tuple[Registration, ...] = ()
        self._filters: tuple[Member, ...] = ()
        self._default: Member | None = None
        self._observers: tuple[Callable[[Event], object], ...] = ()
        self._plans: dict[type[Event], tuple[Registration, ...]] = {}

    # -- registration -----------------------------------------------------------------

    def handle_event(self, event_class: type[Event], origin: object = None) -> Callable[[H], H]:
        """Decorator: call the function for every ``event_class`` event (subclasses included).

        With ``origin``, only for events emitted with that origin. The handler
        takes the event, and the :class:`HandlerContext` too if it declares a
        second positional parameter; it may be ``async``; its return value is
        ignored.
        """
        event_class_of(event_class)  # a mistake shows where the decorator is written

        def register(handler: H) -> H:
            self.add_handler(event_class, handler, origin=origin)
            return handler

        return register

    def add_handler(self, event_class: type[Event], handler: H, *, origin: object = None) -> H:
        """Register ``handler`` (see :meth:`handle_event`) and return it."""
        cls = event_class_of(event_class)
        member = Member.of(handler)
        registration = Registration(
            handler, member.wants_context, event_class=cls, origin=origin, order=next(self._order)
        )
        with self._lock:
            self._registrations = (*self._registrations, registration)
            self._plans = {}
        return handler

    def remove_handler(self, handler: Callable[..., object]) -> int:
        """Unregister every registration of ``handler``; returns how many there were."""
        with self._lock:
            kept = tuple(r for r in self._registrations if r.fn is not handler)
            removed = len(self._registrations) - len(kept)
            self._registrations = kept
            self._plans = {}
        return removed

    def add_filter(self, fn: H) -> H:
        """Register a filter: it sees every event before the handlers; ``True`` consumes it."""
        member = Member.of(fn)
        with self._lock:
            self._filters = (*self._filters, member)
        return fn

    def remove_filter(self, fn: Callable[..., object]) -> None:
        with self._lock:
            self._filters = tuple(f for f in self._filters if f.fn is not fn)

    def set_default_handler(self, fn: Callable[..., object] | None) -> None:
        """The handler for events that no handler took (``None`` removes it)."""
        self._default = None if fn is None else Member.of(fn)

    @property
    def default_handler(self) -> Callable[..., object] | None:
        return None if self._default is None else self._default.fn

    def handled_classes(self) -> frozenset[type[Event]]:
        """The event classes that have at least one handler (a bridge subscribes to these)."""
        return frozenset(r.event_class for r in self._registrations)

    def clear(self) -> None:
        """Forget every handler, filter, default handler and counter."""
        with self._lock:
            self._registrations = ()
            self._filters = ()
            self._default = None
            self._observers = ()
            self._plans = {}
            self.stats = RegistryStats()

    def _add_observer(self, fn: Callable[[Event], object]) -> None:
        """Watch every event (before filters) without taking it: for ``net.testing``."""
        with self._lock:
            self._observers = (*self._observers, fn)

    def _remove_observer(self, fn: Callable[[Event], object]) -> None:
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not fn)

    def _plan(self, event_class: type[Event]) -> tuple[Registration, ...]:
        plan = self._plans.get(event_class)
        if plan is None:
            mro = event_class.__mro__
            registrations = self._registrations
            matching = [r for r in registrations if r.event_class in mro]
            matching.sort(key=lambda r: (mro.index(r.event_class), r.order))
            plan = tuple(matching)
            with self._lock:
                if self._registrations is registrations:
                    self._plans[event_class] = plan
        return plan

    # -- delivery ---------------------------------------------------------------------

    def emit_event(self, event_class: type[E], /, origin: object = None, **fields: Any) -> E:
        """Build ``event_class(**fields)``, run its handlers now, and return it after all of them.

        Handlers run synchronously, in this thread; a failing handler is logged
        on ``net.bus`` and the others still run. Asynchronous handlers cannot
        run here (they are reported as failed): use an :class:`EventBus`.
        """
        event_class_of(event_class)
        event = event_class(**fields)
        return self.dispatch(event, origin=origin)

    def dispatch(self, event: E, *, origin: object = None, peer: object = None) -> E:
        """Deliver an existing event synchronously (see :meth:`emit_event`) and return it."""
        check_event(event)
        ctx = HandlerContext(self, origin=origin, peer=peer)
        report = drive_sync(dispatch_steps(self, event, ctx))
        self._conclude(event, origin, report)
        return event

    async def dispatch_async(self, event: E, *, origin: object = None, peer: object = None) -> E:
        """Deliver ``event`` in the calling trio task, awaiting async handlers; return it."""
        check_event(event)
        ctx = HandlerContext(self, origin=origin, peer=peer, is_async=True)
        report = await drive_async(dispatch_steps(self, event, ctx))
        self._conclude(event, origin, report)
        return event

    def _conclude(self, event: Event, origin: object, report: DispatchReport) -> None:
        """Count an event nobody took, and raise :class:`UnhandledEvent` if strict."""
        if report.taken:
            return
        self.stats.unhandled += 1
        if self.strict:
            raise UnhandledEvent(event, origin)
        logger.debug("no handler took event %s", event.event_name)

    def __repr__(self) -> str:
        return (
            f"EventRegistry(name={self.name!r}, handlers={len(self._registrations)}, "
            f"filters={len(self._filters)}, strict={self.strict})"
        )


_default_registry = EventRegistry(name="default")
_current_registry: ContextVar[EventRegistry] = ContextVar(
    "net_bus_registry", default=_default_registry
)


def get_registry() -> EventRegistry:
    """The registry ``emit_event`` and ``handle_event`` use here (the process default)."""
    return _current_registry.get()


@contextmanager
def use_registry(registry: EventRegistry) -> Iterator[EventRegistry]:
    """Make ``registry`` the current one within this block (and tasks started in it)."""
    if not isinstance(registry, EventRegistry):
        raise TypeError(f"expected an EventRegistry, got {describe_value(registry)}")
    token = _current_registry.set(registry)
    try:
        yield registry
    finally:
        _current_registry.reset(token)


def emit_event(event_class: type[E], /, origin: object = None, **fields: Any) -> E:
    """Build an event, run its handlers in the current registry now, return it after them all."""
    return get_registry().emit_event(event_class, origin, **fields)


def handle_event(event_class: type[Event], origin: object = None) -> Callable[[H], H]:
    """Decorator: a handler of ``event_class`` (and subclasses) in the current registry."""
    return get_registry().handle_event(event_class, origin)
