"""How a peer gets and keeps its links: dialing, accepting, one link per pair,
static peers and mDNS discovery, and who is linked (``peers``)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import trio

from .. import protocol as p
from .._settings import parse_address
from ..discovery import Advert, FoundPeer, MdnsDiscovery, parse_interfaces
from ..errors import (
    ConfigError,
    PeerNotFound,
    PeerUnavailable,
    ProtocolError,
)
from ..protocol import _messages as m
from ._base import PeerBase, PeerRef, _as_tuple
from ._link import Link, handshake
from ._remote import PeerInfo

if TYPE_CHECKING:
    from ._peer import Peer

log = logging.getLogger("net")


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


class LinksMixin(PeerBase):
    """Connecting to peers and keeping one link to each."""

    def want(self, address: str) -> None:
        """Keep a link to ``address`` ("host:port"), reconnecting with backoff while wanted."""
        parse_address(address)
        if address in self._wanted or self._nursery is None:
            return
        self._wanted.add(address)
        self._nursery.start_soon(self._keep_connected, address)

    def unwant(self, address: str) -> None:
        self._wanted.discard(address)

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
                found.name,
                found.protocol_version,
                m.PROTOCOL_VERSION,
            )
            return
        if not known:
            log.info(
                "discovered peer %s (%s) at %s",
                found.name,
                found.peer_id[:8],
                ", ".join(f"{a}:{found.port}" for a in found.addresses),
            )
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
                self._resolved.clear()
            remote_ip, local_ip = _peername(stream), _sockname(stream)
            link = Link(
                cast("Peer", self),
                stream,
                conn,
                hello,
                dialed=dialed,
                remote_ip=remote_ip,
                local_ip=local_ip,
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
        self._resolved.clear()
        return link

    def _link_up(self, link: Link) -> None:
        log.info("linked to peer %s", link.describe())
        self.counters["links_opened"] += 1
        self._on_link_up(link)
        self._notify_peers_changed()

    def _link_down(self, link: Link) -> None:
        if self.links.get(link.remote_id) is not link:
            return  # replaced by a newer link: nothing is lost
        del self.links[link.remote_id]
        self._resolved.clear()
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

    def _known_link(self, target: PeerRef) -> tuple[Link | None, str]:
        """The live link to ``target`` if there is one, and the address to dial if not.

        Raises ``PeerNotFound`` (a name nobody or several peers have) or ``TypeError``.
        A string target's answer is remembered until the links change (every call
        names its target: resolving a name or address each time costs more than
        the rest of looking up the link).
        """
        if type(target) is str:
            cached = self._resolved.get(target)
            if cached is not None and cached.accepting:
                return cached, target
        link, address = self._resolve_target(target)
        if (
            link is not None
            and type(target) is str
            and self._loop_thread == threading.get_ident()  # only the loop clears it
        ):
            if len(self._resolved) >= 1024:
                self._resolved.clear()
            self._resolved[target] = link
        return link, address

    def _resolve_target(self, target: PeerRef) -> tuple[Link | None, str]:
        address: str
        if isinstance(target, PeerInfo):
            link = self.links.get(target.id)
            if link is not None:
                return link, target.address
            address = target.address
        elif isinstance(target, tuple) and len(target) == 2:
            host = target[0]
            address = f"[{host}]:{target[1]}" if ":" in host else f"{host}:{target[1]}"
        elif isinstance(target, str):
            link = self.links.get(target)
            if link is not None:
                return link, target
            named = [lk for lk in self.links.values() if lk.name == target]
            if len(named) == 1:
                return named[0], target
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
        return self._link_for_address(address), address

    async def _link_to(self, target: PeerRef) -> Link:
        """The live link to ``target``, dialing it if needed."""
        link, address = self._known_link(target)
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
