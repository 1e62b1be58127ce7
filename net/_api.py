"""The module-level API: app-net's vocabulary, served by one default peer.

Nothing here runs at import. The default peer is created on first use, from
the ``NET_*`` variables; applying a decorator counts as use and starts it
(unless ``NET_AUTOSTART=0``, which leaves that to ``net.start()``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .bus import Event
from .peer import Peer, PeerInfo, PeerRef
from .registry import Flag

F = TypeVar("F", bound=Callable[..., Any])

_default: Peer | None = None
_lock = threading.Lock()


def default_peer() -> Peer:
    """The process's default peer (created on first call, not started)."""
    global _default
    with _lock:
        if _default is None:
            peer = Peer()
            peer._autostart = peer.settings.autostart
            _default = peer
        return _default


def start() -> Peer:
    """Start the default peer in the background thread (idempotent)."""
    return default_peer().start()


def stop() -> None:
    """Stop the default peer: goodbyes are sent to every linked peer."""
    if _default is not None:
        _default.stop()


def connect(tag: str | None = None) -> Callable[[F], F]:
    """``@net.connect(tag)``: a function other peers can call (``fn(..., peer=P)``)."""
    return default_peer().connect(tag)


def event(name: str) -> Callable[[F], F]:
    """``@net.event(name)``: the function's ``(args, kwargs)`` go to every subscriber."""
    return default_peer().event(name)


def subscribe(
    name: str,
    peers: Iterable[PeerRef] | PeerRef | None = None,
    groups: Iterable[str] | str | None = None,
    hubs_only: bool = False,
    on_host: bool = False,
) -> Callable[[F], F]:
    """``@net.subscribe(name, ...)``: handle ``name`` events of matching peers."""
    return default_peer().subscribe(name, peers, groups, hubs_only, on_host)


def flag(name: str) -> Callable[[F], F]:
    """``@net.flag(name)``: what a call returns when the remote answers with that flag."""
    return default_peer().flag(name)


def publish(event: Event) -> None:
    """Send an ``Event`` instance to the peers that subscribed to its class."""
    default_peer().publish_sync(event)


def subscribe_events(
    *event_classes: type[Event],
    peers: Iterable[PeerRef] | PeerRef | None = None,
    groups: Iterable[str] | str | None = None,
    hubs_only: bool = False,
    on_host: bool = False,
) -> None:
    """Receive these ``Event`` classes from other peers too: their ``@net.handle_event``
    handlers then serve local and remote events alike."""
    default_peer().subscribe_events(
        *event_classes, peers=peers, groups=groups, hubs_only=hubs_only, on_host=on_host
    )


def info(peer: PeerRef | None = None, timeout: float | None = None) -> dict[str, Any]:
    """This peer's info, or ``peer``'s (includes ``subscriptions``: events with subscribers)."""
    local = default_peer()
    if peer is None:
        return local.info_sync()
    result: dict[str, Any] = local.call_sync(peer, "info", timeout=timeout)
    return result


def pass_through(
    *args: Any, peer: PeerRef | None = None, timeout: float | None = None, **kwargs: Any
) -> Any:
    """Return the arguments unchanged, locally or from ``peer``: a round-trip check."""
    local = default_peer()
    if peer is None:
        return args[0] if len(args) == 1 and not kwargs else [list(args), kwargs]
    return local.call_sync(peer, "pass_through", *args, timeout=timeout, **kwargs)


def null(peer: PeerRef | None = None, timeout: float | None = None) -> Any:
    """Ask for the NULL flag; the local NULL flag handler decides the result (None)."""
    local = default_peer()
    if peer is None:
        return local.registry.flags["NULL"]("null", None)
    return local.call_sync(peer, "null", timeout=timeout)


def peers(
    refresh: bool = False,
    groups: Iterable[str] | str | None = None,
    on_host: bool = False,
    hubs_only: bool = False,
) -> list[PeerInfo]:
    """The peers the default peer is linked to (alive), optionally filtered."""
    local = default_peer()
    local._used()
    return local.peers(groups=groups, hubs_only=hubs_only, on_host=on_host, refresh=refresh)


def peer_group(
    name: str | None = None, hubs_only: bool = False, on_host: bool = False
) -> list[PeerInfo]:
    """The linked peers of group ``name`` (default: the default peer's group)."""
    local = default_peer()
    local._used()
    return local.peer_group(name, hubs_only=hubs_only, on_host=on_host)


__all__ = [
    "Flag",
    "connect",
    "default_peer",
    "event",
    "flag",
    "info",
    "null",
    "pass_through",
    "peer_group",
    "peers",
    "publish",
    "start",
    "stop",
    "subscribe",
    "subscribe_events",
]
