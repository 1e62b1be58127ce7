"""mDNS discovery engine: advertise this peer and find the others (python-zeroconf).

How it works (details and measurements in ``docs/discovery.md``):

* One zeroconf responder per chosen interface (see ``_interfaces``). Each sends
  only on its own interface and advertises only that interface's addresses, so
  every advertised address goes out on the link it is reachable on (zeroconf
  itself would put every address of a ``ServiceInfo`` in every packet on every
  interface). All responders of one :class:`MdnsDiscovery` share one private
  asyncio loop thread (``_zeroconf_bridge``).
* One more zeroconf instance (the responder itself when there is only one
  interface) browses :data:`SERVICE_TYPE` on all the chosen interfaces with QM
  (multicast-answer) questions. Browser callbacks only hand ``(name, change)`` to
  trio; resolving the service (from zeroconf's cache, or by asking) and
  validating its TXT record happen from trio, cancellably.
* What one peer advertises under several instance names (one per interface) is
  merged by peer id into one :class:`FoundPeer` whose addresses are ranked best
  first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from zeroconf import (
    DNSOutgoing,
    DNSQuestion,
    DNSQuestionType,
    IPVersion,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from ._interfaces import InterfaceChoice, ResolvedInterface, resolve_interfaces
from ._zeroconf_bridge import AsyncioThread, TrioNotifier

__all__ = [
    "SERVICE_TYPE",
    "Advert",
    "FoundPeer",
    "InvalidAdvert",
    "MdnsDiscovery",
    "advert_properties",
    "parse_found_peer",
]

log = logging.getLogger("net.discovery")

SERVICE_TYPE = "_netpeer._tcp.local."

# TXT keys (RFC 6763 style "key=value" strings; keys compared case-insensitively).
TXT_ID = "id"  # peer id: 8-32 lowercase hex digits
TXT_NAME = "n"  # peer name, UTF-8
TXT_GROUP = "g"  # group, UTF-8
TXT_HUB = "h"  # "1" or "0"
TXT_PROTOCOL = "pv"  # protocol version, decimal 0..65535

MAX_TEXT_BYTES = 200  # longest name / group, in UTF-8 bytes (a TXT string holds 255)

# How long resolving one service (SRV/TXT/A) may take.
RESOLVE_TIMEOUT = 3.0
# Bound on unregistering (goodbyes) and closing zeroconf when run() ends.
SHUTDOWN_TIMEOUT = 2.0
# Bound on opening the sockets and registering.
STARTUP_TIMEOUT = 10.0

_ID_RE = re.compile(r"[0-9a-f]{8,32}")
_ID_RE_B = re.compile(rb"[0-9a-f]{8,32}")
_UINT16_RE_B = re.compile(rb"(?:0|[1-9][0-9]{0,4})")
_LABEL_SAFE_RE = re.compile(r"[^A-Za-z0-9]+")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_QM = DNSQuestionType.QM
_FLAGS_QR_QUERY = 0x0000
_TYPE_PTR = 12
_CLASS_IN = 1


class InvalidAdvert(ValueError):
    """A service record from the network that is not a usable peer advert."""


def _check_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, not {type(value).__name__}")
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError(f"{what} is longer than {MAX_TEXT_BYTES} UTF-8 bytes: {value[:40]!r}...")
    if not value.isprintable():
        raise ValueError(f"{what} contains control or non-printable characters: {value!r}")


@dataclass(frozen=True)
class Advert:
    """What this peer publishes about itself (validated on construction).

    ``peer_id``: 8-32 lowercase hex digits, unique per process start (e.g.
    ``secrets.token_hex(16)``); ``name``/``group``: printable, at most 200 UTF-8
    bytes each; ``port``: the TCP port of the peer's server; ``protocol_version``:
    0..65535.
    """

    peer_id: str
    name: str
    group: str
    hub: bool
    port: int
    protocol_version: int

    def __post_init__(self) -> None:
        if not isinstance(self.peer_id, str) or not _ID_RE.fullmatch(self.peer_id):
            raise ValueError(f"peer_id must be 8-32 lowercase hex digits, not {self.peer_id!r}")
        _check_text(self.name, "name")
        _check_text(self.group, "group")
        if not isinstance(self.hub, bool):
            raise ValueError(f"hub must be a bool, not {self.hub!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValueError(f"port must be an int, not {self.port!r}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be in 1..65535, not {self.port}")
        pv = self.protocol_version
        if isinstance(pv, bool) or not isinstance(pv, int) or not 0 <= pv <= 65535:
            raise ValueError(f"protocol_version must be an int in 0..65535, not {pv!r}")


@dataclass(frozen=True)
class FoundPeer:
    """What browsing learned about another peer.

    ``addresses``: IPv4 addresses, best first: loopback (the peer runs on this
    host: loopback addresses are only ever advertised on ``lo``), then addresses
    in the subnet of one of our interfaces, then the rest; ties in the order the
    peer advertised them. Unauthenticated: the peer layer's handshake must check
    that whoever answers on an address really has ``peer_id``.
    """

    peer_id: str
    name: str
    group: str
    hub: bool
    port: int
    protocol_version: int
    addresses: tuple[str, ...]


def advert_properties(advert: Advert) -> dict[str, str]:
    """The TXT properties that publish ``advert``."""
    return {
        TXT_ID: advert.peer_id,
        TXT_NAME: advert.name,
        TXT_GROUP: advert.group,
        TXT_HUB: "1" if advert.hub else "0",
        TXT_PROTOCOL: str(advert.protocol_version),
    }


def _normalise_properties(properties: Mapping[Any, Any]) -> dict[str, bytes | None]:
    """Lower-case str keys -> raw bytes values; the first of duplicate keys wins."""
    result: dict[str, bytes | None] = {}
    for key, value in properties.items():
        if isinstance(key, str):
            key_s = key.lower()
        elif isinstance(key, bytes):
            try:
                key_s = key.decode("ascii").lower()
            except UnicodeDecodeError:
                continue
        else:
            continue
        if key_s in result:
            continue
        if isinstance(value, str):
            result[key_s] = value.encode("utf-8", "surrogatepass")
        elif isinstance(value, bytes) or value is None:
            result[key_s] = value
        else:
            result[key_s] = None
    return result


def _txt_text(props: Mapping[str, bytes | None], key: str, what: str) -> str:
    raw = props.get(key)
    if raw is None:
        raise InvalidAdvert(f"TXT {key!r} ({what}) missing or without a value")
    if len(raw) > MAX_TEXT_BYTES:
        raise InvalidAdvert(f"TXT {key!r} ({what}) longer than {MAX_TEXT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidAdvert(f"TXT {key!r} ({what}) is not UTF-8") from None
    if not text.isprintable():
        raise InvalidAdvert(f"TXT {key!r} ({what}) has non-printable characters")
    return text


def _usable_ipv4(address: object) -> str | None:
    if not isinstance(address, str) or len(address) > 15:
        return None
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return None
    if (
        ip.is_unspecified
        or ip.is_multicast
        or ip == _BROADCAST
        or ip.is_reserved
        or ip in _THIS_NETWORK
    ):
        return None
    return str(ip)


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def parse_found_peer(
    properties: Mapping[bytes, bytes | None] | Mapping[Any, Any],
    port: object,
    addresses: Iterable[object],
) -> FoundPeer:
    """Validate a service record heard on the network and build a :class:`FoundPeer`.

    ``properties`` are the TXT properties (as zeroconf's ``ServiceInfo.properties``
    gives them), ``port`` the SRV port, ``addresses`` the A records (strings).
    Addresses that cannot be connected to (unspecified, multicast, broadcast,
    reserved, not IPv4) are dropped; order is kept, duplicates removed. Unknown
    TXT keys are ignored (room for later additions). Raises :class:`InvalidAdvert`
    (and nothing else) when the record is unusable.
    """
    try:
        props = _normalise_properties(properties)
    except Exception as exc:  # a hostile Mapping, say
        raise InvalidAdvert(f"unreadable TXT properties: {exc!r}") from None
    raw_id = props.get(TXT_ID)
    if raw_id is None or not _ID_RE_B.fullmatch(raw_id):
        raise InvalidAdvert("TXT 'id' missing or not 8-32 lowercase hex digits")
    peer_id = raw_id.decode("ascii")
    name = _txt_text(props, TXT_NAME, "name")
    group = _txt_text(props, TXT_GROUP, "group")
    raw_hub = props.get(TXT_HUB)
    if raw_hub not in (b"0", b"1"):
        raise InvalidAdvert("TXT 'h' (hub) must be '0' or '1'")
    raw_pv = props.get(TXT_PROTOCOL)
    if raw_pv is None or not _UINT16_RE_B.fullmatch(raw_pv) or int(raw_pv) > 65535:
        raise InvalidAdvert("TXT 'pv' (protocol version) must be a decimal in 0..65535")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidAdvert(f"SRV port {port!r} is not in 1..65535")
    usable: list[str] = []
    try:
        for address in addresses:
            ok = _usable_ipv4(address)
            if ok is not None and ok not in usable:
                usable.append(ok)
            if len(usable) >= 32:
                break
    except Exception as exc:
        raise InvalidAdvert(f"unreadable addresses: {exc!r}") from None
    if not usable:
        raise InvalidAdvert("no usable IPv4 address")
    return FoundPeer(
        peer_id=peer_id,
        name=name,
        group=group,
        hub=raw_hub == b"1",
        port=port,
        protocol_version=int(raw_pv),
        addresses=tuple(usable),
    )


def _address_rank(
    address: str, ours: Iterable[ResolvedInterface], routed: bool = True
) -> int | None:
    """Lower is better: 0 loopback (peer on this host: loopback addresses are only
    ever multicast on ``lo``), 1 in the subnet of one of our interfaces (on-link),
    2 anything else (through a router, if at all; only when ``routed``).

    None: not reachable through the interfaces we use (loopback without ``lo``
    among them; off-link when not ``routed``). Linux hands every socket bound to
    :5353 the mDNS traffic of every interface that any local socket joined, so
    with a restricted NET_INTERFACES we may hear adverts from other links.
    """
    ours = list(ours)
    ip = ipaddress.IPv4Address(address)
    if ip.is_loopback:
        return 0 if any(iface.loopback for iface in ours) else None
    if any(ip in net for iface in ours if not iface.loopback for net in iface.networks):
        return 1
    return 2 if routed else None


def _instance_label(advert: Advert, index: int) -> str:
    """DNS-SD instance label: readable prefix, unique suffix, at most 63 bytes."""
    readable = _LABEL_SAFE_RE.sub("-", advert.name).strip("-")[:20] or "peer"
    suffix = f"-{index}" if index else ""
    return f"{readable}-{advert.peer_id}{suffix}"


@dataclass
class _Responder:
    """A zeroconf instance that advertises on one interface only (asyncio thread)."""

    iface: ResolvedInterface
    info: ServiceInfo
    aiozc: AsyncZeroconf | None = None
    registered: bool = False


@dataclass
class _Zeroconfs:
    """Every zeroconf object of one run; created, used and closed on the asyncio thread.

    ``browser_zc`` sends queries on all chosen interfaces and hears answers from
    all of them; with a single interface it is that interface's responder.
    """

    responders: list[_Responder]
    browser_zc: AsyncZeroconf | None = None
    browser: AsyncServiceBrowser | None = None
    own_browser_zc: bool = False


@dataclass
class _Entry:
    """A validated service record (one instance name)."""

    peer: FoundPeer
    seq: int


@dataclass
class _State:
    """Per-run state, only touched on the trio thread."""

    # lower-cased instance name -> (name, last change); coalesced, last wins
    pending: dict[str, tuple[str, ServiceStateChange]] = field(default_factory=dict)
    wake: trio.Event = field(default_factory=trio.Event)
    resolving: dict[str, trio.CancelScope] = field(default_factory=dict)
    entries: dict[str, _Entry] = field(default_factory=dict)
    reported: dict[str, FoundPeer] = field(default_factory=dict)
    seq: int = 0


class MdnsDiscovery:
    """Advertise ``advert`` and browse for other peers on the chosen interfaces.

    Use :meth:`run` in a trio nursery (``await nursery.start(discovery.run, ...)``);
    cancel it to stop (goodbye packets are sent). One ``run`` at a time; it can be
    run again after it has returned.
    """

    def __init__(self, advert: Advert, interfaces: InterfaceChoice) -> None:
        if not isinstance(advert, Advert):
            raise TypeError("advert must be an Advert")
        self.advert = advert
        self.interfaces = interfaces
        self._bridge: AsyncioThread | None = None
        self._zcs: _Zeroconfs | None = None
        self._resolved: list[ResolvedInterface] = []

    # -- public --------------------------------------------------------------

    @property
    def resolved_interfaces(self) -> list[ResolvedInterface]:
        """The interfaces in use (empty until :meth:`run` has started)."""
        return list(self._resolved)

    @property
    def advertised_addresses(self) -> list[str]:
        """Every address advertised, each on its own interface (empty until started)."""
        return [a for iface in self._resolved for a in iface.addresses]

    def refresh(self) -> None:
        """Ask the network again (a PTR query on every interface); returns at once.

        Peers not known yet answer and are reported through ``on_found``. It does
        not check that known peers are alive (that is the peer layer's job).
        """
        bridge, zcs = self._bridge, self._zcs
        if bridge is not None and zcs is not None:
            bridge.call_soon(_loop_refresh, zcs)

    async def run(
        self,
        on_found: Callable[[FoundPeer], None],
        on_lost: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Register the advert, browse, report peers until cancelled.

        ``on_found(peer)`` and ``on_lost(peer_id)`` are called on the trio thread;
        ``on_found`` again when what we know about a peer changes (addresses...).
        ``task_status.started()`` once registered and browsing. Raises
        ``ValueError`` (bad ``NET_INTERFACES`` for this host) or ``OSError`` (no
        interface could be opened) before starting. On cancellation, goodbyes are
        sent and zeroconf closed within ``SHUTDOWN_TIMEOUT`` seconds (shielded).
        Exceptions raised by ``on_found``/``on_lost`` propagate (after cleanup).
        """
        if self._bridge is not None:
            raise RuntimeError("MdnsDiscovery.run is already running")
        resolved = await trio.to_thread.run_sync(resolve_interfaces, self.interfaces)
        zcs = _Zeroconfs([self._make_responder(i, iface) for i, iface in enumerate(resolved)])
        if self._bridge is not None:
            raise RuntimeError("MdnsDiscovery.run is already running")
        bridge = AsyncioThread(f"net-zeroconf-{self.advert.peer_id[:8]}")
        state = _State()
        self._bridge, self._zcs, self._resolved = bridge, zcs, resolved
        own_names = {r.info.name.lower() for r in zcs.responders}
        notifier: TrioNotifier[tuple[str, ServiceStateChange]] = TrioNotifier(
            functools.partial(self._on_event, state)
        )
        try:
            bridge.start()
            with trio.fail_after(STARTUP_TIMEOUT):
                await bridge.run(_loop_start(zcs, notifier))
            log.info(
                "discovery: %s advertising on %s",
                self.advert.peer_id,
                ", ".join(f"{r.iface.name}={','.join(r.iface.addresses)}" for r in zcs.responders),
            )
            task_status.started()
            async with trio.open_nursery() as nursery:
                while True:
                    await state.wake.wait()
                    state.wake = trio.Event()
                    batch, state.pending = state.pending, {}
                    for key, (name, change) in batch.items():
                        if key in own_names:
                            continue
                        if change is ServiceStateChange.Removed:
                            self._forget(state, key, on_found, on_lost)
                        else:
                            self._start_resolve(nursery, state, key, name, on_found, on_lost)
        finally:
            notifier.close()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(SHUTDOWN_TIMEOUT) as scope:
                    try:
                        await bridge.run(_loop_stop(zcs))
                    except Exception:
                        log.warning("discovery: error while unregistering", exc_info=True)
                if scope.cancelled_caught:
                    log.warning("discovery: shutdown took over %.1f s, abandoned", SHUTDOWN_TIMEOUT)
                await bridge.stop(timeout=1.0)
            self._bridge = None
            self._zcs = None

    # -- trio side -------------------------------------------------------------

    def _rank(self, address: str) -> int | None:
        return _address_rank(address, self._resolved, routed=self.interfaces.mode == "all")

    def _make_responder(self, index: int, iface: ResolvedInterface) -> _Responder:
        advert = self.advert
        label = _instance_label(advert, index)
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            port=advert.port,
            properties=advert_properties(advert),
            server=f"{advert.peer_id}-{index}.local.",
            parsed_addresses=list(iface.addresses),
        )
        return _Responder(iface=iface, info=info)

    @staticmethod
    def _on_event(state: _State, event: tuple[str, ServiceStateChange]) -> None:
        """Runs on the trio thread (via run_sync_soon): record and wake; never raises."""
        name, change = event
        state.pending[name.lower()] = (name, change)
        state.wake.set()

    def _start_resolve(
        self,
        nursery: trio.Nursery,
        state: _State,
        key: str,
        name: str,
        on_found: Callable[[FoundPeer], None],
        on_lost: Callable[[str], None],
    ) -> None:
        old = state.resolving.pop(key, None)
        if old is not None:
            old.cancel()
        scope = trio.CancelScope()
        state.resolving[key] = scope
        nursery.start_soon(self._resolve, state, key, name, scope, on_found, on_lost)

    async def _resolve(
        self,
        state: _State,
        key: str,
        name: str,
        scope: trio.CancelScope,
        on_found: Callable[[FoundPeer], None],
        on_lost: Callable[[str], None],
    ) -> None:
        bridge, zcs = self._bridge, self._zcs
        raw: tuple[dict[bytes, bytes | None], int | None, list[str]] | None = None
        with scope:
            if bridge is None or zcs is None or zcs.browser_zc is None:
                return
            with trio.move_on_after(RESOLVE_TIMEOUT + 1.0):
                try:
                    raw = await bridge.run(_loop_resolve(zcs.browser_zc.zeroconf, name))
                except Exception as exc:
                    log.debug("discovery: cannot resolve %r: %r", name, exc)
        if state.resolving.get(key) is not scope:
            return  # superseded or removed meanwhile
        del state.resolving[key]
        if scope.cancelled_caught:
            return
        if raw is None:
            log.debug("discovery: %r did not resolve in time", name)
            return
        properties, port, addresses = raw
        try:
            peer = parse_found_peer(properties, port, addresses)
        except InvalidAdvert as exc:
            log.debug("discovery: ignoring %r: %s", name, exc)
            self._forget(state, key, on_found, on_lost)
            return
        if peer.peer_id == self.advert.peer_id:
            log.debug("discovery: ignoring %r: it claims our own peer id", name)
            return
        reachable = tuple(a for a in peer.addresses if self._rank(a) is not None)
        if not reachable:
            log.debug("discovery: ignoring %r: no address reachable via %s", name, self.interfaces)
            self._forget(state, key, on_found, on_lost)
            return
        peer = dataclasses.replace(peer, addresses=reachable)
        state.seq += 1
        old = state.entries.get(key)
        state.entries[key] = _Entry(peer, state.seq)
        if old is not None and old.peer.peer_id != peer.peer_id:
            self._report(state, old.peer.peer_id, on_found, on_lost)
        self._report(state, peer.peer_id, on_found, on_lost)

    def _forget(
        self,
        state: _State,
        key: str,
        on_found: Callable[[FoundPeer], None],
        on_lost: Callable[[str], None],
    ) -> None:
        scope = state.resolving.pop(key, None)
        if scope is not None:
            scope.cancel()
        entry = state.entries.pop(key, None)
        if entry is not None:
            self._report(state, entry.peer.peer_id, on_found, on_lost)

    def _report(
        self,
        state: _State,
        peer_id: str,
        on_found: Callable[[FoundPeer], None],
        on_lost: Callable[[str], None],
    ) -> None:
        """Merge every instance name of ``peer_id``; call back if the result changed."""
        entries = [e for e in state.entries.values() if e.peer.peer_id == peer_id]
        if not entries:
            if state.reported.pop(peer_id, None) is not None:
                on_lost(peer_id)
            return
        latest = max(entries, key=lambda e: e.seq)
        # Best rank first; ties in the order of the most recently heard advert.
        best: dict[str, tuple[int, int, int]] = {}
        for entry in entries:
            for pos, address in enumerate(entry.peer.addresses):
                key = (self._rank(address) or 0, -entry.seq, pos)
                if address not in best or key < best[address]:
                    best[address] = key
        merged = FoundPeer(
            peer_id=peer_id,
            name=latest.peer.name,
            group=latest.peer.group,
            hub=latest.peer.hub,
            port=latest.peer.port,
            protocol_version=latest.peer.protocol_version,
            addresses=tuple(sorted(best, key=lambda a: best[a])),
        )
        if state.reported.get(peer_id) != merged:
            state.reported[peer_id] = merged
            on_found(merged)


# -- asyncio side (these run on the bridge's loop only) --------------------------


async def _loop_start(
    zcs: _Zeroconfs, notifier: TrioNotifier[tuple[str, ServiceStateChange]]
) -> None:
    """Open the browsing instance, one responder per interface, register, browse."""
    if len(zcs.responders) > 1:
        # One instance queries on every interface and collects every answer in
        # one cache. (Per-interface browsers would suppress each other's
        # queries: on Linux every socket bound to :5353 hears every interface.)
        # Opened first so that it hears our own announcements and lists them
        # as known answers: otherwise our responders answer our own first
        # query, and RFC 6762's one-second rate limit then delays their answer
        # to the next peer that asks.
        joins = [r.iface.addresses[0] for r in zcs.responders]
        zcs.browser_zc = AsyncZeroconf(zc=Zeroconf(interfaces=joins, use_asyncio=True))
        zcs.own_browser_zc = True
        await zcs.browser_zc.zeroconf.async_wait_for_start()
    for r in zcs.responders:
        address = r.iface.addresses[0]
        try:
            zc = Zeroconf(interfaces=[address], use_asyncio=True)
        except OSError as exc:
            log.warning("discovery: cannot use %s (%s): %s", r.iface.name, address, exc)
            continue
        r.aiozc = AsyncZeroconf(zc=zc)
        await zc.async_wait_for_start()
        if not zc.engine.senders:
            log.warning("discovery: cannot send on %s (%s)", r.iface.name, address)
            continue
        # Instance names embed the random peer id, so they cannot collide with
        # another peer's: skip probing (~1.2 s) and announce at once.
        await r.aiozc.async_register_service(r.info, cooperating_responders=True)
        r.registered = True
    usable = [r for r in zcs.responders if r.registered]
    if not usable:
        raise OSError("mDNS discovery could not open any interface")
    if zcs.browser_zc is None:
        zcs.browser_zc = usable[0].aiozc
    browser_zc = zcs.browser_zc
    assert browser_zc is not None

    def handler(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        notifier.notify((name, state_change))

    zcs.browser = AsyncServiceBrowser(
        browser_zc.zeroconf, [SERVICE_TYPE], handlers=[handler], question_type=_QM
    )


async def _loop_stop(zcs: _Zeroconfs) -> None:
    """Goodbyes first (they go out at once), then close everything, in parallel."""
    if zcs.browser is not None:
        try:
            await zcs.browser.async_cancel()
        except Exception:
            log.debug("discovery: browser cancel failed", exc_info=True)
        zcs.browser = None

    async def goodbye(r: _Responder) -> None:
        if r.aiozc is None:
            return
        if r.registered:
            # Sends the goodbye (TTL 0) records now, then twice more 125 ms apart.
            await r.aiozc.async_unregister_all_services()
            r.registered = False
        await r.aiozc.async_close()
        r.aiozc = None

    async def close_browser() -> None:
        if zcs.own_browser_zc and zcs.browser_zc is not None:
            await zcs.browser_zc.async_close()
        zcs.browser_zc = None

    results = await asyncio.gather(
        *(goodbye(r) for r in zcs.responders), close_browser(), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            log.debug("discovery: error closing zeroconf: %r", result)


def _loop_refresh(zcs: _Zeroconfs) -> None:
    if zcs.browser_zc is None:
        return
    out = DNSOutgoing(_FLAGS_QR_QUERY)
    out.add_question(DNSQuestion(SERVICE_TYPE, _TYPE_PTR, _CLASS_IN))
    zcs.browser_zc.zeroconf.async_send(out)


async def _loop_resolve(
    zc: Zeroconf, name: str
) -> tuple[dict[bytes, bytes | None], int | None, list[str]] | None:
    """Resolve ``name`` (cache first, else ask by multicast); plain data out."""
    info = AsyncServiceInfo(SERVICE_TYPE, name)
    if not await info.async_request(zc, RESOLVE_TIMEOUT * 1000, question_type=_QM):
        return None
    return dict(info.properties), info.port, info.parsed_addresses(IPVersion.V4Only)
