"""The ``Peer``: one process's presence on the network.

It composes the parts: settings, the registry (what it offers), the
subscription table (who wants its events), the links (one per remote peer),
the static peer list and discovery, and the handler thread. All its tasks live
in one nursery; ``run`` returns only when they are all gone.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import secrets
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import trio

from .. import protocol as p
from .._log import RateLimitedLog
from .._settings import Settings
from ..bus import Event, EventBus, EventRegistry
from ..discovery import FoundPeer, MdnsDiscovery
from ..errors import (
    NetError,
    UnknownConnection,
)
from ..protocol import _messages as m
from ..registry import INVALID_CONNECTION, NULL, Flag, Registry, SubscriptionSpec
from ..subscriptions import SubscriptionTable
from ..sync import Handover, background
from ._base import PeerRef, _as_tuple, _check_name
from ._bridge import receiver, wire_name
from ._calls import CallsMixin
from ._events import _pack_event_payload
from ._handlers import HandlerThread
from ._link import Link
from ._remote import DeliveryReport, PeerInfo

log = logging.getLogger("net")

F = TypeVar("F", bound=Callable[..., Any])


class Peer(CallsMixin):
    """A peer: serves its connections and events, calls and subscribes to others.

    Use it from trio code with ``async with Peer(...) as peer`` (or
    ``await nursery.start(peer.run)``), or from plain code with
    ``peer.start()`` / ``peer.stop()``, which run it in a background thread.
    Arguments override the ``NET_*`` environment variables.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        port_range: int | None = None,
        group: str | None = None,
        hub: bool | None = None,
        peers: Iterable[str] | None = None,
        settings: Settings | None = None,
        autostart: bool = False,
        **options: Any,
    ) -> None:
        if settings is None:
            settings = Settings.from_env(
                name=name,
                host=host,
                port=port,
                port_range=port_range,
                group=group,
                hub=hub,
                peers=tuple(peers) if peers is not None else None,
                **options,
            )
        self.settings = settings
        #: the largest event payload any peer accepts (frames carry ~300 bytes more)
        self.max_payload = settings.max_frame - 300
        #: packs the arguments of every ``trigger`` (they all run on this peer's loop)
        self._pack_args = p.event_args_packer()
        self.id = secrets.token_hex(8)
        self.name = settings.name
        self.registry = Registry()
        self.table = SubscriptionTable()
        self.links: dict[str, Link] = {}
        # a defaultdict: += on it costs a third of what it costs on a Counter (hot paths)
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.port: int | None = None
        self._autostart = autostart
        self._rate_log = RateLimitedLog(log)
        self._handlers = HandlerThread()
        self._addr_ids: dict[str, str] = {}
        #: string targets (names, addresses, ids) and the live link each resolved to
        self._resolved: dict[str, Link] = {}
        self._self_addrs: set[str] = set()
        self._dialing: dict[str, trio.Event] = {}
        self._wanted: set[str] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self._loop_thread: int | None = None
        self._nursery: trio.Nursery | None = None
        self._stop_requested: trio.Event | None = None
        self._stopped: trio.Event | None = None
        self._handover: Handover | None = None
        self._hello: m.Hello | None = None
        self._running = False
        self._start_lock = threading.Lock()
        self._call_limiter: trio.CapacityLimiter | None = None
        self._peers_changed: trio.Event | None = None
        self._discovery: MdnsDiscovery | None = None
        #: peers mDNS reported and not yet said goodbye: id -> what it said
        self.discovered: dict[str, FoundPeer] = {}
        self._install_builtins()

    def __repr__(self) -> str:
        where = f" port {self.port}" if self.port else ""
        return f"<Peer {self.name}{where} id={self.id[:8]}{' running' if self._running else ''}>"

    def _install_builtins(self) -> None:
        def info() -> dict[str, Any]:
            """Who this peer is, what it offers and who subscribes to what."""
            return self.info()

        def pass_through(*args: Any, **kwargs: Any) -> Any:
            """Return the arguments as received: a round-trip test of the wire."""
            if len(args) == 1 and not kwargs:
                return args[0]
            return [list(args), kwargs]

        def null() -> Flag:
            """Answer with the NULL flag."""
            return Flag(NULL)

        for fn in (info, pass_through, null):
            self.registry.add_connection(fn)
        self.registry.add_flag(NULL, lambda connection, peer: None)

        def invalid_connection(connection: str, peer: PeerInfo, detail: dict[str, Any]) -> Any:
            offered = detail.get("connections")
            offered = [str(c) for c in offered] if isinstance(offered, list) else []
            raise UnknownConnection(connection, f"{peer.name} ({peer.address})", offered)

        self.registry.add_flag(INVALID_CONNECTION, invalid_connection)

    def connect(self, tag: str | None = None) -> Callable[[F], F]:
        """Register a function others can call; ``fn(..., peer=P, timeout=T)`` calls it on P."""
        if callable(tag):  # used as @peer.connect without parentheses
            return self.connect()(tag)

        def decorate(func: F) -> F:
            entry = self.registry.add_connection(func, tag)
            name = entry.name
            if entry.is_async:

                @functools.wraps(func)
                async def async_wrapper(
                    *args: Any,
                    peer: PeerRef | None = None,
                    timeout: float | None = None,
                    **kwargs: Any,
                ) -> Any:
                    if peer is None:
                        return await func(*args, **kwargs)
                    return await self.call(peer, name, *args, timeout=timeout, **kwargs)

                wrapper: Callable[..., Any] = async_wrapper
            else:

                @functools.wraps(func)
                def sync_wrapper(
                    *args: Any,
                    peer: PeerRef | None = None,
                    timeout: float | None = None,
                    **kwargs: Any,
                ) -> Any:
                    if peer is None:
                        return func(*args, **kwargs)
                    return self.call_sync(peer, name, *args, timeout=timeout, **kwargs)

                wrapper = sync_wrapper
            wrapper.connection_name = name  # type: ignore[attr-defined]
            self._used()
            return wrapper  # type: ignore[return-value]

        return decorate

    def event(self, name: str) -> Callable[[F], F]:
        """Register an event trigger: the function returns ``(args, kwargs)``, which are
        sent to every subscriber of ``name`` and returned to the caller."""
        _check_name(name, "event name")

        def decorate(func: F) -> F:
            self.registry.add_event(name, func)
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    out_args, out_kwargs, payload = _pack_event_payload(
                        name, await func(*args, **kwargs)
                    )
                    await self._trigger_payload(name, payload)
                    return out_args, out_kwargs

                async def async_report(*args: Any, **kwargs: Any) -> DeliveryReport:
                    out_args, out_kwargs, payload = _pack_event_payload(
                        name, await func(*args, **kwargs)
                    )
                    report = await self._trigger_payload(name, payload, report=True)
                    assert report is not None
                    report.args, report.kwargs = out_args, out_kwargs
                    return report

                wrapper: Callable[..., Any] = async_wrapper
                wrapper.report = async_report  # type: ignore[attr-defined]
            else:

                @functools.wraps(func)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    out_args, out_kwargs, payload = _pack_event_payload(name, func(*args, **kwargs))
                    if len(payload) > self.max_payload:
                        self._check_payload_size(name, payload)  # raises
                    self._trigger_from_thread(name, payload)
                    return out_args, out_kwargs

                def sync_report(*args: Any, **kwargs: Any) -> DeliveryReport:
                    out_args, out_kwargs, payload = _pack_event_payload(name, func(*args, **kwargs))
                    self._check_payload_size(name, payload)
                    report = self._trigger_from_thread(name, payload, report=True)
                    assert report is not None
                    report.args, report.kwargs = out_args, out_kwargs
                    return report

                wrapper = sync_wrapper
                wrapper.report = sync_report  # type: ignore[attr-defined]
            wrapper.event_name = name  # type: ignore[attr-defined]
            self._used()
            return wrapper  # type: ignore[return-value]

        return decorate

    def subscribe(
        self,
        name: str,
        peers: Iterable[PeerRef] | PeerRef | None = None,
        groups: Iterable[str] | str | None = None,
        hubs_only: bool = False,
        on_host: bool = False,
    ) -> Callable[[F], F]:
        """Run the decorated handler for every ``name`` event of every matching peer,
        known now or found later. With no ``groups`` and no ``peers``, only peers of
        this peer's own group match."""
        _check_name(name, "event name")
        peer_list = _as_tuple(peers)
        group_list = _as_tuple(groups)

        def decorate(func: F) -> F:
            try:
                params = inspect.signature(func).parameters
                wants_sender = (
                    "sender" in params and params["sender"].kind == inspect.Parameter.KEYWORD_ONLY
                )
            except (TypeError, ValueError):
                wants_sender = False
            spec = SubscriptionSpec(
                name,
                func,
                inspect.iscoroutinefunction(func),
                peer_list,
                group_list,
                hubs_only,
                on_host,
                wants_sender,
            )
            self.registry.add_subscription(spec)
            func.subscription = spec  # type: ignore[attr-defined]
            self._used()
            if self._running:
                self._call_in_loop(self._subscribe_everywhere, name)
            return func

        return decorate

    def subscribe_events(
        self,
        *event_classes: type[Event],
        peers: Iterable[PeerRef] | PeerRef | None = None,
        groups: Iterable[str] | str | None = None,
        hubs_only: bool = False,
        on_host: bool = False,
        registry: EventRegistry | None = None,
        bus: EventBus | None = None,
    ) -> None:
        """Receive the ``Event`` classes published by matching peers.

        Remote events are rebuilt as instances of the same class and dispatched to
        the handlers of ``registry`` (default: the one ``@net.handle_event`` uses),
        or enqueued on ``bus``, with the sending ``PeerInfo`` as ``ctx.peer`` and as
        the origin. A handler registered once serves local and remote events.
        """
        for event_class in event_classes:
            if not (isinstance(event_class, type) and issubclass(event_class, Event)):
                raise TypeError(f"subscribe_events takes net.Event classes, not {event_class!r}")
            self.subscribe(wire_name(event_class), peers, groups, hubs_only, on_host)(
                receiver(self, registry, bus)
            )

    def flag(self, name: str) -> Callable[[F], F]:
        """Register the handler run when a remote answers a call with flag ``name``.

        It is called as ``handler(connection, peer)`` and its return value is what
        the call returns."""
        _check_name(name, "flag name")

        def decorate(func: F) -> F:
            self.registry.add_flag(name, func)
            return func

        return decorate

    def _used(self) -> None:
        if self._autostart and not self._running:
            self.start()

    @property
    def running(self) -> bool:
        return self._running

    async def __aenter__(self) -> Peer:
        self._cm = trio.open_nursery()
        nursery = await self._cm.__aenter__()
        try:
            await nursery.start(self.run)
        except BaseException:
            if not await self._cm.__aexit__(*sys.exc_info()):
                raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self.request_stop()
        return await self._cm.__aexit__(*exc_info)

    def request_stop(self) -> None:
        """Ask a running peer to say goodbye and stop (from its own loop)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def aclose(self) -> None:
        """Stop the peer (goodbyes sent) and wait until it is stopped."""
        if self._stopped is None:
            return
        self.request_stop()
        await self._stopped.wait()

    async def run(self, *, task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until ``request_stop``/``aclose`` or cancellation, then say bye to all."""
        if self._running or (self._stopped is not None and not self._stopped.is_set()):
            raise NetError(f"{self!r} is already running")
        self._token = trio.lowlevel.current_trio_token()
        self._loop_thread = threading.get_ident()
        self._stop_requested = trio.Event()
        self._stopped = trio.Event()
        self._peers_changed = trio.Event()
        self._call_limiter = trio.CapacityLimiter(32)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                listeners = await self._bind()
                self.port = listeners[0].socket.getsockname()[1]
                s = self.settings
                advertised = "" if s.host in ("0.0.0.0", "::", "") else s.host
                self._hello = m.Hello(
                    m.PROTOCOL_VERSION,
                    self.id,
                    self.name,
                    s.group,
                    s.hub,
                    advertised,
                    self.port,
                    s.max_frame,
                )
                await nursery.start(
                    functools.partial(
                        trio.serve_listeners,
                        self._handle_incoming,
                        listeners,
                        handler_nursery=nursery,
                    )
                )
                self._handover = Handover(self._token)
                nursery.start_soon(self._drain_handover)
                if s.discovery != "off":
                    for address in s.peers:
                        self.want(address)
                if s.discovery == "mdns":
                    await self._start_discovery(nursery)
                self._running = True
                log.info(
                    "peer %s (id %s) listening on port %d, group %r%s",
                    self.name,
                    self.id[:8],
                    self.port,
                    s.group,
                    ", hub" if s.hub else "",
                )
                task_status.started(self)
                try:
                    await self._stop_requested.wait()
                finally:
                    self._running = False
                    if self._handover is not None:
                        self._handover.close()
                    with trio.CancelScope(shield=True):
                        await self._say_goodbye(2.0)
                    nursery.cancel_scope.cancel()
        finally:
            self._running = False
            self._nursery = None
            await trio.to_thread.run_sync(self._handlers.stop)
            self._stopped.set()
            log.info("peer %s stopped", self.name)

    async def _bind(self) -> list[trio.SocketListener]:
        s = self.settings
        host = None if s.host in ("", "*") else s.host
        if s.port == 0:
            return await trio.open_tcp_listeners(0, host=host)
        last: OSError | None = None
        for port in range(s.port, min(s.port + s.port_range, 65536)):
            try:
                return await trio.open_tcp_listeners(port, host=host)
            except OSError as exc:
                last = exc
        raise NetError(
            f"no free port in {s.port}..{min(s.port + s.port_range, 65536) - 1} on {s.host} "
            f"(NET_PORT={s.port}, NET_PORT_RANGE={s.port_range}): {last}"
        )

    async def _say_goodbye(self, timeout: float) -> None:
        links = list(self.links.values())
        for link in links:
            link.close("shutdown")
        with trio.move_on_after(timeout):
            for link in links:
                await link.ended.wait()

    def start(self) -> Peer:
        """Run this peer in the background trio thread (for plain, synchronous code)."""
        with self._start_lock:
            if self._running:
                return self
            loop = background()
            if loop.in_loop_thread():
                raise NetError("Peer.start() cannot be called from the background loop itself")
            loop.run(loop.nursery.start, self.run)
            atexit.register(self._stop_at_exit)
        return self

    def stop(self) -> None:
        """Stop a peer started with ``start()``: goodbyes are sent, tasks end."""
        if not self._running or self._token is None:
            return
        self._check_not_loop_thread("stop")
        try:
            trio.from_thread.run(self.aclose, trio_token=self._token)
        except trio.RunFinishedError:
            pass

    def _stop_at_exit(self) -> None:
        try:
            self.stop()
        except Exception:  # pragma: no cover - interpreter shutting down
            pass
