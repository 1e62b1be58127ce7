"""The subscription table of a publisher: event -> subscriber -> state.

A pure data structure (no I/O, no trio) so its rules are easy to test: who
gets an event, and who was pruned, when and why. The peer layer calls
``prune`` when a subscriber's link fails, its heartbeats stop, it says bye or
it unsubscribes; every pruning is kept (bounded) for ``info``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Pruning:
    subscriber: str
    events: tuple[str, ...]
    reason: str
    name: str = ""
    at: float = field(default_factory=time.time)


class SubscriptionTable:
    """Which subscribers (by peer id) want which events."""

    def __init__(self, history: int = 100) -> None:
        self._by_event: dict[str, dict[str, None]] = {}
        self._cache: dict[str, tuple[str, ...]] = {}
        self.prunings: deque[Pruning] = deque(maxlen=history)
        self.pruned_total = 0

    def add(self, event: str, subscriber: str) -> bool:
        """Record a subscription; returns False if it already existed."""
        subs = self._by_event.setdefault(event, {})
        if subscriber in subs:
            return False
        subs[subscriber] = None
        self._cache.pop(event, None)
        return True

    def remove(self, event: str, subscriber: str, name: str = "") -> bool:
        """Drop one subscription (an unsubscribe); returns whether it existed."""
        subs = self._by_event.get(event)
        if not subs or subscriber not in subs:
            return False
        del subs[subscriber]
        if not subs:
            del self._by_event[event]
        self._cache.pop(event, None)
        self._record(subscriber, (event,), "unsubscribed", name)
        return True

    def prune(self, subscriber: str, reason: str, name: str = "") -> tuple[str, ...]:
        """Remove every subscription of ``subscriber``; returns the events it had."""
        events = tuple(e for e, subs in self._by_event.items() if subscriber in subs)
        for event in events:
            subs = self._by_event[event]
            del subs[subscriber]
            if not subs:
                del self._by_event[event]
            self._cache.pop(event, None)
        if events:
            self._record(subscriber, events, reason, name)
        return events

    def subscribers(self, event: str) -> tuple[str, ...]:
        """Subscribers of ``event`` in subscription order (cached: the trigger hot path)."""
        try:
            return self._cache[event]
        except KeyError:
            subs = tuple(self._by_event.get(event, ()))
            self._cache[event] = subs
            return subs

    def events_of(self, subscriber: str) -> list[str]:
        return sorted(e for e, subs in self._by_event.items() if subscriber in subs)

    def events(self) -> dict[str, list[str]]:
        """event -> subscriber ids, for ``info``."""
        return {e: list(subs) for e, subs in sorted(self._by_event.items())}

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_event.values())

    def _record(self, subscriber: str, events: tuple[str, ...], reason: str, name: str) -> None:
        self.prunings.append(Pruning(subscriber, events, reason, name or subscriber))
        self.pruned_total += 1
