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
import os
import random
import secrets
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import trio

from .. import protocol as p
from .._log import RateLimitedLog
from .._settings import Settings, parse_address
from .._version import __version__
from ..bus import Event, EventBus, EventRegistry
from ..discovery import Advert, FoundPeer, MdnsDiscovery, parse_interfaces
from ..errors import (
    CallTimeout,
    ConfigError,
    NetError,
    NotRunning,
    PeerNotFound,
    PeerUnavailable,
    ProtocolError,
    RemoteError,
    RequestRejected,
    UnknownConnection,
)
from ..protocol import _messages as m
from ..registry import INVALID_CONNECTION, NULL, Flag, Registry, SubscriptionSpec
from ..subscriptions import SubscriptionTable
from ..sync import Handover, background
from ._bridge import audience_names, pack_event, receiver, wire_name
from ._handlers import HandlerThread
from ._link import Link, handshake
from ._remote import DeliveryReport, PeerInfo

log = logging.getLogger("net")

F = TypeVar("F", bound=Callable[..., Any])
PeerRef = PeerInfo | str | tuple[str, int]

_MAX_TEXT = m.MAX_TEXT_LEN - 1


class _SelfConnection(Exception):
    """We dialed our own server."""


class _Callback:
    """A ``task_status`` that calls ``fn`` when the link is up."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def started(self, value: Any = None) -> None:
        self.fn(value)


class _StartedOnce:
    """A ``task_status`` wrapper that remembers whether ``started`` was called."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self.inner = inner
        self.started_ = False

    def started(self, value: Any = None) -> None:
        self.started_ = True
        self.inner.started(value)


def _exception_type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _pack_event_payload(event: str, result: Any) -> tuple[tuple[Any, ...], dict[str, Any], bytes]:
    """Check an ``@event`` function's ``(args, kwargs)`` and pack them once."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(
            f"@net.event({event!r}) functions must return (args, kwargs), got {type(result).__name__}"
        )
    args, kwargs = result
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"event {event!r}: args must be a tuple or list, got {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"event {event!r}: kwargs must be a dict with string keys")
    try:
        payload = p.pack_event_args(args, kwargs)
    except TypeError as exc:
        raise TypeError(f"event {event!r} cannot be sent: {exc}") from None
    return tuple(args), kwargs, payload


class Peer:
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
        self.id = secrets.token_hex(8)
        self.name = settings.name
        self.registry = Registry()
        self.table = SubscriptionTable()
        self.links: dict[str, Link] = {}
        self.counters: Counter[str] = Counter()
        self.port: int | None = None
        self._autostart = autostart
        self._rate_log = RateLimitedLog(log)
        self._handlers = HandlerThread()
        self._addr_ids: dict[str, str] = {}
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

    # --- built-in connections -------------------------------------------------

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

    # --- decorators -----------------------------------------------------------

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
                    self._check_payload_size(name, payload)
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

    # --- lifecycle --------------------------------------------------------------

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

    # --- the synchronous face -----------------------------------------------------

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

    def call_sync(
        self,
        target: PeerRef,
        connection: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Blocking form of ``call`` for plain code."""
        return self._run_sync(
            functools.partial(self.call, target, connection, *args, timeout=timeout, **kwargs)
        )

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

    # --- links ------------------------------------------------------------------------

    def want(self, address: str) -> None:
        """Keep a link to ``address`` ("host:port"), reconnecting with backoff while wanted."""
        parse_address(address)
        if address in self._wanted or self._nursery is None:
            return
        self._wanted.add(address)
        self._nursery.start_soon(self._keep_connected, address)

    def unwant(self, address: str) -> None:
        self._wanted.discard(address)

    # --- discovery ----------------------------------------------------------------------

    async def _start_discovery(self, nursery: trio.Nursery) -> None:
        s = self.settings
        assert self.port is not None
        try:
            choice = parse_interfaces(s.interfaces)
            advert = Advert(self.id, self.name, s.group, s.hub, self.port, m.PROTOCOL_VERSION)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._discovery = MdnsDiscovery(advert, choice)
        try:
            await nursery.start(self._discovery.run, self._on_found, self._on_lost)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _on_found(self, found: FoundPeer) -> None:
        """mDNS reported a peer (or new facts about one): keep a link to it."""
        if found.peer_id == self.id:
            return
        known = found.peer_id in self.discovered
        self.discovered[found.peer_id] = found
        if found.protocol_version != m.PROTOCOL_VERSION:
            self._rate_log.warning(
                "version:" + found.peer_id,
                "discovered peer %s speaks protocol version %d, this peer %d: not linking",
                found.name, found.protocol_version, m.PROTOCOL_VERSION,
            )
            return
        if not known:
            log.info("discovered peer %s (%s) at %s", found.name, found.peer_id[:8],
                     ", ".join(f"{a}:{found.port}" for a in found.addresses))
            assert self._nursery is not None
            self._nursery.start_soon(self._keep_discovered, found.peer_id)

    def _on_lost(self, peer_id: str) -> None:
        found = self.discovered.pop(peer_id, None)
        if found is not None:
            log.info("peer %s (%s) said goodbye on mDNS", found.name, peer_id[:8])
            self._notify_peers_changed()

    async def _keep_discovered(self, peer_id: str) -> None:
        """Keep a link to a discovered peer while mDNS lists it.

        Both sides discover each other; the one with the smaller id dials at once,
        the other only if no link appeared after a moment (so two links are rare,
        and an asymmetric network still gets one).
        """
        s = self.settings
        backoff = s.reconnect_min
        first = True
        while peer_id in self.discovered:
            link = self.links.get(peer_id)
            if link is not None:
                await link.ended.wait()
                first = False
                continue
            if first and self.id > peer_id:
                with trio.move_on_after(1.0):
                    while peer_id not in self.links and peer_id in self.discovered:
                        await self.wait_peers_changed()
                first = False
                continue
            first = False
            found = self.discovered.get(peer_id)
            if found is None:
                return
            started = time.monotonic()
            for host in found.addresses:
                address = f"{host}:{found.port}"
                try:
                    await self._connect(address)
                    break
                except _SelfConnection:
                    return
                except (PeerUnavailable, ProtocolError, OSError) as exc:
                    log.debug("cannot reach discovered peer %s at %s: %s", found.name, address, exc)
                except Exception:
                    log.exception("internal error on the link to %s", address)
            if time.monotonic() - started > 5.0:
                backoff = s.reconnect_min
            if peer_id in self.links:
                continue
            await trio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, s.reconnect_max)

    def refresh(self) -> None:
        """Ask the network again who is there (a new mDNS query)."""
        if self._discovery is not None:
            self._discovery.refresh()

    async def _keep_connected(self, address: str) -> None:
        s = self.settings
        backoff = s.reconnect_min
        while address in self._wanted and address not in self._self_addrs:
            link = self._link_for_address(address)
            if link is not None:
                await link.ended.wait()
                continue
            if address in self._dialing:  # a call is dialing it right now: use that
                await self._dialing[address].wait()
                continue
            started = time.monotonic()
            done = self._dialing[address] = trio.Event()

            def release(_: object = None, done: trio.Event = done) -> None:
                if self._dialing.get(address) is done:
                    del self._dialing[address]
                done.set()

            try:
                await self._connect(address, task_status=_Callback(release))
            except _SelfConnection:
                log.debug("%s is this peer's own address; not dialing it", address)
                return
            except (PeerUnavailable, ProtocolError, OSError) as exc:
                log.debug("cannot reach %s: %s (retrying in %.2f s)", address, exc, backoff)
            except Exception:
                log.exception("internal error on the link to %s; reconnecting", address)
            finally:
                release()
            if time.monotonic() - started > 5.0:
                backoff = s.reconnect_min  # the link lasted: start over quickly
            await trio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, s.reconnect_max)

    def _link_for_address(self, address: str) -> Link | None:
        rid = self._addr_ids.get(address)
        if rid is not None:
            link = self.links.get(rid)
            if link is not None:
                return link
        for link in self.links.values():
            if link.address == address:
                return link
        return None

    async def _connect(
        self, address: str, *, task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Dial ``address``, run the link until it ends (task_status gets the live link)."""
        host, port = parse_address(address)
        s = self.settings
        try:
            with trio.fail_after(s.handshake_timeout):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            raise PeerUnavailable(f"cannot connect to {address}: {exc or 'timed out'}") from None
        await self._run_connection(stream, dialed=True, address=address, task_status=task_status)

    async def _handle_incoming(self, stream: trio.SocketStream) -> None:
        try:
            await self._run_connection(stream, dialed=False, address=None)
        except (PeerUnavailable, ProtocolError, _SelfConnection) as exc:
            log.debug("incoming connection ended: %s", exc)
        except Exception:
            log.exception("internal error on an incoming connection; the peer keeps serving")

    async def _run_connection(
        self,
        stream: trio.SocketStream,
        *,
        dialed: bool,
        address: str | None,
        task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        s = self.settings
        assert self._hello is not None
        try:
            try:
                conn, hello, rest = await handshake(
                    stream, self._hello, s.handshake_timeout, s.max_in_flight
                )
            except ProtocolError as exc:
                log.warning("handshake with %s failed: %s", address or _peername(stream), exc)
                self.counters["protocol_errors"] += 1
                raise
            if hello.peer_id == self.id:
                if address:
                    self._self_addrs.add(address)
                raise _SelfConnection()
            if address:
                self._addr_ids[address] = hello.peer_id
            remote_ip, local_ip = _peername(stream), _sockname(stream)
            link = Link(
                self, stream, conn, hello, dialed=dialed, remote_ip=remote_ip, local_ip=local_ip
            )
            current = self._register(link)
            if current is not link:
                task_status.started(current)
                with trio.move_on_after(0.5):
                    await stream.send_all(p.encode(m.Bye("duplicate")))
                return
            task_status.started(link)
            self._link_up(link)
            try:
                await link.run(rest)
            finally:
                self._link_down(link)
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(0.2):
                await stream.aclose()
            raise
        else:
            with trio.CancelScope(shield=True), trio.move_on_after(0.2):
                await stream.aclose()

    def _register(self, link: Link) -> Link:
        """Make ``link`` the current link to its peer, unless a better one exists.

        Two peers that dial each other at once end up with two connections; both
        sides keep the same one: the one dialed by the smaller id (or the newer
        one, if both were dialed by the same side, which means the older is dead).
        """
        existing = self.links.get(link.remote_id)
        if existing is not None and not existing.ended.is_set():
            new_dialer = self.id if link.dialed else link.remote_id
            old_dialer = self.id if existing.dialed else existing.remote_id
            keep_new = new_dialer == old_dialer or new_dialer == min(self.id, link.remote_id)
            if not keep_new:
                return existing
            existing.close("replaced")
        self.links[link.remote_id] = link
        return link

    def _link_up(self, link: Link) -> None:
        log.info("linked to peer %s", link.describe())
        self.counters["links_opened"] += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._subscribe_link, link)
        self._notify_peers_changed()

    def _link_down(self, link: Link) -> None:
        if self.links.get(link.remote_id) is not link:
            return  # replaced by a newer link: nothing is lost
        del self.links[link.remote_id]
        self.counters["links_lost"] += 1
        events = self.table.prune(link.remote_id, link.end_reason, link.name)
        if events:
            log.info(
                "pruned subscriber %s (%s) from %s",
                link.describe(),
                link.end_reason,
                ", ".join(events),
            )
        if self._stop_requested is None or self._stop_requested.is_set():
            log.debug("link to %s closed: this peer is stopping", link.describe())
        elif link.remote_said_bye:
            log.info("peer %s left: %s", link.describe(), link.end_reason)
        else:
            log.warning("lost peer %s: %s", link.describe(), link.end_reason)
        self._notify_peers_changed()

    def _notify_peers_changed(self) -> None:
        if self._peers_changed is not None:
            self._peers_changed.set()
            self._peers_changed = trio.Event()

    async def wait_peers_changed(self) -> None:
        """Wait until a link to some peer opens or closes."""
        assert self._peers_changed is not None
        await self._peers_changed.wait()

    async def wait_for_peers(
        self, count: int = 1, timeout: float = 10.0, **filters: Any
    ) -> list[PeerInfo]:
        """Wait until at least ``count`` peers matching ``filters`` (as in ``peers``) are linked."""
        with trio.fail_after(timeout):
            while True:
                found = self.peers(**filters)
                if len(found) >= count:
                    return found
                await self.wait_peers_changed()

    async def _link_to(self, target: PeerRef) -> Link:
        """The live link to ``target``, dialing it if needed."""
        address: str
        if isinstance(target, PeerInfo):
            link = self.links.get(target.id)
            if link is not None:
                return link
            address = target.address
        elif isinstance(target, tuple) and len(target) == 2:
            host = target[0]
            address = f"[{host}]:{target[1]}" if ":" in host else f"{host}:{target[1]}"
        elif isinstance(target, str):
            link = self.links.get(target)
            if link is not None:
                return link
            named = [lk for lk in self.links.values() if lk.name == target]
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise PeerNotFound(
                    f"{len(named)} peers are named {target!r}: "
                    f"{', '.join(lk.address for lk in named)}; use an address or id"
                )
            try:
                parse_address(target)
            except ValueError:
                known = ", ".join(sorted(lk.name for lk in self.links.values())) or "(none)"
                raise PeerNotFound(f"no peer named {target!r}; linked peers: {known}") from None
            address = target
        else:
            raise TypeError(
                f"peer= takes a PeerInfo, 'host:port', (host, port) or a name, not {target!r}"
            )
        link = self._link_for_address(address)
        if link is not None:
            return link
        while address in self._dialing:  # someone is dialing it already
            await self._dialing[address].wait()
            link = self._link_for_address(address)
            if link is not None:
                return link
        done = self._dialing[address] = trio.Event()
        try:
            assert self._nursery is not None
            link = await self._nursery.start(self._connect_logged, address)
        finally:
            del self._dialing[address]
            done.set()
        return link

    async def _connect_logged(self, address: str, *, task_status: trio.TaskStatus[Link]) -> None:
        """Dial on demand: errors before the link is up go to the caller; after
        that, the link's end is only logged (it must not take the peer down)."""
        status = _StartedOnce(task_status)
        try:
            await self._connect(address, task_status=status)
        except _SelfConnection:
            if not status.started_:
                raise PeerUnavailable(f"{address} is this peer itself") from None
        except (PeerUnavailable, ProtocolError) as exc:
            if not status.started_:
                raise
            log.debug("link to %s ended: %s", address, exc)
        except Exception:
            if not status.started_:
                raise
            log.exception("internal error on the link to %s; the peer keeps serving", address)

    # --- calls ------------------------------------------------------------------------

    async def call(
        self,
        target: PeerRef,
        connection: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``connection`` on ``target`` with these arguments and return its result.

        A remote exception raises ``RemoteError``; no answer within ``timeout``
        (default ``NET_CALL_TIMEOUT``) raises ``CallTimeout``; arguments msgpack
        cannot carry raise ``TypeError`` before anything is sent.
        """
        self._require_running()
        _check_name(connection, "connection name")
        limit = self.settings.call_timeout if timeout is None else timeout
        # one plain cancel scope bounds dialing and the answer (fail_after adds a
        # generator-based context manager around the same thing)
        with trio.CancelScope(deadline=trio.current_time() + limit) as scope:
            link = await self._link_to(target)
            reply = await link.request(lambda rid: m.Call(rid, connection, list(args), kwargs), None)
        if scope.cancelled_caught:
            raise CallTimeout(
                f"{connection!r} on {_describe_target(target)} did not answer within {limit:g} s"
            )
        return await self._interpret_reply(reply, link, connection)

    async def _interpret_reply(self, reply: m.Message, link: Link, connection: str) -> Any:
        if isinstance(reply, m.Result):
            return reply.value
        if isinstance(reply, m.Flag):
            handler = self.registry.flags.get(reply.name)
            if handler is None:
                raise RequestRejected(
                    "flag",
                    f"{connection!r} answered with flag {reply.name!r}, "
                    f"which has no handler here (register one with @net.flag)",
                    link.describe(),
                )
            info = self._peer_info(link)
            params = _positional_count(handler)
            result = (
                handler(connection, info, reply.detail)
                if params >= 3
                else handler(connection, info)
            )
            if inspect.isawaitable(result):
                result = await result
            return result
        assert isinstance(reply, m.Error)
        if reply.code == m.E_EXCEPTION:
            raise RemoteError(reply.type_name, reply.message, reply.traceback, link.describe())
        raise RequestRejected(reply.code, reply.message, link.describe())

    async def _serve_call(self, link: Link, msg: m.Call) -> None:
        rid = msg.request_id
        entry = self.registry.connections.get(msg.connection)
        self.counters["calls_served"] += 1
        if entry is None:
            self.counters["calls_unknown"] += 1
            reply: m.Message = m.Flag(
                rid, INVALID_CONNECTION, {"connections": sorted(self.registry.connections)}
            )
        else:
            try:
                if entry.is_async:
                    result = await entry.func(*msg.args, **msg.kwargs)
                else:
                    # a worker thread (never the loop), at most 32 at once per peer:
                    # like trio.to_thread.run_sync(abandon_on_cancel=True), cheaper
                    from ._handlers import call_threads

                    assert self._call_limiter is not None
                    result = await call_threads.run(
                        functools.partial(entry.func, *msg.args, **msg.kwargs),
                        self._call_limiter,
                    )
            except Exception as exc:
                self.counters["calls_failed"] += 1
                log.debug(
                    "connection %r raised for %s", msg.connection, link.describe(), exc_info=True
                )
                reply = m.Error(
                    rid,
                    m.E_EXCEPTION,
                    _exception_type_name(exc)[:_MAX_TEXT],
                    str(exc)[:_MAX_TEXT],
                    traceback.format_exc()[-_MAX_TEXT:],
                )
            else:
                if isinstance(result, Flag):
                    reply = m.Flag(rid, result.name, result.detail)
                else:
                    reply = m.Result(rid, result)
        try:
            link.send(reply, direct=True)  # someone waits for it: no writer round
        except PeerUnavailable:
            pass
        except (TypeError, ValueError) as exc:
            code = m.E_FRAME_TOO_LARGE if isinstance(exc, p.FrameTooLarge) else m.E_UNSERIALISABLE
            log.warning(
                "result of %r for %s cannot be sent: %s", msg.connection, link.describe(), exc
            )
            try:
                link.send(m.Error(rid, code, type(exc).__name__, str(exc)[:_MAX_TEXT]))
            except PeerUnavailable:
                pass

    def _serve_request(self, link: Link, msg: m.Message) -> None:
        try:
            self._answer_request(link, msg)
        except PeerUnavailable:
            pass  # the link is closing: nobody to answer

    def _answer_request(self, link: Link, msg: m.Message) -> None:
        if isinstance(msg, m.Info):
            link.send(m.Result(msg.request_id, self.info()))
            return
        assert isinstance(msg, m.Subscribe)  # Unsubscribe is a subclass
        if msg.kind == m.SUBSCRIBE:
            if self.table.add(msg.event, link.remote_id):
                log.info("subscriber %s added for event %r", link.describe(), msg.event)
            link.send(m.Result(msg.request_id, True))
        else:
            existed = self.table.remove(msg.event, link.remote_id, link.name)
            if existed:
                log.info("subscriber %s unsubscribed from %r", link.describe(), msg.event)
            link.send(m.Result(msg.request_id, existed))

    # --- events: publishing -------------------------------------------------------

    async def trigger(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Send ``event`` with these arguments to every subscriber (trio code).

        Unserialisable values raise ``TypeError`` and nothing is sent; a slow
        subscriber makes this wait up to ``NET_BLOCK_TIMEOUT`` (policy "block")
        and then its events are dropped, counted and logged.
        """
        _, _, payload = _pack_event_payload(event, (args, kwargs))
        await self._trigger_payload(event, payload)

    async def trigger_with_report(
        self,
        event: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> DeliveryReport:
        """Send ``event`` and wait (up to ``timeout``) for every subscriber to acknowledge it."""
        out_args, out_kwargs, payload = _pack_event_payload(event, (tuple(args), kwargs or {}))
        report = await self._trigger_payload(event, payload, report=True, timeout=timeout)
        assert report is not None
        report.args, report.kwargs = out_args, out_kwargs
        return report

    async def _trigger_payload(
        self, event: str, payload: bytes, *, report: bool = False, timeout: float = 5.0
    ) -> DeliveryReport | None:
        pending = await self._enqueue_trigger(event, payload, report)
        if not report:
            return None
        return await self._collect_report(event, pending, timeout)

    async def _enqueue_trigger(
        self, event: str, payload: bytes, ack: bool, audience: tuple[str, ...] | None = None
    ) -> list[tuple[Link, int, Any, str | None]]:
        """Queue one frame per subscriber, in order. Returns what a report waits on.

        ``audience``: the subscribers to send to, if not those of ``event``.
        """
        self.counters["events_triggered"] += 1
        self._check_payload_size(event, payload)
        subscribers = self.table.subscribers(event) if audience is None else audience
        outcome: list[tuple[Link, int, Any, str | None]] = []
        if not subscribers:
            log.debug("event %r has no subscribers", event)
            return outcome
        flush = False
        links = self.links
        for sid in subscribers:
            link = links.get(sid)
            if link is None or not link.accepting:
                continue  # ended or saying bye: it is being pruned
            link.seq += 1
            rid, waiter = link.begin_request() if ack else (0, None)
            try:
                data = link.conn.trigger_bytes(rid, event, link.seq, payload)
            except p.FrameTooLarge as exc:
                self._count_drop(link, event, str(exc))
                outcome.append((link, rid, None, str(exc)))
                continue
            if link.try_queue_event(data):
                if link.needs_flush():
                    flush = True
                if ack:  # only a report looks at the outcome
                    outcome.append((link, rid, waiter, None))
                continue
            if self.settings.queue_policy == "block" and await link.queue_event_blocking(
                data, self.settings.block_timeout
            ):
                outcome.append((link, rid, waiter, None))
                continue
            why = "subscriber queue full"
            self._count_drop(link, event, why)
            outcome.append((link, rid, None, why))
        if flush:
            await trio.lowlevel.checkpoint()
        return outcome

    def _check_payload_size(self, event: str, payload: bytes) -> None:
        """An event too large for any peer raises at the call site (sync callers too)."""
        if len(payload) > self.settings.max_frame - 300:
            raise ValueError(
                f"event {event!r} is {len(payload)} bytes; the limit is about "
                f"{self.settings.max_frame} bytes (NET_MAX_FRAME)"
            )

    def _count_drop(self, link: Link, event: str, why: str) -> None:
        link.events_dropped += 1
        self.counters["events_dropped"] += 1
        self._rate_log.warning(
            "drop:" + link.remote_id,
            "dropped event %r for subscriber %s: %s (%d dropped for it so far)",
            event,
            link.describe(),
            why,
            link.events_dropped,
        )

    async def _collect_report(
        self, event: str, pending: list[tuple[Link, int, Any, str | None]], timeout: float
    ) -> DeliveryReport:
        report = DeliveryReport(event)

        async def wait_one(link: Link, rid: int, waiter: Any) -> None:
            try:
                await link.wait_reply(rid, waiter, timeout)
                report.delivered.append(self._peer_info(link))
            except CallTimeout:
                report.failed[link.remote_id] = f"no acknowledgement within {timeout:g} s"
            except PeerUnavailable as exc:
                report.failed[link.remote_id] = str(exc)
                report.pruned.append(link.remote_id)

        async with trio.open_nursery() as nursery:
            for link, rid, waiter, error in pending:
                if error is not None:
                    report.failed[link.remote_id] = error
                    if rid:
                        link._pending.pop(rid, None)
                else:
                    nursery.start_soon(wait_one, link, rid, waiter)
        return report

    def _trigger_from_thread(
        self, event: str, payload: bytes, report: bool = False
    ) -> DeliveryReport | None:
        """Hand a trigger from plain code to the loop, in order, in batches."""
        if not self._running:
            if self._autostart:
                self.start()
            else:
                self.counters["events_not_running"] += 1
                log.debug("event %r not sent: %r is not running", event, self)
                if report:
                    return DeliveryReport(event)
                return None
        assert self._handover is not None
        in_loop = self._loop_thread == threading.get_ident()
        if not report:
            try:
                self._handover.put((event, payload, None), block=not in_loop)
            except trio.RunFinishedError:
                self.counters["events_not_running"] += 1
            return None
        self._check_not_loop_thread("report")
        import concurrent.futures

        future: concurrent.futures.Future[DeliveryReport] = concurrent.futures.Future()
        self._handover.put((event, payload, future))
        return future.result()

    async def _drain_handover(self) -> None:
        assert self._handover is not None and self._nursery is not None
        async for batch in self._handover.batches():
            for event, payload, future in batch:
                try:
                    pending = await self._enqueue_trigger(event, payload, future is not None)
                except Exception as exc:  # pragma: no cover - checked at the call site
                    log.exception("event %r could not be queued", event)
                    if future is not None:
                        future.set_exception(exc)
                    continue
                if future is not None:
                    self._nursery.start_soon(self._finish_report, event, pending, future)

    async def _finish_report(self, event: str, pending: Any, future: Any) -> None:
        try:
            future.set_result(await self._collect_report(event, pending, 5.0))
        except Exception as exc:  # pragma: no cover
            future.set_exception(exc)

    # --- typed events (net.Event) across the network ----------------------------------

    async def publish(self, event: Event) -> None:
        """Send an ``Event`` instance to the peers that subscribed to its class or a base
        class (``subscribe_events``). A field msgpack can't carry raises ``TypeError``
        here and nothing is sent."""
        _, payload = pack_event(event)
        # each subscriber gets it once, under the most specific class it subscribed to
        assigned: set[str] = set()
        for wire in audience_names(type(event)):
            audience = tuple(sid for sid in self.table.subscribers(wire) if sid not in assigned)
            if audience:
                assigned.update(audience)
                await self._enqueue_trigger(wire, payload, False, audience)

    def publish_sync(self, event: Event) -> None:
        """Blocking form of ``publish`` for plain code."""
        pack_event(event)  # raise TypeError in the caller's thread, before anything is sent
        self._run_sync(self.publish, event)

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

    # --- events: subscribing --------------------------------------------------------

    def _spec_matches(self, spec: SubscriptionSpec, link: Link) -> bool:
        if spec.peers is not None and not any(self._ref_matches(ref, link) for ref in spec.peers):
            return False
        groups = spec.groups
        if groups is None and spec.peers is None:
            groups = (self.settings.group,)
        if groups is not None and link.remote.group not in groups:
            return False
        if spec.hubs_only and not link.remote.hub:
            return False
        return not (spec.on_host and not link.on_host)

    def _ref_matches(self, ref: Any, link: Link) -> bool:
        if isinstance(ref, PeerInfo):
            return ref.id == link.remote_id or ref.address == link.address
        if isinstance(ref, tuple):
            ref = f"{ref[0]}:{ref[1]}"
        return (
            ref in (link.remote_id, link.name, link.address)
            or self._addr_ids.get(ref) == link.remote_id
        )

    async def _subscribe_link(self, link: Link) -> None:
        """Send SUBSCRIBE for every local subscription that wants events from ``link``."""
        events = [
            event
            for event, specs in list(self.registry.subscriptions.items())
            if any(self._spec_matches(spec, link) for spec in specs)
        ]
        for event in events:
            await self._subscribe_one(link, event)

    async def _subscribe_one(self, link: Link, event: str) -> None:
        try:
            await link.request(lambda rid: m.Subscribe(rid, event), self.settings.call_timeout)
            log.debug("subscribed to %r on %s", event, link.describe())
        except (PeerUnavailable, CallTimeout) as exc:
            log.debug("subscribing to %r on %s failed: %s", event, link.describe(), exc)

    def _subscribe_everywhere(self, event: str) -> None:
        assert self._nursery is not None
        for link in list(self.links.values()):
            if any(
                self._spec_matches(spec, link)
                for spec in self.registry.subscriptions.get(event, ())
            ):
                self._nursery.start_soon(self._subscribe_one, link, event)

    async def unsubscribe(self, handler: Callable[..., Any]) -> None:
        """Remove a handler registered with ``subscribe``; peers no longer needed are told."""
        spec: SubscriptionSpec | None = getattr(handler, "subscription", None)
        if spec is None or not self.registry.remove_subscription(spec):
            raise NetError(f"{handler!r} is not a subscribed handler")
        for link in list(self.links.values()):
            still = any(
                self._spec_matches(s, link) for s in self.registry.subscriptions.get(spec.event, ())
            )
            if not still and self._spec_matches(spec, link):
                try:
                    await link.request(
                        lambda rid: m.Unsubscribe(rid, spec.event), self.settings.call_timeout
                    )
                except (PeerUnavailable, CallTimeout) as exc:
                    log.debug("unsubscribe from %s failed: %s", link.describe(), exc)

    async def _deliver(self, link: Link, msg: m.Trigger) -> None:
        """An event arrived from ``link``: check its sequence, run the matching handlers.

        The hot path of a subscriber: which local subscriptions want this event
        from this link is cached on the link (``Link.handler_plan``), async
        handlers are awaited directly, plain ones are batched to the handler
        thread (the link flushes the batch after each read).
        """
        link.events_received += 1
        seq = msg.seq
        if seq == link.rx_seq + 1:
            link.rx_seq = seq
        else:
            expected = link.rx_seq + 1
            if seq > expected:
                missed = seq - expected
                link.events_missed += missed
                self.counters["events_missed"] += missed
                self._rate_log.warning(
                    "missed:" + link.remote_id,
                    "missed %d event(s) from %s (its queue for us overflowed; %d missed in all)",
                    missed,
                    link.describe(),
                    link.events_missed,
                )
            else:
                self.counters["events_out_of_order"] += 1
            link.rx_seq = max(link.rx_seq, seq)
        event = msg.event
        specs = self.registry.subscriptions.get(event)
        handled = False
        handlers = self._handlers
        if specs:
            queued = False
            for spec, handler, is_async, wants_sender, always in link.handler_plan(event, specs):
                if not always and not self._spec_matches(spec, link):
                    continue
                handled = True
                kwargs = msg.kwargs
                if wants_sender:
                    kwargs = {**kwargs, "sender": self._peer_info(link)}
                if is_async:
                    try:
                        if kwargs:
                            await handler(*msg.args, **kwargs)
                        else:
                            await handler(*msg.args)
                    except Exception:
                        self.counters["handler_errors"] += 1
                        log.exception(
                            "handler %s for event %r raised",
                            getattr(handler, "__qualname__", handler),
                            event,
                        )
                else:
                    handlers.put(handler, msg.args, kwargs, event)
                    queued = True
            if queued and handlers.backlog >= handlers.limit:
                await handlers.wait_for_room()
        if not handled:
            self.counters["events_unwanted"] += 1
        if msg.request_id:
            handlers.flush()  # handed to the handler thread before the ack says so
            link.send(m.Result(msg.request_id, handled))

    async def _run_async_handler(
        self, spec: SubscriptionSpec, event: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        try:
            await spec.handler(*args, **kwargs)
        except Exception:
            self.counters["handler_errors"] += 1
            log.exception(
                "handler %s for event %r raised",
                getattr(spec.handler, "__qualname__", spec.handler),
                event,
            )

    # --- who is out there -----------------------------------------------------------

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
            local=self,
        )

    def peers(
        self,
        groups: Iterable[str] | str | None = None,
        hubs_only: bool = False,
        on_host: bool = False,
        refresh: bool = False,
    ) -> list[PeerInfo]:
        """The peers this peer has a live link to, optionally filtered.

        Only linked peers are listed: a peer whose link is known dead is never
        reported, even while mDNS still lists it (a killed peer sends no goodbye).
        ``refresh=True`` also sends a new mDNS query, for peers found later.
        """
        if refresh:
            self.refresh()
        group_set = set(_as_tuple(groups) or ())
        out = []
        for link in list(self.links.values()):
            if link.ended.is_set():
                continue
            if group_set and link.remote.group not in group_set:
                continue
            if hubs_only and not link.remote.hub:
                continue
            if on_host and not link.on_host:
                continue
            out.append(self._peer_info(link))
        return sorted(out, key=lambda i: (i.name, i.address))

    def peer_group(
        self, name: str | None = None, hubs_only: bool = False, on_host: bool = False
    ) -> list[PeerInfo]:
        """The linked peers of group ``name`` (default: this peer's own group)."""
        return self.peers(
            groups=[name or self.settings.group], hubs_only=hubs_only, on_host=on_host
        )

    async def remote_info(self, target: PeerRef, timeout: float | None = None) -> dict[str, Any]:
        """``info`` of a remote peer, through the protocol's INFO request."""
        self._require_running()
        limit = self.settings.call_timeout if timeout is None else timeout
        link = await self._link_to(target)
        reply = await link.request(lambda rid: m.Info(rid), limit)
        result: dict[str, Any] = await self._interpret_reply(reply, link, "info")
        return result

    def info(self) -> dict[str, Any]:
        """Who this peer is, what it offers, who subscribes to what, and its counters."""
        names = {lk.remote_id: lk.name for lk in self.links.values()}
        s = self.settings
        return {
            "id": self.id,
            "name": self.name,
            "host": "" if s.host in ("0.0.0.0", "::") else s.host,
            "port": self.port,
            "group": s.group,
            "hub": s.hub,
            "protocol": m.PROTOCOL_VERSION,
            "version": __version__,
            "pid": os.getpid(),
            "running": self._running,
            "connections": {n: e.signature for n, e in sorted(self.registry.connections.items())},
            "events": sorted(self.registry.events),
            "subscriptions": {
                event: [names.get(sid, sid) for sid in subs]
                for event, subs in self.table.events().items()
            },
            "subscribed": sorted(self.registry.subscriptions),
            "flags": sorted(self.registry.flags),
            "peers": [lk.stats() for lk in self.links.values()],
            "counters": dict(self.counters),
            "pruned": [
                {
                    "subscriber": pr.name,
                    "id": pr.subscriber,
                    "events": list(pr.events),
                    "reason": pr.reason,
                    "at": pr.at,
                }
                for pr in list(self.table.prunings)[-20:]
            ],
        }

    def info_sync(self) -> dict[str, Any]:
        """``info()`` from any thread: taken on the peer's loop while it runs, so
        it never reads tables that are changing under it."""
        if self._running and self._loop_thread != threading.get_ident() and self._token is not None:
            try:
                return trio.from_thread.run_sync(self.info, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        return self.info()

    def _require_running(self) -> None:
        if not self._running:
            raise NotRunning(f"{self!r} is not running")


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


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _describe_target(target: Any) -> str:
    if isinstance(target, PeerInfo):
        return f"{target.name} ({target.address})"
    return str(target)


def _peername(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "?"


def _sockname(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getsockname()[0])
    except OSError:
        return "?"
