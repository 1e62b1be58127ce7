"""What a peer offers and wants, locally: connections, flags, events and handlers.

Pure bookkeeping (no I/O). The peer layer reads it to answer CALL and INFO, to
run flag handlers for FLAG answers, and to know which events to subscribe to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import NetError


class Flag:
    """Return ``Flag(name)`` from a connection to answer with a flag instead of a value.

    The caller's ``@net.flag(name)`` handler decides what the call returns.
    """

    __slots__ = ("detail", "name")

    def __init__(self, name: str, detail: dict[str, Any] | None = None) -> None:
        self.name = name
        self.detail = detail or {}

    def __repr__(self) -> str:
        return f"Flag({self.name!r})"


NULL = "NULL"
INVALID_CONNECTION = "INVALID_CONNECTION"


@dataclass
class ConnectionEntry:
    name: str
    func: Callable[..., Any]
    is_async: bool
    signature: str
    doc: str


@dataclass
class SubscriptionSpec:
    """One local handler and the publishers it wants events from."""

    event: str
    handler: Callable[..., Any]
    is_async: bool
    peers: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    hubs_only: bool = False
    on_host: bool = False
    wants_sender: bool = False


@dataclass
class Registry:
    connections: dict[str, ConnectionEntry] = field(default_factory=dict)
    flags: dict[str, Callable[..., Any]] = field(default_factory=dict)
    events: dict[str, Callable[..., Any]] = field(default_factory=dict)
    subscriptions: dict[str, list[SubscriptionSpec]] = field(default_factory=dict)

    def add_connection(self, func: Callable[..., Any], tag: str | None = None) -> ConnectionEntry:
        name = tag if tag is not None else getattr(func, "__name__", "")
        if not name or not isinstance(name, str) or len(name) > 256:
            raise NetError(f"cannot register {func!r}: it needs a tag of 1..256 characters")
        try:
            signature = f"{name}{inspect.signature(func)}"
        except (TypeError, ValueError):
            signature = f"{name}(...)"
        entry = ConnectionEntry(
            name,
            func,
            inspect.iscoroutinefunction(func),
            signature,
            inspect.getdoc(func) or "",
        )
        self.connections[name] = entry
        return entry

    def add_flag(self, name: str, handler: Callable[..., Any]) -> None:
        self.flags[name] = handler

    def add_event(self, name: str, func: Callable[..., Any]) -> None:
        self.events[name] = func

    def add_subscription(self, spec: SubscriptionSpec) -> None:
        self.subscriptions.setdefault(spec.event, []).append(spec)

    def remove_subscription(self, spec: SubscriptionSpec) -> bool:
        specs = self.subscriptions.get(spec.event, [])
        if spec not in specs:
            return False
        specs.remove(spec)
        if not specs:
            del self.subscriptions[spec.event]
        return True
