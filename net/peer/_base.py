"""State shared by the parts of a ``Peer``, and the helpers they all use.

``Peer`` is assembled in layers, each a module with one job:
``_links`` (connecting, discovery, who is linked) on top of this base,
``_events`` (publishing and subscribing) on top of that, ``_calls`` (remote
calls and ``info``) on top of that, and ``_peer`` (decorators and lifecycle).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import trio

from .._log import RateLimitedLog
from .._settings import Settings
from ..discovery import FoundPeer, MdnsDiscovery
from ..errors import (
    NetError,
    NotRunning,
)
from ..protocol import _messages as m
from ..registry import Registry
from ..subscriptions import SubscriptionTable
from ..sync import Handover
from ._handlers import HandlerThread
from ._link import Link
from ._remote import PeerInfo

if TYPE_CHECKING:
    from ._peer import Peer

log = logging.getLogger("net")

PeerRef = PeerInfo | str | tuple[str, int]


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or len(name) > m.MAX_NAME_LEN:
        raise ValueError(
            f"{what} must be a non-empty string of at most {m.MAX_NAME_LEN} characters"
        )


def _as_tuple(value: Any) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, PeerInfo)) or (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)
    ):
        return (value,)
    return tuple(value)


class PeerBase:
    """The state every part of a ``Peer`` works on (set up by ``Peer.__init__``)."""

    settings: Settings
    max_payload: int
    _pack_args: Callable[[Any, dict[str, Any]], bytes]
    id: str
    name: str
    registry: Registry
    table: SubscriptionTable
    links: dict[str, Link]
    counters: defaultdict[str, int]
    port: int | None
    discovered: dict[str, FoundPeer]
    _autostart: bool
    _rate_log: RateLimitedLog
    _handlers: HandlerThread
    _addr_ids: dict[str, str]
    _resolved: dict[str, Link]
    _self_addrs: set[str]
    _dialing: dict[str, trio.Event]
    _wanted: set[str]
    _token: trio.lowlevel.TrioToken | None
    _loop_thread: int | None
    _nursery: trio.Nursery | None
    _stop_requested: trio.Event | None
    _stopped: trio.Event | None
    _handover: Handover | None
    _hello: m.Hello | None
    _running: bool
    _start_lock: threading.Lock
    _call_limiter: trio.CapacityLimiter | None
    _peers_changed: trio.Event | None
    _discovery: MdnsDiscovery | None

    def start(self) -> PeerBase:
        """Start the peer in the background loop (``Peer.start``)."""
        raise NotImplementedError

    def _on_link_up(self, link: Link) -> None:
        """Called when a link becomes the current one to its peer (``_events`` subscribes)."""

    def _peer_info(self, link: Link) -> PeerInfo:
        r = link.remote
        return PeerInfo(
            r.peer_id,
            r.name,
            link.remote_ip,
            r.port,
            r.group,
            r.hub,
            alive=not link.ended.is_set(),
            local=cast("Peer", self),
        )

    def _require_running(self) -> None:
        if not self._running:
            raise NotRunning(f"{self!r} is not running")

    def _notify_peers_changed(self) -> None:
        if self._peers_changed is not None:
            self._peers_changed.set()
            self._peers_changed = trio.Event()

    async def wait_peers_changed(self) -> None:
        """Wait until a link to some peer opens or closes."""
        assert self._peers_changed is not None
        await self._peers_changed.wait()

    def _check_not_loop_thread(self, what: str) -> None:
        if self._loop_thread == threading.get_ident():
            raise NetError(
                f"{what}() blocks, and was called from the trio thread that runs {self!r}; "
                f"use the async API (await peer.call(...), await peer.aclose()) there"
            )

    def _run_sync(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if not self._running:
            if self._autostart:
                self.start()
            else:
                raise NotRunning(f"{self!r} is not running: start it first (peer.start())")
        self._check_not_loop_thread(getattr(afn, "__name__", "call"))
        try:
            return trio.from_thread.run(afn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise NotRunning(f"{self!r} stopped") from None

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` soon on the peer's loop, from any thread."""
        if self._token is None:
            return
        if self._loop_thread == threading.get_ident():
            fn(*args)
        else:
            try:
                self._token.run_sync_soon(fn, *args)
            except trio.RunFinishedError:
                pass
